"""The remaining config fields and branches, table-driven through one real gateway:
consumer and global-rule plugin merging, consumer groups, anonymous consumers,
hmac options, request-id/proxy-rewrite/response-rewrite/fault-injection variants."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.plugins import Gateway, start_gateway
from tests.support.plugins_hmac import authorization, gmt_now

ROUTES = [
    # consumer plugins merge in after auth (consumer wins over the route)
    {"id": "merge", "uri": "/merge", "plugins": {
        "key-auth": {}, "limit-count": {"count": 100, "time_window": 60}}},
    {"id": "key-anon", "uri": "/key-anon",
     "plugins": {"key-auth": {"anonymous_consumer": "guest"}}},
    {"id": "group", "uri": "/group", "plugins": {"key-auth": {}, "consumer-restriction": {
        "type": "consumer_group_id", "whitelist": ["gold"]}}},
    {"id": "by-route", "uri": "/by-route", "plugins": {"consumer-restriction": {
        "type": "route_id", "blacklist": ["by-route"], "rejected_code": 451}}},
    {"id": "hmac-opts", "uri": "/hmac-opts", "plugins": {"hmac-auth": {
        "allowed_algorithms": ["hmac-sha512"], "clock_skew": 0, "realm": "api"}}},
    {"id": "rid-range", "uri": "/rid-range", "plugins": {"request-id": {
        "algorithm": "range_id", "range_id": {"char_set": "abcdef123", "length": 10},
        "header_name": "X-Trace-Id", "include_in_response": False}}},
    {"id": "rid-uuid", "uri": "/rid-uuid", "plugins": {"request-id": {}}},
    {"id": "pr-flat", "uri": "/pr-flat", "plugins": {"proxy-rewrite": {
        "headers": {"X-Flat": "$http_x_in-suffix"}, "uri": "/flat"}}},
    {"id": "rr-b64", "uri": "/rr-b64", "plugins": {"response-rewrite": {
        "body": "aGVsbG8gd29ybGQ=", "body_base64": True,
        "headers": {"add": ["X-Multi: a", "X-Multi: b"]}}}},
    {"id": "fi-pct", "uri": "/fi-pct", "plugins": {"fault-injection": {
        "abort": {"http_status": 500, "percentage": 0},
        "delay": {"duration": 30, "vars": [[["arg_slow", "==", "yes"]]]}}}},
    {"id": "lc-plain", "uri": "/lc-plain", "plugins": {"limit-count": {
        "count": 1, "time_window": 60, "key": "consumer_name"}}},
]  # fmt: skip

CONSUMERS = [
    {"username": "jack", "group_id": "gold", "plugins": {
        "key-auth": {"key": "jack-key"},
        "limit-count": {"count": 1, "time_window": 60, "rejected_code": 429}}},
    {"username": "rose", "group_id": "silver", "plugins": {"key-auth": {"key": "rose-key"}}},
    {"username": "guest"},
    {"username": "hm", "plugins": {"hmac-auth": {"key_id": "hm", "secret_key": "hm-secret"}}},
]  # fmt: skip


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    yield from start_gateway(
        ROUTES,
        consumers=CONSUMERS,
        consumer_groups=[{"id": "gold", "plugins": {}}, {"id": "silver", "plugins": {}}],
        global_rules=[{"id": "g1", "plugins": {"cors": {"allow_origins": "http://global.test"}}}],
    )


def test_consumer_plugin_wins_over_route(gw: Gateway) -> None:
    jack = {"apikey": "jack-key"}
    assert gw.get("/merge", headers=jack).status_code == 200
    assert gw.get("/merge", headers=jack).status_code == 429  # jack's own count: 1
    rose = {"apikey": "rose-key"}
    assert [gw.get("/merge", headers=rose).status_code for _ in range(3)] == [200] * 3


def test_global_rule_plugins_apply_to_every_route(gw: Gateway) -> None:
    r = gw.get("/rid-uuid", headers={"Origin": "http://global.test"})
    assert r.headers["access-control-allow-origin"] == "http://global.test"
    r = gw.get("/no-such-route", headers={"Origin": "http://global.test"})
    assert r.status_code == 404 and r.json() == {"error_msg": "404 Route Not Found"}


def test_anonymous_group_route_restrictions(gw: Gateway) -> None:
    r = gw.get("/key-anon")
    assert r.status_code == 200 and gw.upstream_headers(r)["x-consumer-username"] == ["guest"]
    r = gw.get("/key-anon", headers={"apikey": "jack-key"})
    assert gw.upstream_headers(r)["x-consumer-username"] == ["jack"]
    assert gw.get("/group", headers={"apikey": "rose-key"}).status_code == 403
    assert gw.get("/group", headers={"apikey": "jack-key"}).status_code in (200, 429)
    r = gw.get("/by-route")
    assert r.status_code == 451 and r.json() == {"message": "The route_id is forbidden."}


def test_hmac_options(gw: Gateway) -> None:
    def h(alg: str, date: str) -> dict[str, str]:
        hd = {"Date": date}
        hd["Authorization"] = authorization(
            "hm", "hm-secret", "GET", "/hmac-opts", hd, ["@request-target", "date"], alg
        )
        return hd

    assert gw.get("/hmac-opts", headers=h("hmac-sha512", gmt_now(-86400))).status_code == 200
    r = gw.get("/hmac-opts", headers=h("hmac-sha256", gmt_now()))
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'hmac realm="api"'


def test_request_id_variants(gw: Gateway) -> None:
    r = gw.get("/rid-range")
    assert "x-trace-id" not in r.headers
    assert re.fullmatch(r"[abcdef123]{10}", gw.upstream_headers(r)["x-trace-id"][0])
    r = gw.get("/rid-uuid")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                        r.headers["x-request-id"])  # fmt: skip


def test_rewrite_variants(gw: Gateway) -> None:
    r = gw.get("/pr-flat?q=1")
    assert r.json()["path"] == "/flat?q=1"
    r = gw.get("/pr-flat", headers={"X-In": "val"})
    assert gw.upstream_headers(r)["x-flat"] == ["val-suffix"]
    r = gw.get("/rr-b64")
    assert r.content == b"hello world"
    assert r.headers.get_list("x-multi") == ["a", "b"]
    assert gw.get("/fi-pct").status_code == 200  # 0 % abort, delay only for ?slow=yes


def test_limit_count_key_without_value_falls_back_to_client(gw: Gateway) -> None:
    assert gw.get("/lc-plain").status_code == 200
    assert gw.get("/lc-plain").status_code == 503
