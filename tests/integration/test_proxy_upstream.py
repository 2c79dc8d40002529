"""Upstream failures through the real process: refused, reset, slow, malformed;
retries and the cases where no retry may happen; active and passive health checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.support.procs import EdgeProcess, free_port, wait_until
from tests.support.proxy import Reader, connect, edge_proxy, error_msg, route
from tests.support.upstream import MALFORMED, Upstream


@pytest.fixture(scope="module")
def a() -> Iterator[Upstream]:
    with Upstream("a") as u:
        yield u


@pytest.fixture(scope="module")
def b() -> Iterator[Upstream]:
    with Upstream("b") as u:
        yield u


@pytest.fixture(autouse=True)
def healthy_upstreams(a: Upstream, b: Upstream) -> Iterator[None]:
    yield
    for u in (a, b):
        u.fail_mode = None
        u.health_status = 200
        u.release()


DEAD = f"127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture(scope="module")
def edge(a: Upstream, b: Upstream) -> Iterator[EdgeProcess]:
    checks = {
        "active": {
            "http_path": "/health",
            "timeout": 1,
            "healthy": {"interval": 0.1, "successes": 1},
            "unhealthy": {"interval": 0.1, "http_failures": 1},
        }
    }
    passive = {
        # a probe success resets the failure counters (as in APISIX): probe healthy nodes
        # rarely so that live traffic decides; unhealthy ones often, to bring them back
        "active": {
            "http_path": "/health",
            "timeout": 1,
            "healthy": {"interval": 2, "successes": 1},
            "unhealthy": {"interval": 0.1, "http_failures": 254},
        },
        "passive": {"unhealthy": {"http_statuses": [500], "http_failures": 2}},
    }
    routes = [
        route("refused", "/refused/*", DEAD),
        route("one", "/one/*", a.addr, upstream={"retries": 0}),
        route("slow", "/slow", a.addr, timeout={"connect": 1, "send": 1, "read": 0.5}),
        route("retry", "/retry/*", DEAD, b.addr, upstream={"type": "roundrobin"}),
        route("pair", "/pair/*", a.addr, b.addr),
        route("norety", "/noretry/*", a.addr, b.addr, upstream={"retries": 0}),
        route("active", "/active/*", a.addr, b.addr, upstream={"checks": checks}),
        route("passive", "/passive/*", a.addr, b.addr, upstream={"checks": passive}),
    ]
    with edge_proxy(routes) as e:
        yield e


def get(edge: EdgeProcess, path: str, method: str = "GET", body: bytes = b"") -> httpx.Response:
    return httpx.request(method, edge.url + path, content=body or None, timeout=10)


def test_connection_refused_is_502(edge: EdgeProcess) -> None:
    r = get(edge, "/refused/x")
    assert r.status_code == 502
    assert r.json() == {"error_msg": "502 Bad Gateway"}
    assert "127.0.0.1" not in r.text  # no internals


def test_slow_upstream_is_504(edge: EdgeProcess, a: Upstream) -> None:
    r = get(edge, "/slow")
    assert r.status_code == 504
    assert error_msg(r.content) == "504 Gateway Timeout"


def test_reset_mid_response_closes_client_connection(edge: EdgeProcess) -> None:
    with connect(edge.port) as s:
        s.sendall(b"GET /one/reset HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(s)
        try:
            status, _, body = rd.response()
        except (EOFError, ConnectionResetError):
            return  # head went out, then the truncated body ended with a close
        # the reset came before anything was relayed: an error response
        assert status == 502, body


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_upstream_response_is_502(edge: EdgeProcess, kind: str) -> None:
    r = get(edge, f"/one/malformed/{kind}")
    assert r.status_code == 502
    assert r.json() == {"error_msg": "502 Bad Gateway"}


def test_retry_on_another_node_after_connect_failure(edge: EdgeProcess, b: Upstream) -> None:
    # the dead node is tried for about half of the requests; all must succeed on b,
    # POST included (nothing was sent, so repeating cannot duplicate anything)
    for i in range(6):
        assert get(edge, f"/retry/{i}").status_code == 200
        r = get(edge, f"/retry/p{i}", "POST", b"data")
        assert r.status_code == 200 and r.headers["x-upstream"] == "b"


def test_idempotent_request_retried_after_reset(edge: EdgeProcess, a: Upstream) -> None:
    a.fail_mode = "reset"
    for i in range(4):
        r = get(edge, f"/pair/{i}")
        assert r.status_code == 200 and r.headers["x-upstream"] == "b"


def test_post_not_retried_after_it_was_sent(edge: EdgeProcess, a: Upstream, b: Upstream) -> None:
    a.fail_mode = "reset"
    statuses = []
    for i in range(4):
        before_b = len(b.requests)
        r = get(edge, f"/pair/post{i}", "POST", b"once")
        statuses.append(r.status_code)
        if r.status_code == 502:
            # a got it and failed: b must not have seen this request
            assert not any(x["path"] == f"/pair/post{i}" for x in b.requests[before_b:])
    # round robin sends half of them to a
    assert 502 in statuses and 200 in statuses


def test_no_retry_when_retries_is_zero(edge: EdgeProcess, a: Upstream) -> None:
    a.fail_mode = "reset"
    statuses = {get(edge, f"/noretry/{i}").status_code for i in range(4)}
    assert statuses == {200, 502}


def _log_has(edge: EdgeProcess, text: str) -> bool:
    return text in edge.log()


def test_active_health_check_takes_node_out_and_back(
    edge: EdgeProcess, a: Upstream, b: Upstream
) -> None:
    a.health_status = 500
    wait_until(lambda: _log_has(edge, f"node {a.addr} is now unhealthy (active"), 20, "a out")
    served = {get(edge, f"/active/{i}").headers["x-upstream"] for i in range(6)}
    assert served == {"b"}
    a.health_status = 200
    wait_until(lambda: _log_has(edge, f"node {a.addr} is now healthy (active"), 20, "a back")
    wait_until(lambda: get(edge, "/active/back").headers["x-upstream"] == "a", 20, "traffic to a")


def test_passive_health_check_takes_node_out_and_active_brings_it_back(
    edge: EdgeProcess, a: Upstream, b: Upstream
) -> None:
    a.fail_mode = "500"
    # round robin: a sees every other request; two 500s from a mark it unhealthy
    wait_until(
        lambda: (
            get(edge, "/passive/x").status_code == 200
            and _log_has(edge, f"node {a.addr} is now unhealthy (passive")
        ),
        20,
        "a out by passive check",
    )
    a.fail_mode = None
    wait_until(lambda: _log_has(edge, f"node {a.addr} is now healthy (active"), 20, "a back")
    wait_until(
        lambda: get(edge, "/passive/back").headers.get("x-upstream") == "a", 20, "traffic to a"
    )


def test_upstream_errors_logged_without_client_internals(edge: EdgeProcess) -> None:
    get(edge, "/refused/logged")

    def lines() -> list[dict[str, object]]:
        return [
            json.loads(x)
            for x in edge.log_lines()
            if x.startswith("{") and '"path":"/refused/logged"' in x
        ]

    wait_until(lambda: bool(lines()), 10, "access log line")
    rec = lines()[-1]
    assert rec["status"] == 502 and rec["upstream"] == DEAD
