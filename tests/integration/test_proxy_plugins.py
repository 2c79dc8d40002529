"""The plugin phases around the proxy: global rules on every request (404s included),
header and body filters on proxied and local responses, the consumer's chain after
authentication."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.procs import EdgeProcess
from tests.support.proxy import edge_proxy, route
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def edge(up: Upstream) -> Iterator[EdgeProcess]:
    routes = [
        route("plain", "/plain/*", up.addr),
        route(
            "rewritten",
            "/rewritten/*",
            up.addr,
            plugins={"response-rewrite": {"body": "replaced", "headers": {"X-Rw": "1"}}},
        ),
        route("auth", "/auth/*", up.addr, plugins={"key-auth": {}}),
    ]
    consumers = [
        {
            "username": "alice",
            "plugins": {
                "key-auth": {"key": "alice-key"},
                "response-rewrite": {"headers": {"X-Consumer": "alice"}},
            },
        }
    ]
    global_rules = [{"id": "g", "plugins": {"cors": {}}}]
    with edge_proxy(routes, consumers=consumers, global_rules=global_rules) as e:
        yield e


def test_global_rule_headers_on_proxied_and_local_responses(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/plain/x", headers={"Origin": "https://a.example"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = httpx.get(edge.url + "/nowhere", headers={"Origin": "https://a.example"})
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "*"


def test_body_filter_rewrites_streamed_body(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/rewritten/stream?n=100000")
    assert r.status_code == 200
    assert r.content == b"replaced" and r.headers["x-rw"] == "1"


def test_auth_plugin_and_consumer_chain(edge: EdgeProcess) -> None:
    assert httpx.get(edge.url + "/auth/x").status_code == 401
    r = httpx.get(edge.url + "/auth/x", headers={"apikey": "alice-key"})
    assert r.status_code == 200
    assert r.headers["x-consumer"] == "alice"
