"""The proxy end to end: routing, forwarded headers, keep-alive, pipelining,
100-continue, HEAD, HTTP/1.0, Connection: close, access log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.procs import EdgeProcess, wait_until
from tests.support.proxy import Reader, access_lines, connect, edge_proxy, error_msg, route
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    routes = [
        route("api", "/api/*", up.addr),
        route(
            "exact",
            "/exact",
            up.addr,
            upstream={"pass_host": "rewrite", "upstream_host": "internal.svc"},
        ),
        route("node-host", "/node/*", up.addr, upstream={"pass_host": "node"}),
        route("stream", "/stream", up.addr),
    ]
    with edge_proxy(routes) as e:
        yield e


def test_routes_and_echo(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/api/items?q=1", headers={"Host": "shop.example"})
    assert r.status_code == 200
    body = r.json()
    assert body["method"] == "GET" and body["path"] == "/api/items?q=1"
    hdrs = {k.lower(): v.strip() for k, v in body["headers"]}
    assert hdrs["host"] == "shop.example"
    assert hdrs["x-forwarded-for"] == "127.0.0.1"
    assert hdrs["x-real-ip"] == "127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert hdrs["x-forwarded-host"] == "shop.example"
    assert hdrs["x-forwarded-port"] == str(edge.port)


def test_no_route_is_404_json(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"error_msg": "404 Route Not Found"}
    assert r.headers["content-type"] == "application/json"


def test_pass_host_rewrite_and_node(edge: EdgeProcess, up: Upstream) -> None:
    hdrs = dict((k.lower(), v.strip()) for k, v in httpx.get(edge.url + "/exact").json()["headers"])
    assert hdrs["host"] == "internal.svc"
    hdrs = dict(
        (k.lower(), v.strip()) for k, v in httpx.get(edge.url + "/node/x").json()["headers"]
    )
    assert hdrs["host"] == up.addr


def test_forwarded_for_is_appended_and_hop_by_hop_stripped(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"GET /api/h HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"
            b"X-Real-IP: 6.6.6.6\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n"
            b"Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\r\n"
        )
        status, _, body = Reader(s).response()
    assert status == 200
    hdrs = {k.lower(): v.strip() for k, v in json.loads(body)["headers"]}
    assert hdrs["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert hdrs["x-real-ip"] == "127.0.0.1"
    for gone in ("x-private", "keep-alive", "te", "proxy-authorization", "connection"):
        assert gone not in hdrs


def test_keepalive_reuses_upstream_connection(edge: EdgeProcess, up: Upstream) -> None:
    with httpx.Client(base_url=edge.url) as c:
        c.get("/api/warm")
        before = up.connections
        for i in range(20):
            assert c.get(f"/api/{i}").status_code == 200
    assert up.connections == before


def test_pipelined_requests_answered_in_order(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /api/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        rd = Reader(s)
        s1, _, b1 = rd.response()
        s2, _, b2 = rd.response()
        s3, _, _ = rd.response()
        s4, h4, b4 = rd.response()
        assert rd.closed()
    assert (s1, s2, s3, s4) == (200, 200, 404, 200)
    assert json.loads(b1)["path"] == "/api/1"
    assert json.loads(b2)["body"] == "abc"
    assert json.loads(b4)["path"] == "/api/3"
    assert h4["connection"] == "close"


def test_expect_100_continue(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"PUT /api/up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        rd = Reader(s)
        status, _, _ = rd.response()
        assert status == 100
        s.sendall(b"hello")
        status, _, body = rd.response()
    assert status == 200
    echoed = json.loads(body)
    assert echoed["body"] == "hello"
    assert "expect" not in {k.lower() for k, _ in echoed["headers"]}


def test_expect_100_not_sent_when_no_route(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"PUT /nope HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        rd = Reader(s)
        status, headers, _ = rd.response()
        assert status == 404
        # the unread body would poison the connection: edge closes it
        assert headers["connection"] == "close"
        assert rd.closed()


def test_head(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(
            b"HEAD /stream?n=1234 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/after HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        rd = Reader(s)
        status, headers, _ = rd.response(head_request=True)
        assert status == 200
        assert headers["content-length"] == "1234"
        status, _, body = rd.response()
        assert status == 200 and json.loads(body)["path"] == "/api/after"


def test_http10_closes_unless_keepalive(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /api/10 HTTP/1.0\r\n\r\n")
        rd = Reader(s)
        status, headers, _ = rd.response()
        assert status == 200 and headers["connection"] == "close"
        assert rd.closed()
    with connect(edge.port) as s:
        s.sendall(b"GET /api/10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        rd = Reader(s)
        status, headers, _ = rd.response()
        assert headers["connection"] == "keep-alive"
        s.sendall(b"GET /api/11 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert rd.response()[0] == 200


def test_http10_gets_close_delimited_stream(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /stream?n=70000&chunked=1 HTTP/1.0\r\n\r\n")
        rd = Reader(s)
        status, headers, body = rd.response()
    assert status == 200 and "transfer-encoding" not in headers
    assert body == b"x" * 70000


def test_connection_close(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /api/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        rd = Reader(s)
        status, headers, _ = rd.response()
        assert status == 200 and headers["connection"] == "close"
        assert rd.closed()


def test_access_log_line(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/api/logged?secret=1", headers={"Host": "log.example"})
    assert r.status_code == 200

    def found() -> bool:
        return any(rec["path"] == "/api/logged" for rec in access_lines(edge))

    wait_until(found, 10, "access log line")
    rec = next(rec for rec in access_lines(edge) if rec["path"] == "/api/logged")
    assert rec["method"] == "GET" and rec["status"] == 200 and rec["host"] == "log.example"
    assert rec["route_id"] == "api" and rec["client"] == "127.0.0.1"
    assert rec["upstream"].startswith("127.0.0.1:") and rec["upstream_status"] == 200
    assert rec["bytes_out"] > 0 and rec["latency"] >= rec["upstream_latency"] >= 0
    assert rec["request_id"]
    assert "secret" not in json.dumps(rec)  # the query string is not logged


def test_error_bodies_are_json(edge: EdgeProcess) -> None:
    assert error_msg(httpx.get(edge.url + "/zzz").content) == "404 Route Not Found"


def test_bodiless_responses_keep_upstream_connection(edge: EdgeProcess, up: Upstream) -> None:
    with httpx.Client(base_url=edge.url) as c:
        c.get("/api/warm")
        before = up.connections
        for _ in range(5):
            assert c.head("/stream?n=10").status_code == 200
            assert c.get("/api/status/204").status_code == 204
            assert c.get("/api/status/304").status_code == 304
    assert up.connections == before
