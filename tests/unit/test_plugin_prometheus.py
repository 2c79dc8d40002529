import time

import trio
from prometheus_client.parser import text_string_to_metric_families

from edge import metrics
from edge.plugins.prometheus import Prometheus, get_metrics, sample_worker
from edge.worker_state import WorkerState
from tests.support.plugins import Consumer, Obj, build, request, upstream_response


def samples() -> dict:
    out = {}
    for fam in text_string_to_metric_families(metrics.render().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_log_records_bounded_labels() -> None:
    p = build(Prometheus, {})
    req = request(uri="/users/12345?secret=1", route=Obj("rt-prom", name="users"))
    req.matched_uri = "/users/*"
    req.matched_host = ""
    req.consumer = Consumer("jack")
    req.status = 201
    req.bytes_in, req.bytes_out = 100, 2000
    req.upstream_addr = "127.0.0.1:8080"
    req.upstream_latency = 0.002
    before = samples()
    p.log(req, upstream_response(201))
    p.log(req, upstream_response(201))
    after = samples()
    labels = (
        ("code", "201"),
        ("consumer", "jack"),
        ("matched_host", ""),
        ("matched_uri", "/users/*"),
        ("node", "127.0.0.1:8080"),
        ("route", "rt-prom"),
        ("service", ""),
    )
    assert after[("edge_http_status_total", labels)] == 2
    bw = (("consumer", "jack"), ("node", "127.0.0.1:8080"), ("route", "rt-prom"), ("service", ""))
    key_out = ("edge_bandwidth_total", tuple(sorted((*bw, ("type", "egress")))))
    assert after[key_out] == 4000
    key_in = ("edge_bandwidth_total", tuple(sorted((*bw, ("type", "ingress")))))
    assert after[key_in] == 200
    lat = ("edge_http_latency_count", tuple(sorted((*bw, ("type", "upstream")))))
    assert after[lat] == 2
    assert (
        after[("edge_http_requests_total", ())] - before.get(("edge_http_requests_total", ()), 0)
        == 2
    )
    text = metrics.render().decode()
    assert "12345" not in text and "secret" not in text
    assert "edge_node_info" in text


def test_prefer_name() -> None:
    p = build(Prometheus, {"prefer_name": True})
    req = request(route=Obj("rt-n", name="named-route"))
    req.status = 200
    p.log(req, upstream_response())
    assert 'route="named-route"' in metrics.render().decode()


def _bucket_counts(route: str, kind: str) -> dict[str, float]:
    out = {}
    for (name, labels), v in samples().items():
        d = dict(labels)
        if name == "edge_http_latency_bucket" and d["route"] == route and d["type"] == kind:
            out[d["le"]] = v
    return out


def test_buffered_histograms_match_observe() -> None:
    """Per-request counts kept in Python, flushed later, give the buckets observe would."""
    p = build(Prometheus, {})
    route = Obj("rt-buckets")
    for _ in range(3):
        req = request(route=route)
        req.status = 200
        req.start = time.monotonic() - 0.0123  # ~12.3 ms in total: bucket le=20
        req.upstream_latency = 0.004  # bucket le=5; edge ~8.3 ms: le=10
        p.log(req, upstream_response())
    metrics.flush()
    req_b = _bucket_counts("rt-buckets", "request")
    assert req_b["10.0"] == 0 and req_b["20.0"] == 3 and req_b["+Inf"] == 3
    up = _bucket_counts("rt-buckets", "upstream")
    assert up["2.0"] == 0 and up["5.0"] == 3
    edge = _bucket_counts("rt-buckets", "edge")
    assert edge["5.0"] == 0 and edge["10.0"] == 3
    s = samples()
    key = (("consumer", ""), ("node", ""), ("route", "rt-buckets"), ("service", ""),
           ("type", "upstream"))  # fmt: skip
    assert abs(s[("edge_http_latency_sum", key)] - 12.0) < 1e-6


async def test_flush_task_flushes_at_exit() -> None:
    """The worker's flush task writes what is pending when it is cancelled."""
    p = build(Prometheus, {})
    req = request(route=Obj("rt-exit"))
    req.status = 204
    m = get_metrics()
    child = m.status.labels("204", "rt-exit", "", "", "", "", "")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(metrics.flush_periodically, None, 3600.0)
        await trio.sleep(0)
        p.log(req, upstream_response(204))
        assert child._value.get() == 0  # buffered, not written yet
        nursery.cancel_scope.cancel()
    assert child._value.get() == 1


def test_sample_worker_connection_states() -> None:
    state = WorkerState(None)
    state.conn_opened()
    state.conn_opened()
    state.requests = 1
    sample_worker(state)
    conns = {
        dict(labels)["state"]: v
        for (name, labels), v in samples().items()
        if name == "edge_http_current_connections"
    }
    assert conns["active"] == 2 and conns["writing"] == 1 and conns["waiting"] == 0
