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
"""

from __future__ import annotations

import socket
import time
from typing import Any

import msgspec

from edge import __version__, metrics
from edge.context import Request, Response
from edge.plugins.base import CompileEnv, Plugin

LATENCY_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
ROUTE_LABELS = ("route", "service", "consumer", "node")
MAX_SERIES_CACHE = 10000  # children kept per plugin instance; bounded by config anyway


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
    """The label children of one request shape, resolved once and reused."""

    __slots__ = ("status", "lat_request", "lat_upstream", "lat_edge", "ingress", "egress")

    def __init__(
        self,
        m: _Metrics,
        code: str,
        route: str,
        muri: str,
        mhost: str,
        svc: str,
        cons: str,
        node: str,
    ):
        self.status = m.status.labels(code, route, muri, mhost, svc, cons, node)
        self.lat_request = m.latency.labels("request", route, svc, cons, node)
        self.lat_upstream = m.latency.labels("upstream", route, svc, cons, node)
        self.lat_edge = m.latency.labels("edge", route, svc, cons, node)
        self.ingress = m.bandwidth.labels("ingress", route, svc, cons, node)
        self.egress = m.bandwidth.labels("egress", route, svc, cons, node)


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
                self.m,
                str(status),
                self._name(req.route),
                req.matched_uri or "",
                req.matched_host or "",
                self._name(svc_obj),
                consumer,
                node,
            )
            self.series[key] = s
        s.status.inc()
        self.m.requests.inc()
        total_ms = (time.monotonic() - req.start) * 1000.0
        s.lat_request.observe(total_ms)
        if req.upstream_latency is not None:
            up_ms = req.upstream_latency * 1000.0
            s.lat_upstream.observe(up_ms)
            s.lat_edge.observe(max(total_ms - up_ms, 0.0))
        else:
            s.lat_edge.observe(total_ms)
        if req.bytes_in:
            s.ingress.inc(req.bytes_in)
        if req.bytes_out:
            s.egress.inc(req.bytes_out)
