"""Keep-alive pool decisions (no sockets): LIFO reuse, idle expiry, size, request caps."""

from __future__ import annotations

from edge.upstream.pool import NodePool, PoolSet


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.idle_since = 0.0

    def __repr__(self) -> str:
        return self.name


def test_empty_pool_asks_for_new_connection() -> None:
    pool: NodePool[Conn] = NodePool(size=2)
    conn, expired = pool.take(0.0)
    assert conn is None and expired == []
    assert pool.in_use == 1


def test_reuse_is_lifo() -> None:
    pool: NodePool[Conn] = NodePool(size=4)
    a, b = Conn("a"), Conn("b")
    pool.take(0.0)
    pool.take(0.0)
    assert pool.release(a, 1.0, True) == []
    assert pool.release(b, 2.0, True) == []
    assert pool.take(3.0) == (b, [])
    assert pool.take(3.0) == (a, [])


def test_idle_timeout_expires_old_connections() -> None:
    pool: NodePool[Conn] = NodePool(size=4, idle_timeout=10.0)
    a, b = Conn("a"), Conn("b")
    pool.take(0.0)
    pool.take(0.0)
    pool.release(a, 0.0, True)
    pool.release(b, 5.0, True)
    conn, expired = pool.take(12.0)
    assert conn is b and expired == []
    conn, expired = pool.take(12.0)
    assert conn is None and expired == [a]


def test_size_bound_closes_oldest() -> None:
    pool: NodePool[Conn] = NodePool(size=1)
    a, b = Conn("a"), Conn("b")
    pool.take(0.0)
    pool.take(0.0)
    assert pool.release(a, 1.0, True) == []
    assert pool.release(b, 2.0, True) == [a]
    assert pool.idle_count == 1


def test_max_requests_and_unreusable() -> None:
    pool: NodePool[Conn] = NodePool(size=4, max_requests=2)
    a = Conn("a")
    pool.take(0.0)
    assert pool.release(a, 0.0, True) == []
    pool.take(0.0)
    assert pool.release(a, 0.0, True) == [a]  # second request: cap reached
    b = Conn("b")
    pool.take(0.0)
    assert pool.release(b, 0.0, False) == [b]
    assert pool.in_use == 0


def test_discard_and_drain() -> None:
    pool: NodePool[Conn] = NodePool(size=4)
    pool.take(0.0)
    pool.discard()
    assert pool.in_use == 0
    a = Conn("a")
    pool.take(0.0)
    pool.release(a, 0.0, True)
    assert pool.drain() == [a]
    assert repr(pool) == "<NodePool idle=0 in_use=0 size=4>"


def test_poolset_sweep_and_settings_update() -> None:
    ps: PoolSet[Conn] = PoolSet()
    p1 = ps.get("k", 4, 10.0, 100)
    a = Conn("a")
    p1.take(0.0)
    p1.release(a, 0.0, True)
    assert ps.get("k", 8, 5.0, 100) is p1 and p1.size == 8
    assert ps.sweep(4.0) == []
    assert ps.sweep(6.0) == [a]
    assert len(ps) == 1
