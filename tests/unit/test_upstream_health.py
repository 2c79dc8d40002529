"""Node health counters and the registry's survival across snapshot swaps (no I/O)."""

from __future__ import annotations

from typing import Any

import msgspec

from edge.config.model import Checks, UpstreamSpec
from edge.upstream.health import HTTP, TCP, TIMEOUT, HealthRegistry, NodeHealth
from edge.upstream.model import compile_upstream


def test_failures_then_successes_flip_state() -> None:
    h = NodeHealth()
    assert not h.failure(HTTP, 3)
    assert not h.failure(HTTP, 3)
    assert h.failure(HTTP, 3) and not h.healthy
    assert not h.success(2)
    assert h.success(2) and h.healthy


def test_success_resets_failure_streak() -> None:
    h = NodeHealth()
    h.failure(TCP, 2)
    h.success(1)
    assert not h.failure(TCP, 2)
    assert h.healthy


def test_zero_threshold_disables_a_kind() -> None:
    h = NodeHealth()
    for _ in range(10):
        assert not h.failure(TIMEOUT, 0)
    assert h.healthy


class Snap:
    def __init__(self, *ups: Any) -> None:
        self.upstreams = {u.id: u for u in ups}
        self.routes: dict[str, Any] = {}


def upstream(uid: str, checks: dict[str, Any] | None, nodes: dict[str, int]) -> Any:
    spec = msgspec.convert({"nodes": nodes, "checks": checks}, UpstreamSpec)
    return compile_upstream(spec, uid)


PASSIVE = {
    "active": {"http_path": "/h"},
    "passive": {"unhealthy": {"http_statuses": [500], "http_failures": 1}},
}


def test_passive_reports_and_predicate() -> None:
    u = upstream("u", PASSIVE, {"10.0.0.1:80": 1, "10.0.0.2:80": 1})
    reg = HealthRegistry()
    reg.sync(Snap(u))
    view = reg.view(u)
    assert view is not None
    a, b = u.nodes
    view.report_status(a, 500)
    healthy = reg.predicate(u)
    assert not healthy(a) and healthy(b)
    assert u.balancer.pick(None, set(), healthy) is b


def test_state_survives_swap_when_unchanged_and_resets_when_checks_change() -> None:
    reg = HealthRegistry()
    u1 = upstream("u", PASSIVE, {"10.0.0.1:80": 1})
    reg.sync(Snap(u1))
    view = reg.view(u1)
    assert view is not None
    view.report_status(u1.nodes[0], 500)
    # a new snapshot with an equal upstream keeps the verdict
    u2 = upstream("u", PASSIVE, {"10.0.0.1:80": 1, "10.0.0.3:80": 1})
    reg.sync(Snap(u2))
    assert not reg.predicate(u2)(u2.nodes[0])
    assert reg.predicate(u2)(u2.nodes[1])
    # changed checks start from a clean slate
    changed = dict(PASSIVE, active={"http_path": "/other"})
    u3 = upstream("u", changed, {"10.0.0.1:80": 1})
    reg.sync(Snap(u3))
    assert reg.predicate(u3)(u3.nodes[0])


def test_upstream_without_checks_is_always_healthy() -> None:
    reg = HealthRegistry()
    u = upstream("plain", None, {"10.0.0.1:80": 1})
    reg.sync(Snap(u))
    assert reg.view(u) is None
    assert reg.predicate(u)(u.nodes[0])
    assert isinstance(msgspec.convert(PASSIVE, Checks), Checks)
