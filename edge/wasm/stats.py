"""Metrics: the ones guests define (proxy_define_metric & co) and the host's own
per-plugin counters (calls, traps by kind, VM restarts, time spent).

A guest metric ``name`` of plugin ``acme/pii-redact`` is exported as
``edge_wasm_acme_pii_redact_<name>`` with a ``tenant`` label, through edge.metrics
(summed across worker processes). ``proxy_get_metric`` answers this worker's value.
Metric ids are per process and stable across VM restarts: a recreated VM that
defines the same metric again gets the same id and continues its value.
"""

from __future__ import annotations

import re
from typing import Any

from edge import metrics
from edge.wasm.abi import MetricType, Status

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")
MAX_METRICS_PER_PLUGIN = 1000

CALLS = metrics.counter("edge_wasm_calls_total", "Calls into WASM plugins", ["plugin", "tenant"])
TRAPS = metrics.counter(
    "edge_wasm_traps_total", "WASM plugin calls that trapped, by kind", ["plugin", "tenant", "kind"]
)
RESTARTS = metrics.counter(
    "edge_wasm_vm_restarts_total", "WASM VMs discarded and recreated", ["plugin", "tenant"]
)
SECONDS = metrics.counter(
    "edge_wasm_call_seconds_total", "Time spent inside WASM plugin calls", ["plugin", "tenant"]
)


def metric_name(plugin: str, name: str) -> str:
    return "edge_wasm_" + _NOT_NAME.sub("_", plugin) + "_" + _NOT_NAME.sub("_", name)


class _Metric:
    __slots__ = ("type", "child", "value")

    def __init__(self, mtype: MetricType, child: Any) -> None:
        self.type = mtype
        self.child = child
        self.value = 0


class GuestMetrics:
    """All guest-defined metrics of this process."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, int, str], int] = {}
        self._by_id: dict[int, tuple[str, str, _Metric]] = {}
        self._per_plugin: dict[str, int] = {}

    def define(self, plugin: str, tenant: str, mtype: int, name: str) -> tuple[Status, int]:
        """``(OK, metric id)``, or the error status and 0 (a tuple, not ``int | Status``:
        an IntEnum is an int, so the union could not be told apart once compiled)."""
        try:
            mt = MetricType(mtype)
        except ValueError:
            return Status.BAD_ARGUMENT, 0
        if not name or len(name) > 200:
            return Status.BAD_ARGUMENT, 0
        key = (plugin, tenant, int(mt), name)
        mid = self._ids.get(key)
        if mid is not None:
            return Status.OK, mid
        if self._per_plugin.get(plugin, 0) >= MAX_METRICS_PER_PLUGIN:
            return Status.INTERNAL_FAILURE, 0
        full = metric_name(plugin, name)
        doc = f"WASM plugin {plugin} metric {name}"
        try:
            if mt is MetricType.COUNTER:
                m: Any = metrics.counter(full, doc, ["tenant"])
            elif mt is MetricType.GAUGE:
                m = metrics.gauge(full, doc, ["tenant"], mode="livesum")
            else:
                m = metrics.histogram(full, doc, ["tenant"])
        except ValueError:
            # same name already defined with another type (by this or another tenant)
            return Status.BAD_ARGUMENT, 0
        mid = len(self._by_id) + 1
        self._ids[key] = mid
        self._by_id[mid] = (plugin, tenant, _Metric(mt, m.labels(tenant=tenant)))
        self._per_plugin[plugin] = self._per_plugin.get(plugin, 0) + 1
        return Status.OK, mid

    def _get(self, plugin: str, tenant: str, mid: int) -> _Metric | None:
        e = self._by_id.get(mid)
        if e is None or e[0] != plugin or e[1] != tenant:
            return None
        return e[2]

    def increment(self, plugin: str, tenant: str, mid: int, delta: int) -> Status:
        m = self._get(plugin, tenant, mid)
        if m is None:
            return Status.NOT_FOUND
        if m.type is MetricType.COUNTER:
            if delta < 0:
                return Status.BAD_ARGUMENT
            m.child.inc(delta)
        elif m.type is MetricType.GAUGE:
            m.child.inc(delta)
        else:
            return Status.BAD_ARGUMENT
        m.value += delta
        return Status.OK

    def record(self, plugin: str, tenant: str, mid: int, value: int) -> Status:
        m = self._get(plugin, tenant, mid)
        if m is None:
            return Status.NOT_FOUND
        if m.type is MetricType.COUNTER:
            if value < m.value:
                return Status.BAD_ARGUMENT
            m.child.inc(value - m.value)
            m.value = value
        elif m.type is MetricType.GAUGE:
            m.child.set(value)
            m.value = value
        else:
            m.child.observe(value)
            m.value = value
        return Status.OK

    def get(self, plugin: str, tenant: str, mid: int) -> tuple[Status, int]:
        m = self._get(plugin, tenant, mid)
        if m is None:
            return Status.NOT_FOUND, 0
        return Status.OK, m.value


GUEST_METRICS = GuestMetrics()
