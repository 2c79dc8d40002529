"""prometheus (APISIX priority 500): request metrics, named like APISIX's with ``edge_``.

The log phase records, per request of a route carrying the plugin:

- ``edge_http_status{code,route,matched_uri,matched_host,service,consumer,node}``
- ``edge_http_latency{type=request|upstream|edge,route,service,consumer,node}`` (ms,
  APISIX's default buckets 1 ... 60000)
- ``edge_bandwidth{type=ingress|egress,route,service,consumer,node}`` (bytes)
- ``edge_http_requests_total``

Also defined here, for the parts of edge that know the values: the server
(``connections_gauge()``: ``edge_http_current_connections{state}``) and the health
checker (``upstream_status_gauge()``: ``edge_upstream_status{name,ip,port}``);
``edge_node_info{hostname,version}`` is set when the plugin is first compiled.

Labels are bounded by the configuration, never by clients: route/service ids (or names
with ``prefer_name``), the route's own uri/host patterns, consumer names, upstream node
addresses from the config, and status codes. Metrics go through ``edge.metrics``
(prometheus_client multiprocess mode), aggregated across workers at admin ``/metrics``.

Hot path: a multiprocess value write costs ~4 us and a request makes about nine, so
``log`` only adds to plain per-process counters of its label set (``_Series``: a count,
bucket arrays and sums, byte totals) and queues the series once per flush. The flusher
(``edge.metrics.on_flush``; every ``edge.metrics.FLUSH_INTERVAL`` = 0.5 s in a worker,
when the worker stops, and before an in-process ``render()``) adds them to the
prometheus_client values, so admin ``/metrics`` is at most ~0.5 s behind the traffic.
The same flusher samples, from the worker's ``WorkerState``, the connection gauge
(``edge_http_current_connections``) and the health registry's node verdicts
(``edge_upstream_status``).
"""

from __future__ import annotations

import socket
import time
from bisect import bisect_left
from typing import Any

import msgspec

from edge import __version__, metrics
from edge.context import Request, Response
from edge.plugins.base import CompileEnv, Plugin

LATENCY_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
ROUTE_LABELS = ("route", "service", "consumer", "node")
MAX_SERIES_CACHE = 10000  # children kept per plugin instance; bounded by config anyway
# upper bounds as prometheus_client keeps them (+Inf last): bisect_left gives the bucket
# ``observe`` would pick (the first bound >= the value)
_BOUNDS = (*(float(b) for b in LATENCY_BUCKETS), float("inf"))
_NB = len(_BOUNDS)


class Config(msgspec.Struct, forbid_unknown_fields=True):
    prefer_name: bool = False


class _Metrics:
    def __init__(self) -> None:
        self.status = metrics.counter(
            "edge_http_status",
            "HTTP status codes per service in edge",
            ["code", "route", "matched_uri", "matched_host", "service", "consumer", "node"],
        )
        self.latency = metrics.histogram(
            "edge_http_latency",
            "HTTP request latency in milliseconds per service in edge",
            ["type", *ROUTE_LABELS],
            buckets=LATENCY_BUCKETS,
        )
        self.bandwidth = metrics.counter(
            "edge_bandwidth",
            "Total bandwidth in bytes consumed per service in edge",
            ["type", *ROUTE_LABELS],
        )
        self.requests = metrics.counter(
            "edge_http_requests_total", "The total number of client requests"
        )
        self.node_info = metrics.gauge(
            "edge_node_info", "Info of edge node", ["hostname", "version"], mode="max"
        )
        self.node_info.labels(hostname=socket.gethostname(), version=__version__).set(1)


_M: _Metrics | None = None


def get_metrics() -> _Metrics:
    """Define the metrics on first use, after the process set up multiprocess mode."""
    global _M
    if _M is None:
        _M = _Metrics()
    return _M


