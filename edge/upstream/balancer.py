"""Load balancers: which node gets the next attempt (pure decisions, no IO).

Every balancer shares one selection rule, as nginx and APISIX do:

1. nodes with weight 0 are never chosen;
2. nodes are grouped by ``priority``; the highest group with an untried, healthy
   node wins, lower groups are only used when every node above is tried or unhealthy;
3. when no untried node is healthy at all, the untried nodes are used anyway (the
   health view may be stale, and refusing would black-hole all traffic);
4. within the chosen group the algorithm decides: smooth weighted round robin,
   consistent hashing, least connections or peak EWMA of latency.

The proxy calls ``pick(req, tried, healthy)`` per attempt, ``on_start(node)`` when it
sends to the node and ``on_finish(node, latency)`` when the attempt ends. State lives
in the balancer of one snapshot (one worker); a new snapshot starts fresh.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from edge.config.model import UpstreamSpec
from edge.context import Request
from edge.upstream.model import Node
from edge.vars import compile_template, compile_var

Healthy = Callable[[Node], bool]

# virtual points per unit of weight on the chash ring (nginx uses 160)
VNODES_PER_WEIGHT = 160
# the ring's size cap: beyond it points are scaled down, keeping weight ratios
MAX_RING_POINTS = 65536
# peak-EWMA decay time constant in seconds (APISIX uses 10 s)
EWMA_DECAY_SECONDS = 10.0


def _always_healthy(_node: Node) -> bool:
    return True


class Balancer:
    """Selection skeleton (rules 1-3 above); subclasses implement ``_choose``."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = list(nodes)
        self._index = {n.key: i for i, n in enumerate(self.nodes)}
        by_prio: dict[int, list[int]] = {}
        for i, n in enumerate(self.nodes):
            if n.weight > 0:
                by_prio.setdefault(n.priority, []).append(i)
        # node indexes per priority group, highest priority first
        self.groups: list[list[int]] = [by_prio[p] for p in sorted(by_prio, reverse=True)]
        # one node: it is the answer whatever its health (rule 3), unless already tried
        self._only = self.nodes[0] if len(self.nodes) == 1 and self.groups else None

    def pick(
        self,
        req: Request | None,
        tried: frozenset[str] | set[str] = frozenset(),
        healthy: Healthy = _always_healthy,
    ) -> Node | None:
        only = self._only
        if only is not None:
            return None if only.key in tried else only
        nodes = self.nodes
        for gi, group in enumerate(self.groups):
            cands = [i for i in group if nodes[i].key not in tried and healthy(nodes[i])]
            if cands:
                return nodes[self._choose(req, gi, cands)]
        for gi, group in enumerate(self.groups):
            cands = [i for i in group if nodes[i].key not in tried]
            if cands:
                return nodes[self._choose(req, gi, cands)]
        return None

    def _choose(self, req: Request | None, group: int, cands: list[int]) -> int:
        raise NotImplementedError

    def on_start(self, node: Node) -> None:
        """An attempt on ``node`` begins."""

    def on_finish(self, node: Node, latency: float | None = None) -> None:
        """An attempt on ``node`` ended; ``latency`` in seconds when it got a response."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[n.key for n in self.nodes]})"


class RoundRobin(Balancer):
    """nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, not a*5."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        super().__init__(nodes)
        self._current = [0] * len(self.nodes)

    def _choose(self, req: Request | None, group: int, cands: list[int]) -> int:
        if len(cands) == 1:
            return cands[0]
        current = self._current
        nodes = self.nodes
        total = 0
        best = cands[0]
        for i in cands:
            w = nodes[i].weight
            current[i] += w
            total += w
            if current[i] > current[best]:
                best = i
        current[best] -= total
        return best


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class ConsistentHash(Balancer):
    """A ring of virtual nodes per priority group; a key maps to the next point clockwise.

    Adding or removing a node only moves the keys of the points it owns. When the
    node a key maps to is tried or unhealthy, the walk continues clockwise, so the
    fallback is stable too.
    """

    def __init__(self, nodes: Sequence[Node], key_of: Callable[[Request], str | None]) -> None:
        super().__init__(nodes)
        self.key_of = key_of
        self.rings: list[tuple[list[int], list[int]]] = []
        for group in self.groups:
            wanted = {i: self.nodes[i].weight * VNODES_PER_WEIGHT for i in group}
            total = sum(wanted.values())
            scale = min(1.0, MAX_RING_POINTS / total) if total else 1.0
            points: list[tuple[int, int]] = []
            for i, count in wanted.items():
                for v in range(max(1, int(count * scale))):
                    points.append((_hash64(f"{self.nodes[i].key}#{v}"), i))
            points.sort()
            self.rings.append(([h for h, _ in points], [i for _, i in points]))

    def _choose(self, req: Request | None, group: int, cands: list[int]) -> int:
        key = self.key_of(req) if req is not None else None
        if not key:
            # APISIX falls back to the client address when the key is missing
            key = req.client_addr if req is not None else ""
        hashes, owners = self.rings[group]
        allowed = set(cands)
        start = bisect.bisect(hashes, _hash64(key))
        n = len(owners)
        for step in range(n):
            i = owners[(start + step) % n]
            if i in allowed:
                return i
        return cands[0]


