from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import msgspec
import pytest

from edge.config.model import UpstreamSpec
from edge.upstream.balancer import (
    ConsistentHash,
    LeastConn,
    PeakEwma,
    RoundRobin,
    hash_key_getter,
    make_balancer,
)
from edge.upstream.model import Node, compile_upstream, parse_node_key
from tests.support.config import make_request


def nodes(*spec: tuple[str, int] | tuple[str, int, int]) -> list[Node]:
    out = []
    for s in spec:
        host = s[0]
        out.append(Node(host, 80, s[1], s[2] if len(s) > 2 else 0))
    return out


def hosts(picked: list[Node | None]) -> list[str | None]:
    return [n.host if n else None for n in picked]


# -- round robin ------------------------------------------------------------------


def test_smooth_weighted_round_robin_sequence() -> None:
    b = RoundRobin(nodes(("a", 5), ("b", 1), ("c", 1)))
    # nginx's documented sequence for weights 5, 1, 1
    assert hosts([b.pick(None) for _ in range(7)]) == ["a", "a", "b", "a", "c", "a", "a"]


def test_round_robin_distribution_and_weight_zero() -> None:
    b = RoundRobin(nodes(("a", 3), ("b", 1), ("z", 0)))
    counts = Counter(hosts([b.pick(None) for _ in range(400)]))
    assert counts == {"a": 300, "b": 100}


def test_round_robin_skips_tried_and_unhealthy() -> None:
    ns = nodes(("a", 1), ("b", 1), ("c", 1))
    b = RoundRobin(ns)
    assert {b.pick(None, {"a:80"}).host for _ in range(10)} == {"b", "c"}
    down = {"b:80"}
    picked = {b.pick(None, frozenset(), lambda n: n.key not in down).host for _ in range(10)}
    assert picked == {"a", "c"}
    assert b.pick(None, {"a:80", "b:80", "c:80"}) is None


def test_all_unhealthy_still_picks_untried() -> None:
    b = RoundRobin(nodes(("a", 1), ("b", 1)))
    sick = lambda n: False  # noqa: E731
    assert {b.pick(None, set(), sick).host for _ in range(4)} == {"a", "b"}
    assert b.pick(None, {"a:80"}, sick).host == "b"
    assert b.pick(None, {"a:80", "b:80"}, sick) is None


def test_priority_groups() -> None:
    ns = nodes(("p1", 1, 10), ("p2", 1, 10), ("backup", 1, 0), ("cold", 1, -5))
    b = RoundRobin(ns)
    assert {b.pick(None).host for _ in range(10)} == {"p1", "p2"}
    assert b.pick(None, {"p1:80", "p2:80"}).host == "backup"
    assert b.pick(None, {"p1:80", "p2:80", "backup:80"}).host == "cold"
    # unhealthy high group: the healthy lower group is preferred...
    healthy = lambda n: n.priority < 10  # noqa: E731
    assert b.pick(None, set(), healthy).host == "backup"
    # ...and when nothing is healthy, the highest untried group is used anyway
    assert b.pick(None, set(), lambda n: False).host in {"p1", "p2"}


# -- consistent hash ----------------------------------------------------------------


def chash(ns: list[Node], hash_on: str = "vars", key: str | None = "arg_user") -> ConsistentHash:
    return ConsistentHash(ns, hash_key_getter(hash_on, key))


def test_chash_same_key_same_node_and_spread() -> None:
    ns = nodes(("a", 1), ("b", 1), ("c", 1))
    b = chash(ns)
    owner = {}
    for u in range(600):
        req = make_request("GET", f"/?user=u{u}")
        first = b.pick(req).host
        assert all(b.pick(req).host == first for _ in range(3))
        owner[u] = first
    counts = Counter(owner.values())
    assert set(counts) == {"a", "b", "c"}
    assert min(counts.values()) > 120  # 200 each on average