def connections_gauge() -> Any:
    """``edge_http_current_connections{state}`` for the server to set (summed over live
    workers): states as nginx's stub_status, ``active``, ``reading``, ``writing``,
    ``waiting``, plus the counters-as-gauges ``accepted`` and ``handled``."""
    return metrics.gauge(
        "edge_http_current_connections", "Number of HTTP connections", ["state"], mode="livesum"
    )


def upstream_status_gauge() -> Any:
    """``edge_upstream_status{name,ip,port}`` (1 healthy, 0 unhealthy) for health checks."""
    return metrics.gauge(
        "edge_upstream_status",
        "Upstream status from health check",
        ["name", "ip", "port"],
        mode="livemax",
    )


class _Series:
    """Counts of one label set since the last flush; children resolved at first flush."""

    __slots__ = (
        "labels",
        "children",
        "queued",
        "n",
        "req_b",
        "req_sum",
        "up_b",
        "up_sum",
        "edge_b",
        "edge_sum",
        "bytes_in",
        "bytes_out",
    )

    def __init__(self, labels: tuple[str, ...]) -> None:
        # code, route, matched_uri, matched_host, service, consumer, node
        self.labels = labels
        self.children: tuple[Any, ...] | None = None
        self.queued = False
        self.n = 0
        self.req_b = [0] * _NB
        self.req_sum = 0.0
        self.up_b = [0] * _NB
        self.up_sum = 0.0
        self.edge_b = [0] * _NB
        self.edge_sum = 0.0
        self.bytes_in = 0
        self.bytes_out = 0

    def flush(self, m: _Metrics) -> None:
        self.queued = False  # a request counted from here on queues the series again
        ch = self.children
        if ch is None:
            code, route, muri, mhost, svc, cons, node = self.labels
            ch = self.children = (
                m.status.labels(code, route, muri, mhost, svc, cons, node),
                m.latency.labels("request", route, svc, cons, node),
                m.latency.labels("upstream", route, svc, cons, node),
                m.latency.labels("edge", route, svc, cons, node),
                m.bandwidth.labels("ingress", route, svc, cons, node),
                m.bandwidth.labels("egress", route, svc, cons, node),
            )
        status, lat_req, lat_up, lat_edge, ingress, egress = ch
        n, self.n = self.n, 0
        if n:
            status.inc(n)
        _drain_histogram(lat_req, self.req_b, self.req_sum)
        self.req_sum = 0.0
        _drain_histogram(lat_up, self.up_b, self.up_sum)
        self.up_sum = 0.0
        _drain_histogram(lat_edge, self.edge_b, self.edge_sum)
        self.edge_sum = 0.0
        b, self.bytes_in = self.bytes_in, 0
        if b:
            ingress.inc(b)
        b, self.bytes_out = self.bytes_out, 0
        if b:
            egress.inc(b)


def _drain_histogram(child: Any, counts: list[int], total: float) -> None:
    """Add bucket counts and a sum to a histogram child, as that many ``observe``s would
    (prometheus_client keeps non-cumulative buckets, one value per bound)."""
    seen = False
    for i in range(_NB):
        c = counts[i]
        if c:
            counts[i] = 0
            child._buckets[i].inc(c)
            seen = True
    if seen or total:
        child._sum.inc(total)


class _Pending:
    """Series with counts not yet flushed, and the unlabelled request total."""

    __slots__ = ("series", "requests")

    def __init__(self) -> None:
        self.series: list[_Series] = []
        self.requests = 0


_PENDING = _Pending()
_CONN_STATES = ("active", "reading", "writing", "waiting", "accepted", "handled")


def _flush(state: Any) -> None:
    p = _PENDING
    batch, p.series = p.series, []
    n, p.requests = p.requests, 0
    if batch or n:
        m = get_metrics()
        for s in batch:
            s.flush(m)
        if n:
            m.requests.inc(n)
    if state is not None:
        sample_worker(state)


