"""prometheus: metrics of 2 workers, summed at admin /metrics, parsed back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.plugins import Gateway, fresh_get, start_gateway
from tests.support.procs import free_port, wait_until

# a loopback port nobody listens on: its node fails every TCP probe
DEAD = f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    routes = [
        {"id": "prom", "uri": "/prom/*", "service_id": "svc1", "plugins": {"key-auth": {}}},
        {"id": "named", "name": "named-route", "uri": "/named",
         "plugins": {"prometheus": {"prefer_name": True}}},
    ]  # fmt: skip
    probe = {"type": "tcp", "timeout": 1,
             "healthy": {"interval": 0.1, "successes": 1},
             "unhealthy": {"interval": 0.1, "tcp_failures": 1}}  # fmt: skip
    routes.append({"id": "checked", "uri": "/checked", "upstream_id": "checked"})
    yield from start_gateway(
        routes,
        workers=2,
        services=[{"id": "svc1", "plugins": {"prometheus": {}}}],
        consumers=[{"username": "jack", "plugins": {"key-auth": {"key": "k-jack"}}}],
        upstreams=[{"id": "checked", "checks": {"active": probe}, "nodes": {DEAD: 1}}],
    )


def scrape(gw: Gateway) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(gw.metrics_text()):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def total(samples: list, **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_from_both_workers(gw: Gateway) -> None:
    url = gw.edge.url
    for i in range(20):
        fresh_get(f"{url}/prom/item/{i}?token=secret{i}", headers={"apikey": "k-jack"})
    for _ in range(5):
        fresh_get(f"{url}/prom/x")  # 401, no consumer
    fresh_get(f"{url}/named")

    def counted() -> bool:
        # each worker flushes its own counts (every 0.5 s): wait for every one of them
        status = scrape(gw).get("edge_http_status_total", [])
        return total(status, route="prom") == 25 and total(status, route="named-route") == 1

    wait_until(counted, 10, "26 requests counted")
    m = scrape(gw)
    status = m["edge_http_status_total"]
    ok = {"code": "200", "route": "prom", "matched_uri": "/prom/*", "service": "svc1",
          "consumer": "jack"}  # fmt: skip
    assert total(status, **ok) == 20
    assert total(status, code="401", route="prom", consumer="") == 5
    assert all(s.labels["node"] in ("", gw.up.addr) for s in status)
    assert total(status, route="named-route") == 1
    assert m["edge_http_requests_total"][0].value >= 26
    lat = m["edge_http_latency_bucket"]
    assert {s.labels["type"] for s in lat} >= {"request", "upstream", "edge"}
    inf = [s for s in lat if s.labels["le"] == "+Inf" and s.labels["type"] == "request"]
    assert sum(s.value for s in inf if s.labels["route"] == "prom") == 25
    assert {s.labels["le"] for s in lat} >= {"1.0", "60000.0", "+Inf"}
    bw = m["edge_bandwidth_total"]
    assert total(bw, type="egress", route="prom") > 0
    assert total(bw, type="ingress", route="prom") >= 0
    assert m["edge_node_info"][0].labels["version"]
    text = gw.metrics_text()
    # bounded labels: no raw paths, query values or keys
    assert "/prom/item/" not in text and "secret1" not in text and "k-jack" not in text


def test_worker_gauges(gw: Gateway) -> None:
    """Connection states and health-checked nodes, sampled by the workers' flush task."""

    def statuses() -> dict[tuple[str, str], float]:
        return {
            (s.labels["ip"], s.labels["port"]): s.value
            for s in scrape(gw).get("edge_upstream_status", [])
            if s.labels["name"] == "checked"
        }

    dead_ip, dead_port = DEAD.rsplit(":", 1)
    wait_until(lambda: statuses().get((dead_ip, dead_port)) == 0, 10, "dead node reported 0")
    fresh_get(f"{gw.edge.url}/named")
    conns = {s.labels["state"]: s.value for s in scrape(gw)["edge_http_current_connections"]}
    assert set(conns) == {"active", "reading", "writing", "waiting", "accepted", "handled"}
    assert conns["accepted"] >= 1 and conns["handled"] == conns["accepted"]
    assert all(v >= 0 for v in conns.values())
