from prometheus_client.parser import text_string_to_metric_families

from edge import metrics
from edge.plugins.prometheus import Prometheus
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
