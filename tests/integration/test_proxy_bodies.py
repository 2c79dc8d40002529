"""Bodies streamed both ways: chunked and sized, and 100 MB through with flat memory."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.procs import EdgeProcess
from tests.support.proxy import Reader, connect, edge_proxy, route, rss_kib, worker_pid
from tests.support.upstream import Upstream

MB = 1024 * 1024
BIG = 100 * MB
# a body of 100 MiB may move the worker's RSS by this much at most (buffers, allocator)
RSS_GROWTH_LIMIT_KIB = 32 * 1024


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    with edge_proxy([route("all", "/*", up.addr)], limits={"max_body_size": 200 * MB}) as e:
        yield e


def test_chunked_request_body_reaches_upstream(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        status, _, body = Reader(s).response()
    assert status == 200
    echoed = json.loads(body)
    assert echoed["body"] == "hello world"
    hdrs = {k.lower(): v.strip() for k, v in echoed["headers"]}
    assert hdrs["transfer-encoding"] == "chunked" and "content-length" not in hdrs


def test_sized_request_body(edge: EdgeProcess) -> None:
    r = httpx.post(edge.url + "/echo", content=b"q" * 200_000)
    assert r.status_code == 200 and len(r.json()["body"]) == 200_000


def test_chunked_response_passes_through(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /stream?n=300000&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = Reader(s).response()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == b"x" * 300000


def test_close_delimited_response_becomes_chunked(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /stream?n=100000&close=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(s)
        status, headers, body = rd.response()
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"x" * 100000
        # the client connection survives the upstream's close
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert rd.response()[0] == 200


class RssWatch:
    """Samples a process's RSS in a thread until stopped (bounded by ``max_samples``)."""

    def __init__(self, pid: int, max_samples: int = 100_000) -> None:
        self.pid = pid
        self.base = rss_kib(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._max = max_samples
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(self._max):
            if self._stop.wait(0.01):
                return
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> RssWatch:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def test_100mb_upload_streams_with_flat_memory(edge: EdgeProcess) -> None:
    pid = worker_pid(edge)
    httpx.get(edge.url + "/echo")  # warm up the worker

    def gen() -> Iterator[bytes]:
        piece = b"u" * MB
        for _ in range(BIG // MB):
            yield piece

    with RssWatch(pid) as w:
        r = httpx.post(edge.url + "/sink", content=gen(), timeout=120)
    assert r.status_code == 200 and r.json() == {"received": BIG}
    assert w.peak - w.base < RSS_GROWTH_LIMIT_KIB, (w.base, w.peak)


def test_100mb_download_streams_with_flat_memory(edge: EdgeProcess) -> None:
    pid = worker_pid(edge)
    total = 0
    with RssWatch(pid) as w:
        with httpx.stream("GET", f"{edge.url}/stream?n={BIG}", timeout=120) as r:
            assert r.status_code == 200
            assert r.headers["content-length"] == str(BIG)
            for data in r.iter_raw():
                total += len(data)
    assert total == BIG
    assert w.peak - w.base < RSS_GROWTH_LIMIT_KIB, (w.base, w.peak)