def test_chash_weights_shape_the_ring() -> None:
    b = chash(nodes(("heavy", 3), ("light", 1), ("off", 0)))
    counts = Counter(b.pick(make_request("GET", f"/?user={u}")).host for u in range(2000))
    assert set(counts) == {"heavy", "light"}
    assert counts["heavy"] > 2 * counts["light"]


def test_chash_removing_a_node_moves_only_its_keys() -> None:
    full = chash(nodes(("a", 1), ("b", 1), ("c", 1)))
    less = chash(nodes(("a", 1), ("b", 1)))
    for u in range(300):
        req = make_request("GET", f"/?user=k{u}")
        before = full.pick(req).host
        if before != "c":
            assert less.pick(req).host == before


def test_chash_fallback_is_stable_and_skips_tried() -> None:
    b = chash(nodes(("a", 1), ("b", 1), ("c", 1)))
    req = make_request("GET", "/?user=zed")
    first = b.pick(req)
    second = b.pick(req, {first.key})
    assert second.key != first.key
    assert b.pick(req, {first.key}).key == second.key
    third = b.pick(req, {first.key, second.key})
    assert third.key not in {first.key, second.key}
    assert b.pick(req, {"a:80", "b:80", "c:80"}) is None


@pytest.mark.parametrize(
    ("hash_on", "key", "req_a", "req_b"),
    [
        (
            "header",
            "X-User",
            {"headers": [("X-User", "1")]},
            {"headers": [("X-User", "1")], "client": "9.9.9.9"},
        ),
        (
            "cookie",
            "sid",
            {"headers": [("Cookie", "sid=s1")]},
            {"headers": [("Cookie", "a=b; sid=s1")]},
        ),
        ("vars", "remote_addr", {"client": "10.0.0.1"}, {"client": "10.0.0.1", "uri": "/other"}),
        (
            "vars_combinations",
            "$arg_a-$http_x_b",
            {"uri": "/?a=1", "headers": [("X-B", "2")]},
            {"uri": "/p?a=1", "headers": [("X-B", "2")], "client": "8.8.8.8"},
        ),
    ],
)
def test_chash_keys(hash_on: str, key: str, req_a: dict, req_b: dict) -> None:
    b = chash(nodes(*[(f"n{i}", 1) for i in range(8)]), hash_on, key)
    getter = hash_key_getter(hash_on, key)
    ra, rb = make_request(**req_a), make_request(**req_b)
    assert getter(ra) and getter(ra) == getter(rb)
    assert b.pick(ra).key == b.pick(rb).key


def test_chash_consumer_and_missing_key_fallback() -> None:
    b = chash(nodes(*[(f"n{i}", 1) for i in range(8)]), "consumer", None)
    r1, r2 = make_request(client="1.1.1.1"), make_request(client="2.2.2.2")
    r1.consumer = r2.consumer = SimpleNamespace(username="alice")
    assert b.pick(r1).key == b.pick(r2).key
    # no consumer: falls back to the client address, which is stable per client
    anon = [make_request(client="3.3.3.3") for _ in range(3)]
    assert len({b.pick(r).key for r in anon}) == 1


def test_hash_key_getter_errors() -> None:
    with pytest.raises(ValueError, match="needs a key"):
        hash_key_getter("header", None)
    with pytest.raises(ValueError, match="unknown variable"):
        hash_key_getter("vars", "not_a_var")


# -- least connections -----------------------------------------------------------------


def test_least_conn_follows_active_counts() -> None:
    b = LeastConn(nodes(("a", 1), ("b", 1), ("c", 2)))
    picked = []
    for _ in range(8):
        n = b.pick(None)
        b.on_start(n)
        picked.append(n.host)
    # with nothing finishing, in-flight requests spread in proportion to weight
    assert Counter(picked) == {"a": 2, "b": 2, "c": 4}
    a = next(n for n in b.nodes if n.host == "a")
    b.on_finish(a)
    b.on_finish(a)
    assert b.pick(None).host == "a"
    b.on_finish(a)  # never below zero
    assert b.active[0] == 0


