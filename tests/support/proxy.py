"""Helpers for the proxy integration tests: a real ``edge run`` with node limits, raw
sockets for malformed input, and a reader of pipelined HTTP/1.1 responses."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from tests.support.procs import EdgeProcess


def route(rid: str, uri: str, *nodes: str, **kw: Any) -> dict[str, Any]:
    ups = kw.pop("upstream", {})
    return {"id": rid, "uri": uri, "upstream": {"nodes": {n: 1 for n in nodes}, **ups}, **kw}


@contextlib.contextmanager
def edge_proxy(
    routes: list[dict[str, Any]], limits: dict[str, Any] | None = None, **config: Any
) -> Iterator[EdgeProcess]:
    """A real ``edge run`` (1 worker) serving ``routes``, access log to its log file."""
    p = EdgeProcess({"routes": routes, **config})
    p.node = {
        "listeners": [{"address": f"127.0.0.1:{p.port}"}],
        "limits": limits or {},
        "log_level": "info",
    }
    with p:
        yield p


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


class Reader:
    """Reads whole responses (Content-Length, chunked, or to EOF) off a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 20)
        self.buf += data
        return bool(data)

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed; have {self.buf[:200]!r}")
        out, _, self.buf = self.buf.partition(marker)
        return out

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = self._until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status < 200:
            return status, headers, b""
        if head_request or status in (204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._until(b"\r\n")
                    return status, headers, body
                body += self._exact(size)
                self._exact(2)
        if "content-length" in headers:
            return status, headers, self._exact(int(headers["content-length"]))
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body

    def closed(self) -> bool:
        """True when the peer closed the connection (after what is buffered)."""
        try:
            return not self.buf and not self._fill()
        except (ConnectionResetError, TimeoutError):
            return True


def exchange(
    port: int, data: bytes, head_request: bool = False
) -> tuple[int, dict[str, str], bytes]:
    with connect(port) as s:
        s.sendall(data)
        return Reader(s).response(head_request)


def error_msg(body: bytes) -> str:
    return str(json.loads(body)["error_msg"])


def worker_pid(edge: EdgeProcess) -> int:
    """The pid of the (single) worker process under the supervisor."""
    assert edge.proc is not None
    kids: list[int] = []
    # the supervisor may spawn from any of its threads
    for task in os.listdir(f"/proc/{edge.proc.pid}/task"):
        with open(f"/proc/{edge.proc.pid}/task/{task}/children") as f:
            kids += [int(x) for x in f.read().split()]
    assert kids, "no worker process"
    return kids[0]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def access_lines(edge: EdgeProcess) -> list[dict[str, Any]]:
    out = []
    for line in edge.log_lines():
        if '"request_id"' in line and '"status"' in line:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out
