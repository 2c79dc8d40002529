import pytest
import trio

from edge.plugins.limit_conn import LimitConn
from edge.plugins.limit_count import LimitCount
from edge.plugins.limit_req import LimitReq
from tests.support.plugins import (
    Obj,
    build,
    config_error,
    env,
    json_body,
    request,
    upstream_response,
)


def test_limit_count_window_and_headers() -> None:
    p = build(LimitCount, {"count": 2, "time_window": 60})
    for remaining in ("1", "0"):
        req = request()
        assert p.access(req) is None
        resp = upstream_response()
        p.header_filter(req, resp)
        assert resp.headers.get("x-ratelimit-limit") == "2"
        assert resp.headers.get("x-ratelimit-remaining") == remaining
        assert 0 < int(resp.headers.get("x-ratelimit-reset")) <= 60
    r = p.access(request())
    assert r.status == 503 and r.body == b""
    assert r.headers.get("x-ratelimit-remaining") == "0"
    # another client has its own counter
    assert p.access(request(client="10.0.0.2")) is None


def test_limit_count_replaces_upstream_quota_headers() -> None:
    p = build(LimitCount, {"count": 5, "time_window": 60})
    req = request()
    assert p.access(req) is None
    resp = upstream_response(headers=[("X-RateLimit-Limit", "999"), ("x-ratelimit-limit", "1")])
    p.header_filter(req, resp)
    assert resp.headers.get_all("x-ratelimit-limit") == ["5"]
    assert resp.headers.get_all("x-ratelimit-remaining") == ["4"]


def test_limit_count_window_reset_uses_time() -> None:
    p = build(LimitCount, {"count": 1, "time_window": 10})
    t = p.table
    key = p.scope.key(request(), "127.0.0.1")
    assert t.update(key, p.step, now=100.0)[0] == 0
    assert t.update(key, p.step, now=105.0)[0] == -1
    assert t.update(key, p.step, now=110.5)[0] == 0  # a new window


def test_limit_count_keys_and_options() -> None:
    e = env()
    conf = {
        "count": 1,
        "time_window": 60,
        "key": "$http_x_user $remote_addr",
        "key_type": "var_combination",
        "rejected_code": 429,
        "rejected_msg": "slow down",
        "show_limit_quota_header": False,
    }
    p = build(LimitCount, conf, e)
    assert p.access(request(headers={"X-User": "a"})) is None
    r = p.access(request(headers={"X-User": "a"}))
    assert r.status == 429 and json_body(r) == {"error_msg": "slow down"}
    assert "x-ratelimit-limit" not in r.headers
    assert p.access(request(headers={"X-User": "b"})) is None
    # constant: one counter for everyone; routes stay separate unless grouped
    pc = build(LimitCount, {"count": 1, "time_window": 60, "key": "all", "key_type": "constant"}, e)
    assert pc.access(request(client="1.1.1.1")) is None
    assert pc.access(request(client="2.2.2.2")).status == 503
    assert pc.access(request(route=Obj("r2"))) is None
    g = {"count": 1, "time_window": 60, "group": "g1"}
    g1, g2 = build(LimitCount, g, e), build(LimitCount, g, e)
    assert g1.access(request(route=Obj("a"))) is None
    assert g2.access(request(route=Obj("b"))).status == 503
    # var missing -> remote_addr
    pv = build(LimitCount, {"count": 1, "time_window": 60, "key": "http_x_none"}, e)
    assert pv.access(request(client="9.9.9.9")) is None
    assert pv.access(request(client="9.9.9.9")).status == 503


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"count": 0, "time_window": 1}, "count"),
        ({"count": 1, "time_window": 0}, "time_window"),
        ({"count": 1, "time_window": 1, "policy": "redis"}, "policy"),
        ({"count": 1, "time_window": 1, "key_type": "nope"}, "key_type"),
        ({"count": 1, "time_window": 1, "key": "no_such_var"}, "key"),
        ({"count": 1, "time_window": 1, "rejected_code": 99}, "rejected_code"),
    ],
)
def test_limit_count_config_errors(conf: dict, field: str) -> None:
    assert config_error(LimitCount, conf).startswith(field)


def test_limit_req_leaky_bucket() -> None:
    p = build(LimitReq, {"rate": 1, "burst": 1, "nodelay": True})
    key = p.scope.key(request(), "127.0.0.1")
    step = p.step
    assert p.table.update(key, step, now=10.0) == 0.0
    assert p.table.update(key, step, now=10.0) == 1.0  # excess 1: would wait 1 s
    assert p.table.update(key, step, now=10.0) == -1.0  # beyond burst
    assert p.table.update(key, step, now=12.5) == 0.0  # leaked away


async def test_limit_req_reject_and_delay() -> None:
    p = build(LimitReq, {"rate": 1000, "burst": 5})
    assert await p.access(request()) is None
    with trio.fail_after(5):
        assert await p.access(request()) is None  # waits about a millisecond, then admitted
    strict = {"rate": 0.001, "burst": 0, "rejected_code": 429, "rejected_msg": "x", "nodelay": True}
    p = build(LimitReq, strict)
    assert await p.access(request()) is None
    r = await p.access(request())
    assert r.status == 429 and json_body(r) == {"error_msg": "x"}
    assert config_error(LimitReq, {"rate": 0, "burst": 0}).startswith("rate")
    assert config_error(LimitReq, {"rate": 1, "burst": -1}).startswith("burst")


async def test_limit_conn_counts_and_releases_in_log() -> None:
    p = build(LimitConn, {"conn": 1, "burst": 1, "default_conn_delay": 0.001, "rejected_code": 429})
    a, b, c = request(), request(), request()
    assert await p.access(a) is None
    assert await p.access(b) is None  # in burst: delayed
    r = await p.access(c)
    assert r.status == 429
    p.log(c, r)  # a rejected request holds no slot
    p.log(a, upstream_response())
    p.log(b, upstream_response())
    p.log(b, upstream_response())  # a second log call does not go below zero
    assert await p.access(request()) is None
    assert config_error(LimitConn, {"conn": 0, "burst": 0, "default_conn_delay": 1}).startswith(
        "conn"
    )
    assert config_error(LimitConn, {"conn": 1, "burst": 0, "default_conn_delay": 0}).startswith(
        "default_conn_delay"
    )
