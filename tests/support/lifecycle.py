"""Helpers for the process-lifecycle tests: a controllable upstream, a bounded load
client, and readers for /status and /metrics."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import EdgeProcess, http_get


class HeldUpstream:
    """A real HTTP/1.1 upstream on 127.0.0.1.

    ``GET /hold`` blocks until ``release()`` (``held`` is set once such a request
    arrived), so a test can keep a request in flight without sleeping; every other
    request is answered at once with JSON ``{"path": ...}``.
    """

    def __init__(self) -> None:
        self.held = threading.Event()
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # head and body are separate writes: without this, Nagle + delayed ACK
            # add 40 ms to every response
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                if self.path.startswith("/hold"):
                    outer.held.set()
                    outer._release.wait(60)
                body = json.dumps({"path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> HeldUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def config(upstream_port: int, uris: list[str], version: str = "v1") -> dict[str, Any]:
    return {
        "version": version,
        "upstreams": [{"id": "u", "nodes": [{"host": "127.0.0.1", "port": upstream_port}]}],
        "routes": [{"id": f"r{i}", "uri": uri, "upstream_id": "u"} for i, uri in enumerate(uris)],
    }


BAD_CONFIG = {
    "routes": [{"id": "broken", "uri": "/a", "upstream_id": "payments"}],
}


def status(edge: EdgeProcess) -> dict[str, Any]:
    code, body = http_get(edge.admin_url + "/status")
    assert code == 200, body
    return json.loads(body)


def metric_samples(edge: EdgeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, body = http_get(edge.admin_url + "/metrics")
    assert code == 200, body
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def workers_on(edge: EdgeProcess, generation: int) -> bool:
    doc = status(edge)
    return all(w["ready"] and w["generation"] == generation for w in doc["workers"])


def get(edge: EdgeProcess, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    return http_get(edge.url + path, timeout=timeout)


class LoadClient:
    """Requests in a background thread until ``stop()`` or ``max_requests``; every
    answer that is not 200 (or a dropped connection) is recorded as a failure.

    Half the requests reuse one keep-alive connection, half open a new one, so a reload
    is crossed both by idle keep-alive connections and by fresh accepts.
    """

    def __init__(self, port: int, path: str, max_requests: int = 20_000) -> None:
        self.port = port
        self.path = path
        self.max_requests = max_requests
        self.done = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        keep: http.client.HTTPConnection | None = None
        for i in range(self.max_requests):
            if self._stop.is_set():
                break
            fresh = i % 2 == 1
            try:
                if fresh or keep is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                else:
                    conn = keep
                conn.request("GET", self.path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.failures.append(f"request {i}: status {resp.status}")
                if fresh:
                    conn.close()
                elif resp.will_close:
                    conn.close()
                    keep = None
                else:
                    keep = conn
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"request {i}: {type(exc).__name__}: {exc}")
                keep = None
            self.done += 1
        if keep is not None:
            keep.close()

    def start(self) -> LoadClient:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@contextmanager
def load(port: int, path: str) -> Iterator[LoadClient]:
    client = LoadClient(port, path).start()
    try:
        yield client
    finally:
        client.stop()
