"""Keep-alive connection pools for upstream nodes: the decisions, without the I/O.

In the style of httpcore's pool, every method here is synchronous and returns what
the caller still has to do (which connection to use, which ones to close); the
trio client performs that I/O afterwards. That keeps the rules (size, idle timeout,
requests per connection, LIFO reuse so idle connections actually expire) testable
with plain objects.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, Protocol, TypeVar


class PooledConn(Protocol):
    """What the pool needs to know about a connection."""

    requests: int  # requests already sent on it
    idle_since: float  # monotonic time it was last released


C = TypeVar("C", bound=PooledConn)
_NONE: list[Any] = []  # shared, never appended to


class NodePool(Generic[C]):
    """Idle keep-alive connections to one node (one scheme/host/port/TLS identity)."""

    __slots__ = ("size", "idle_timeout", "max_requests", "_idle", "in_use")

    def __init__(self, size: int = 320, idle_timeout: float = 60.0, max_requests: int = 1000):
        self.size = size
        self.idle_timeout = idle_timeout
        self.max_requests = max_requests
        self._idle: list[C] = []
        self.in_use = 0

    def take(self, now: float) -> tuple[C | None, list[C]]:
        """A reusable idle connection (most recently used first) or None, and the
        expired idle connections the caller must close."""
        idle = self._idle
        if idle and now - idle[-1].idle_since <= self.idle_timeout:
            # the usual case, without building a list of nothing to close
            self.in_use += 1
            return idle.pop(), _NONE
        expired: list[C] = []
        while idle:
            conn = idle.pop()
            if now - conn.idle_since > self.idle_timeout:
                expired.append(conn)
                # older ones sit below it: all expired too
                expired.extend(idle)
                idle.clear()
                break
            self.in_use += 1
            return conn, expired
        self.in_use += 1
        return None, expired

    def release(self, conn: C, now: float, reusable: bool) -> list[C]:
        """Give back a connection after a request; returns connections to close."""
        self.in_use -= 1
        conn.requests += 1
        if not reusable or (self.max_requests and conn.requests >= self.max_requests):
            return [conn]
        conn.idle_since = now
        idle = self._idle
        idle.append(conn)
        if len(idle) > self.size:
            # keep the freshest; the oldest would expire first anyway
            return [idle.pop(0)]
        return []

    def discard(self) -> None:
        """A taken connection died or was never made: it no longer counts as in use."""
        self.in_use -= 1

    def drain(self) -> list[C]:
        """Every idle connection (the caller closes them): the pool is being dropped."""
        idle, self._idle = self._idle, []
        return idle

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def __repr__(self) -> str:
        return f"<NodePool idle={len(self._idle)} in_use={self.in_use} size={self.size}>"


class PoolSet(Generic[C]):
    """All node pools of a worker, keyed by the connection identity."""

    __slots__ = ("_pools",)

    def __init__(self) -> None:
        self._pools: dict[Hashable, NodePool[C]] = {}

    def get(self, key: Hashable, size: int, idle_timeout: float, max_requests: int) -> NodePool[C]:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = NodePool(size, idle_timeout, max_requests)
        else:
            # a reload may change the keepalive_pool settings of the same node
            pool.size, pool.idle_timeout, pool.max_requests = size, idle_timeout, max_requests
        return pool

    def sweep(self, now: float) -> list[C]:
        """Expired idle connections in all pools (called periodically)."""
        out: list[C] = []
        for pool in self._pools.values():
            keep = [c for c in pool._idle if now - c.idle_since <= pool.idle_timeout]
            if len(keep) != len(pool._idle):
                out.extend(c for c in pool._idle if now - c.idle_since > pool.idle_timeout)
                pool._idle = keep
        return out

    def close_all(self) -> list[C]:
        out: list[C] = []
        for pool in self._pools.values():
            out.extend(pool.drain())
        return out

    def __len__(self) -> int:
        return len(self._pools)

    def __repr__(self) -> str:
        return f"<PoolSet pools={len(self._pools)}>"
