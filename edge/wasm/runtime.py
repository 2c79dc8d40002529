"""One WASM plugin in one worker: its VM, root contexts, failure policy and restarts.

The sandbox policy lives here. A ``PluginRuntime`` owns at most one ``PluginVM``
(Store + instance), reused by every request. A ``GuestTrap`` from any call into
it (trap, CPU interrupt, failed allocation in a hostcall, ``proc_exit``) discards
the VM: the request that hit it gets the failure policy (``plugin.py``), requests
still holding contexts of the dead VM fail the same way, and the next request
creates a new VM, with exponential backoff while VMs keep failing.
Nothing here touches another plugin's VM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import wasmtime

from edge.http.headers import Headers
from edge.wasm.callout import WORKER_STATE, perform
from edge.wasm.context import CallResult, PendingCall
from edge.wasm.engine import ModuleError
from edge.wasm.fastcall import GuestTrap
from edge.wasm.stats import CALLS, RESTARTS, SECONDS, TRAPS
from edge.wasm.vm import PluginVM, RootState, VmSpec, VmStartError

log = logging.getLogger("edge.wasm")

BACKOFF_FIRST = 0.1  # the first failure recreates at once; later ones wait this, doubling
BACKOFF_MAX = 10.0
MAX_CALL_ROUNDS = 8  # http_call responses that issue further calls, per phase
IDLE_TICK_POLL = 0.5

# (call, upstream, gateway with ``pools`` and ``health`` or None) -> result
Transport = Callable[[PendingCall, Any, Any], Awaitable[CallResult]]


class PluginRuntime:
    def __init__(
        self,
        spec: VmSpec,
        module: wasmtime.Module,
        *,
        upstreams: dict[str, Any] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.spec = spec
        self.module = module
        self.upstreams = upstreams or {}
        self.transport = transport if transport is not None else perform
        # the worker's per-process objects (``edge.worker.Worker.shared``): its
        # ``WorkerState`` there gives calls the gateway's pools, health and snapshot
        self.shared: dict[str, Any] = {}
        self.vm: PluginVM | None = None
        # root contexts of the live VM, by (root_id, plugin configuration bytes)
        self.roots: dict[tuple[str, bytes], RootState] = {}
        # every configuration validated so far: a recreated VM starts them all again
        self._known_keys: set[tuple[str, bytes]] = set()
        self.root_only: set[tuple[str, bytes]] = set()
        self.http_seen: set[tuple[str, bytes]] = set()
        self.failures = 0
        self.retry_at = 0.0
        self.restarts = 0
        self.last_error = ""
        labels = {"plugin": spec.plugin, "tenant": spec.tenant}
        self._calls = CALLS.labels(**labels)
        self._seconds = SECONDS.labels(**labels)
        self._restarts = RESTARTS.labels(**labels)
        self.tick_wakeup: trio.Event | None = None
        # set once requests or ticks use the VM (then only the serving thread may)
        self.live = False

    def __repr__(self) -> str:
        state = "up" if self.vm is not None else "down"
        return f"PluginRuntime({self.spec.plugin!r}, {state}, restarts={self.restarts})"

    # -- VM lifecycle ----------------------------------------------------------------

    def start_vm(self) -> PluginVM:
        """Create the VM now (compile-time validation, or after a failure).

        Raises ``ModuleError``, ``VmStartError`` or ``GuestTrap``.
        """
        vm = PluginVM(self.spec, self.module)
        self.roots = {}
        if self.vm is not None:
            self.vm.dead = True
        self.vm = vm
        return vm

    def acquire(self) -> PluginVM | None:
        """The live VM, creating one when allowed; None while backing off.

        Called on the serving thread only (requests, ticks)."""
        self.live = True
        vm = self.vm
        if vm is not None:
            return vm
        now = time.monotonic()
        if now < self.retry_at:
            return None
        try:
            vm = self.start_vm()
            self.restarts += 1
            self._restarts.inc()
            # the roots requests had; configurations that once worked start again
            for key in list(self._known_keys):
                self.root(vm, key)
            return vm
        except (ModuleError, VmStartError, GuestTrap) as e:
            self.fail(None, _kind(e), str(e))
            return None

    def register(self, root_id: str, conf: bytes) -> tuple[str, bytes]:
        """Validate a plugin configuration by starting its root context now.

        Snapshots compile in a worker thread while requests use the live VM, and a
        Store must never be entered from two threads: once the runtime is live, a
        new configuration is validated on a throwaway VM and gets its root context
        on the live VM at its first request. Raises ``ModuleError``,
        ``VmStartError`` or ``GuestTrap`` (config errors).
        """
        key = (root_id, conf)
        if key in self._known_keys:
            return key
        if self.live:
            probe = PluginVM(self.spec, self.module)
            try:
                probe.create_root(root_id, conf)
            finally:
                probe.dead = True
        else:
            vm = self.vm if self.vm is not None else self.start_vm()
            try:
                self.root(vm, key)
            except GuestTrap:
                vm.dead = True
                self.vm = None
                self.roots = {}
                raise
        self._known_keys.add(key)
        return key

    def root(self, vm: PluginVM, key: tuple[str, bytes]) -> RootState:
        r = self.roots.get(key)
        if r is None:
            r = vm.create_root(key[0], key[1])
            r.root_only = key in self.root_only
            self.roots[key] = r
        return r

    def fail(self, vm: PluginVM | None, kind: str, message: str) -> None:
        """Discard ``vm`` (if it is still the live one) and schedule a recreate."""
        TRAPS.labels(plugin=self.spec.plugin, tenant=self.spec.tenant, kind=kind).inc()
        if vm is not None:
            vm.dead = True
            self.flush(vm)
        if vm is None or vm is self.vm:
            if self.vm is not None:
                self.vm.dead = True
            self.vm = None
            self.roots = {}
            self.failures += 1
            delay = 0.0 if self.failures == 1 else BACKOFF_FIRST * 2 ** (self.failures - 2)
            self.retry_at = time.monotonic() + min(delay, BACKOFF_MAX)
        self.last_error = f"{kind}: {message.splitlines()[0] if message else ''}"
        log.warning(
            "wasm[%s] tenant %s: VM discarded after %s",
            self.spec.plugin,
            self.spec.tenant,
            self.last_error,
        )

    def refused(self) -> None:
        """A request met the VM backing off (counted, not a new failure)."""
        TRAPS.labels(plugin=self.spec.plugin, tenant=self.spec.tenant, kind="unavailable").inc()

    def succeeded(self) -> None:
        self.failures = 0

    def flush(self, vm: PluginVM) -> None:
        """Move a VM's locally counted calls and time to the shared metrics."""
        if vm.calls:
            self._calls.inc(vm.calls)
            # the guest call crossings count the time (FastStore.busy_ns)
            self._seconds.inc(vm.fs.busy_ns / 1e9)
            vm.calls = 0
            vm.fs.busy_ns = 0

    # -- http_call -------------------------------------------------------------------

    async def run_calls(self, vm: PluginVM, calls: list[PendingCall]) -> None:
        """Perform calls concurrently, then deliver each response to the guest.

        Responses may issue further calls; those run too, up to MAX_CALL_ROUNDS.
        Raises ``GuestTrap`` from the guest's response callback.
        """
        rounds = 0
        while calls and rounds < MAX_CALL_ROUNDS:
            rounds += 1
            results: list[CallResult | None] = [None] * len(calls)

            async with trio.open_nursery() as nursery:
                for i, c in enumerate(calls):
                    nursery.start_soon(self._one, results, i, c)
            if vm.dead:
                return
            for c, res in zip(calls, results, strict=True):
                st = vm.streams.get(c.context_id)
                root_id = st.root_id if st is not None else c.context_id
                if root_id not in vm.roots:
                    continue
                vm.http_call_response(root_id, res or CallResult(0, _EMPTY(), b"", True), c.token)
            calls = self.take_calls(vm)

    async def _one(self, results: list[CallResult | None], i: int, c: PendingCall) -> None:
        upstream = self.upstreams.get(c.upstream)
        state = self.shared.get(WORKER_STATE)
        if upstream is not None and state is not None:
            # the serving snapshot's own object: its balancer state and health view
            snap = state.snapshot
            ups = getattr(snap, "upstreams", None) or {}
            upstream = ups.get(c.upstream, upstream)
        results[i] = await self.transport(c, upstream, state)

    @staticmethod
    def take_calls(vm: PluginVM) -> list[PendingCall]:
        out = vm.pending_root_calls
        vm.pending_root_calls = []
        vm.calls_waiting = False
        for st in vm.streams.values():
            if st.pending:
                out.extend(st.pending)
                st.pending = None
        return out

    # -- ticks and queues ------------------------------------------------------------

    def _wake_ticks(self) -> None:
        """Serving thread only (trio.Event is not thread-safe)."""
        if self.tick_wakeup is not None:
            self.tick_wakeup.set()

    async def run_ticks(self) -> None:
        """Call proxy_on_tick for every root context as its period comes due, and
        proxy_on_queue_ready for queues with data. Runs until cancelled."""
        self.live = True
        while True:
            vm = self.vm
            now = time.monotonic()
            wait = IDLE_TICK_POLL
            if vm is not None and not vm.dead:
                try:
                    for root in list(vm.roots.values()):
                        if root.tick_ms and root.next_tick <= now:
                            root.next_tick = now + root.tick_ms / 1000.0
                            vm.call_root(root, "proxy_on_tick")
                        if root.tick_ms:
                            wait = min(wait, max(root.next_tick - now, 0.001))
                    while vm.queue_ready:
                        rid, qid = vm.queue_ready.pop(0)
                        target = vm.roots.get(rid)
                        if target is not None:
                            vm.call_root(target, "proxy_on_queue_ready", qid)
                    calls = self.take_calls(vm)
                    if calls:
                        await self.run_calls(vm, calls)
                except GuestTrap as e:
                    self.fail(vm, e.kind, e.message)
            elif vm is None and self._known_keys:
                # a tick-only plugin (no traffic) still gets its VM back after a trap
                self.acquire()
            self.tick_wakeup = trio.Event()
            with trio.move_on_after(wait):
                await self.tick_wakeup.wait()
            self.tick_wakeup = None


def _EMPTY() -> Headers:
    return Headers()


def _kind(e: BaseException) -> str:
    if isinstance(e, GuestTrap):
        return e.kind
    if isinstance(e, VmStartError):
        return "start_failed"
    return "load_failed"