class LeastConn(Balancer):
    """Fewest active attempts relative to weight; ties rotate so equal nodes share."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        super().__init__(nodes)
        self.active = [0] * len(self.nodes)
        self._turn = 0

    def _choose(self, req: Request | None, group: int, cands: list[int]) -> int:
        self._turn += 1
        nodes = self.nodes
        active = self.active
        k = len(cands)
        off = self._turn % k
        best = cands[off]
        best_score = (active[best] + 1) / nodes[best].weight
        for j in range(1, k):
            i = cands[(off + j) % k]
            score = (active[i] + 1) / nodes[i].weight
            if score < best_score:
                best, best_score = i, score
        return best

    def on_start(self, node: Node) -> None:
        i = self._index.get(node.key)
        if i is not None:
            self.active[i] += 1

    def on_finish(self, node: Node, latency: float | None = None) -> None:
        i = self._index.get(node.key)
        if i is not None and self.active[i] > 0:
            self.active[i] -= 1


class PeakEwma(LeastConn):
    """Peak EWMA of response latency times (active + 1), divided by weight.

    A slower sample replaces the average at once (peak); faster samples pull it down
    with an exponential decay, and the cost decays towards zero while a node gets no
    traffic, so a node that was slow once is retried later. Unmeasured nodes cost 0
    and so are tried first.
    """

    def __init__(self, nodes: Sequence[Node], clock: Callable[[], float] = time.monotonic):
        super().__init__(nodes)
        self.clock = clock
        self.ewma = [0.0] * len(self.nodes)
        self.stamp = [0.0] * len(self.nodes)

    def _cost(self, i: int, now: float) -> float:
        e = self.ewma[i]
        if e == 0.0:
            return 0.0
        return e * math.exp(-max(now - self.stamp[i], 0.0) / EWMA_DECAY_SECONDS)

    def _choose(self, req: Request | None, group: int, cands: list[int]) -> int:
        self._turn += 1
        now = self.clock()
        nodes = self.nodes
        k = len(cands)
        off = self._turn % k
        best = cands[off]
        best_score = self._cost(best, now) * (self.active[best] + 1) / nodes[best].weight
        for j in range(1, k):
            i = cands[(off + j) % k]
            score = self._cost(i, now) * (self.active[i] + 1) / nodes[i].weight
            if score < best_score:
                best, best_score = i, score
        return best

    def on_finish(self, node: Node, latency: float | None = None) -> None:
        super().on_finish(node, latency)
        i = self._index.get(node.key)
        if i is None or latency is None:
            return
        now = self.clock()
        cost = self._cost(i, now)
        if latency > cost:
            self.ewma[i] = latency
        else:
            w = math.exp(-max(now - self.stamp[i], 0.0) / EWMA_DECAY_SECONDS)
            self.ewma[i] = cost * w + latency * (1.0 - w)
        self.stamp[i] = now


def hash_key_getter(hash_on: str, key: str | None) -> Callable[[Request], str | None]:
    """The chash key of a request per APISIX ``hash_on`` / ``key``; raises ValueError."""
    if hash_on == "consumer":

        def consumer_key(req: Request) -> str | None:
            c: Any = req.consumer
            return None if c is None else c.username

        return consumer_key
    if not key:
        raise ValueError(f"hash_on '{hash_on}' needs a key")
    if hash_on == "vars":
        return compile_var(key)
    if hash_on == "header":
        hname = key.lower()
        return lambda r: r.headers.get(hname)
    if hash_on == "cookie":
        return lambda r: r.cookies.get(key)
    if hash_on == "vars_combinations":
        return compile_template(key)
    raise ValueError(f"unknown hash_on '{hash_on}'")


def make_balancer(spec: UpstreamSpec, nodes: Sequence[Node]) -> Balancer:
    """The balancer for ``spec.type``; the spec must have passed validation."""
    if spec.type == "chash":
        return ConsistentHash(nodes, hash_key_getter(spec.hash_on, spec.key))
    if spec.type == "least_conn":
        return LeastConn(nodes)
    if spec.type == "ewma":
        return PeakEwma(nodes)
    return RoundRobin(nodes)