def test_least_conn_ties_rotate() -> None:
    b = LeastConn(nodes(("a", 1), ("b", 1), ("c", 1)))
    assert {b.pick(None).host for _ in range(6)} == {"a", "b", "c"}


# -- peak EWMA ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_ewma_prefers_fast_nodes_and_recovers_slow_ones() -> None:
    clock = Clock()
    b = PeakEwma(nodes(("fast", 1), ("slow", 1)), clock=clock)
    fast, slow = b.nodes
    # unmeasured nodes cost nothing, so both are tried first
    b.on_finish(fast, 0.010)
    b.on_finish(slow, 0.500)
    assert Counter(b.pick(None).host for _ in range(20)) == {"fast": 20}
    # a peak replaces the average at once
    b.on_finish(fast, 2.0)
    assert b.pick(None).host == "slow"
    b.on_finish(fast, 0.010)  # one fast sample only pulls the average down partly
    assert b.ewma[0] > 0.010
    # with no traffic the cost decays, so a slow node is retried eventually
    clock.t += 120
    b.on_finish(fast, 0.050)
    assert b.pick(None).host == "slow"


def test_ewma_counts_in_flight() -> None:
    clock = Clock()
    b = PeakEwma(nodes(("a", 1), ("b", 1)), clock=clock)
    a, bn = b.nodes
    b.on_finish(a, 0.1)
    b.on_finish(bn, 0.15)
    for _ in range(3):
        b.on_start(a)
    assert b.pick(None).host == "b"


# -- the compiled upstream ------------------------------------------------------------


def test_compile_upstream_defaults_and_forms() -> None:
    spec = UpstreamSpec(nodes={"127.0.0.1:8080": 2, "[::1]:9000": 1, "svc": 1})
    u = compile_upstream(spec, "u1")
    assert [n.key for n in u.nodes] == ["127.0.0.1:8080", "[::1]:9000", "svc:80"]
    assert u.nodes[1].addr == ("::1", 9000)
    assert u.retries == 2
    assert u.timeouts == (60.0, 60.0, 60.0)
    assert u.keepalive == (320, 60.0, 1000)
    assert u.tls.verify is True
    assert u.retry_timeout is None
    assert isinstance(u.balancer, RoundRobin)
    https = compile_upstream(
        msgspec.convert(
            {"scheme": "https", "retries": 0, "nodes": [{"host": "a"}], "timeout": {"read": 5}},
            UpstreamSpec,
        ),
        "u2",
    )
    assert [n.key for n in https.nodes] == ["a:443"]
    assert https.retries == 0
    assert https.timeouts == (60.0, 60.0, 5.0)


def test_make_balancer_types() -> None:
    ns = nodes(("a", 1))
    assert isinstance(make_balancer(UpstreamSpec(type="ewma"), ns), PeakEwma)
    assert isinstance(make_balancer(UpstreamSpec(type="least_conn"), ns), LeastConn)
    assert isinstance(
        make_balancer(UpstreamSpec(type="chash", key="remote_addr"), ns), ConsistentHash
    )
    assert type(make_balancer(UpstreamSpec(), ns)) is RoundRobin


@pytest.mark.parametrize(
    ("text", "scheme", "expected"),
    [
        ("a:1", "http", ("a", 1)),
        ("a", "https", ("a", 443)),
        ("[::1]:8", "http", ("[::1]", 8)),
        ("[::1]", "http", ("[::1]", 80)),
        ("::1", "http", ("[::1]", 80)),
    ],
)
def test_parse_node_key(text: str, scheme: str, expected: tuple[str, int]) -> None:
    assert parse_node_key(text, scheme) == expected


@pytest.mark.parametrize("text", ["a:x", "[::1", "[::1]x", "a:"])
def test_parse_node_key_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_node_key(text, "http")
