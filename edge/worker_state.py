"""Everything one worker process shares between its connections.

The process engineer's worker code owns one ``WorkerState`` and drives it::

    worker = WorkerState(snapshot, limits=limits, access_log=AccessLog("-"))
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.run)              # timeouts, health checks, pools
        for listener, conf in listeners:
            nursery.start_soon(serve_listener, listener, worker, conf)
        ...
        worker.snapshot = new_snapshot                # on reload: new requests use it
        ...
        await worker.drain(grace=30)                  # on SIGTERM
        nursery.cancel_scope.cancel()

Only this module and ``edge.server`` touch the counters; everything else reads them.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from edge.accesslog import AccessLog
from edge.context import ConnInfo
from edge.http.limits import DEFAULT_LIMITS, Limits
from edge.upstream.client import UpstreamPools
from edge.upstream.health import HealthRegistry

# (stream, conn_info, listener_conf) -> (stream to speak HTTP on, bytes already read).
# The TLS / PROXY-protocol engineer plugs in here: read and check the PROXY header,
# fill conn_info.client_addr/port/proxy_tlvs, wrap the stream in TLS and fill
# conn_info.tls/sni/mtls. Raising closes the connection.
ConnSetup = Callable[[trio.abc.Stream, ConnInfo, Any], Awaitable[tuple[trio.abc.Stream, bytes]]]

# Timeouts of the waits every request makes (a keep-alive connection waiting for its
# next request, a request head arriving, an upstream answering) are enforced by one
# reaper ticking this often instead of a cancel scope per wait: arming and disarming
# trio deadlines cost more than the rest of a request's bookkeeping. They fire up to
# one tick late.
TIMEOUT_TICK = 0.1
# idle upstream connections past their idle_timeout are closed every this many ticks
POOL_SWEEP_TICKS = 50


class WorkerState:
    """Snapshot, pools, health, limits, access log and the drain switch of one worker.

    Attributes:
        snapshot: the current ``Snapshot``; assign a new one on reload. Each request
            reads it once at its start and keeps that one to its end.
        limits: the HTTP ``Limits`` of this node.
        access_log: the ``AccessLog`` (``AccessLog(None)`` disables it).
        pools: upstream keep-alive pools (``UpstreamPools``).
        health: node health registry (``HealthRegistry``); follows ``snapshot``.
        draining: a ``trio.Event``; set by ``start_drain``/``drain``.
        connections / requests: downstream connections open / requests in flight.
        conn_setup: optional ``ConnSetup`` hook for PROXY protocol and TLS.
    """

    def __init__(
        self,
        snapshot: Any = None,
        *,
        limits: Limits = DEFAULT_LIMITS,
        access_log: AccessLog | None = None,
        conn_setup: ConnSetup | None = None,
    ) -> None:
        self.limits = limits
        self.access_log = access_log if access_log is not None else AccessLog(None)
        self.pools = UpstreamPools(limits)
        self.health = HealthRegistry()
        self.draining = trio.Event()
        # ``draining.is_set()`` as a plain attribute, for the per-request checks
        self.stopping = False
        self.connections = 0
        self.requests = 0
        self.total_requests = 0
        self.conn_setup = conn_setup
        # cancel scopes of accept loops
        self._accept_scopes: set[trio.CancelScope] = set()
        # downstream connections waiting for (the rest of) a request head; each has
        # ``deadline`` (monotonic), ``idle`` and ``expire()``
        self.waiting_conns: set[Any] = set()
        # the keep-alive fast path (``edge.reactor``), running while ``run`` does
        self.reactor: Any = None
        self._quiet = trio.Event()
        # request ids: a per-process random prefix plus a counter (unique, no syscalls)
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = 0
        self._conn_counter = 0
        self._snapshot: Any = None
        self.snapshot = snapshot

    @property
    def snapshot(self) -> Any:
        return self._snapshot

    @snapshot.setter
    def snapshot(self, snap: Any) -> None:
        self._snapshot = snap
        # health state follows the upstreams the new snapshot routes to
        self.health.sync(snap)
        self.pools.forget_nodes()

    def next_request_id(self) -> str:
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter:08x}"

    def next_conn_id(self) -> int:
        self._conn_counter += 1
        return self._conn_counter

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Background work until cancelled: active health checks, the timeout reaper,
        closing expired idle upstream connections. Start it with
        ``await nursery.start(worker.run)``; without it, idle, head and upstream read
        timeouts never fire."""
        # everything allocated so far (modules, the compiled snapshot) lives as long as
        # the worker: move it out of the cyclic GC's sight, so collections triggered by
        # per-request garbage stop re-walking it (they showed up as latency spikes)
        gc.freeze()
        from edge.reactor import Reactor

        async with trio.open_nursery() as nursery:
            await nursery.start(self.health.run)
            await nursery.start(Reactor(self).run)
            task_status.started()
            try:
                ticks = 0
                while True:
                    await trio.sleep(TIMEOUT_TICK)
                    self.reap(time.monotonic())
                    self.access_log.flush()
                    ticks += 1
                    if ticks % POOL_SWEEP_TICKS == 0:
                        self.pools.sweep()
            finally:
                self.pools.close_all()
                self.access_log.flush()

    def reap(self, now: float) -> None:
        """Expire every registered wait whose deadline has passed."""
        for c in [c for c in self.waiting_conns if c.deadline <= now]:
            self.waiting_conns.discard(c)
            c.expire()
        self.pools.reap(now)

    # -- drain ------------------------------------------------------------------------

    def start_drain(self) -> None:
        """Stop accepting, close idle keep-alive connections; in-flight requests go on
        (their responses carry ``Connection: close``)."""
        if self.draining.is_set():
            return
        self.draining.set()
        self.stopping = True
        for scope in self._accept_scopes:
            scope.cancel()
        for c in [c for c in self.waiting_conns if c.idle]:
            self.waiting_conns.discard(c)
            c.expire()
        self._check_quiet()

    async def drain(self, grace: float) -> bool:
        """``start_drain`` and wait up to ``grace`` seconds for every connection to
        finish. True when all did; the caller cancels whatever is left."""
        self.start_drain()
        with trio.move_on_after(grace):
            await self._quiet.wait()
        return self.connections == 0

    def _check_quiet(self) -> None:
        if self.draining.is_set() and self.connections == 0:
            self._quiet.set()

    def conn_opened(self) -> None:
        self.connections += 1

    def conn_closed(self) -> None:
        self.connections -= 1
        if self.connections == 0:
            self._check_quiet()

    def __repr__(self) -> str:
        return (
            f"<WorkerState connections={self.connections} requests={self.requests} "
            f"draining={self.draining.is_set()}>"
        )