class _WorkerGauges:
    def __init__(self) -> None:
        g = connections_gauge()
        self.conns = [g.labels(state=s) for s in _CONN_STATES]
        self.upstream = upstream_status_gauge()
        self.up_children: dict[tuple[str, str, str], Any] = {}


_WG: _WorkerGauges | None = None


def sample_worker(state: Any) -> None:
    """Set the connection and upstream-health gauges from a ``WorkerState`` (read only)."""
    global _WG
    if _WG is None:
        _WG = _WorkerGauges()
    wg = _WG
    active = int(getattr(state, "connections", 0))
    writing = int(getattr(state, "requests", 0))
    waiting_conns = list(getattr(state, "waiting_conns", ()))
    idle = sum(1 for c in waiting_conns if getattr(c, "idle", False))
    # nginx's stub_status: reading a request head, writing (a request in flight), waiting
    # (idle keep-alive); accepted == handled as edge never drops an accepted connection
    accepted = int(getattr(state, "_conn_counter", 0))
    values = (active, len(waiting_conns) - idle, writing, idle, accepted, accepted)
    for child, v in zip(wg.conns, values, strict=True):
        child.set(v)
    health = getattr(state, "health", None)
    views = getattr(health, "_by_key", None) or {}
    for view in list(views.values()):
        name = str(getattr(view.upstream, "id", "") or "")
        for key, node in list(view.nodes.items()):
            lbl = wg.up_children.get((name, key, ""))
            if lbl is None:
                ip, _, port = str(key).rpartition(":")
                lbl = wg.upstream.labels(name=name, ip=ip.strip("[]"), port=port)
                if len(wg.up_children) >= MAX_SERIES_CACHE:
                    wg.up_children.clear()
                wg.up_children[(name, key, "")] = lbl
            lbl.set(1 if node.healthy else 0)


metrics.on_flush(_flush)


class Prometheus(Plugin):
    name = "prometheus"
    priority = 500
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        self.m = get_metrics()
        self.series: dict[tuple[Any, ...], _Series] = {}
        self.attr = "name" if conf.prefer_name else "id"

    def _name(self, obj: Any) -> str:
        if obj is None:
            return ""
        v = getattr(obj, self.attr, None) if self.attr == "name" else None
        if not v:
            v = getattr(obj, "id", None)
        return "" if v is None else str(v)

    def log(self, req: Request, resp: Response | None) -> None:
        status = req.status or (resp.status if resp is not None else 0)
        svc_obj = req.service if req.service is not None else getattr(req.route, "service", None)
        node = req.upstream_addr or ""
        consumer = getattr(req.consumer, "username", "") or ""
        key = (
            status,
            id(req.route),
            id(svc_obj),
            consumer,
            node,
            req.matched_uri,
            req.matched_host,
        )
        s = self.series.get(key)
        if s is None:
            if len(self.series) >= MAX_SERIES_CACHE:
                self.series.clear()
            s = _Series(
                (
                    str(status),
                    self._name(req.route),
                    req.matched_uri or "",
                    req.matched_host or "",
                    self._name(svc_obj),
                    consumer,
                    node,
                )
            )
            self.series[key] = s
        p = _PENDING
        if not s.queued:
            s.queued = True
            p.series.append(s)
        p.requests += 1
        s.n += 1
        total_ms = (time.monotonic() - req.start) * 1000.0
        s.req_b[bisect_left(_BOUNDS, total_ms)] += 1
        s.req_sum += total_ms
        up = req.upstream_latency
        if up is not None:
            up_ms = up * 1000.0
            s.up_b[bisect_left(_BOUNDS, up_ms)] += 1
            s.up_sum += up_ms
            edge_ms = total_ms - up_ms if total_ms > up_ms else 0.0
        else:
            edge_ms = total_ms
        s.edge_b[bisect_left(_BOUNDS, edge_ms)] += 1
        s.edge_sum += edge_ms
        if req.bytes_in:
            s.bytes_in += req.bytes_in
        if req.bytes_out:
            s.bytes_out += req.bytes_out
