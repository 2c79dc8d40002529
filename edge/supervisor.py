"""The node's parent process: listen sockets, workers, configuration lifecycle, admin.

Sockets. The supervisor binds every listen socket once (SO_REUSEADDR and SO_REUSEPORT
set) and each worker *inherits* it (``pass_fds``); workers accept on the same socket.
We chose inheritance over one SO_REUSEPORT socket per worker because with per-worker
sockets the kernel assigns each new connection to one worker's queue at SYN time: when
that worker dies, the connections waiting in its queue are reset. With one shared queue
a dead worker loses only the connections it had accepted; the others keep draining the
queue, and a restarted worker picks up the same socket. SO_REUSEPORT stays on so that a
second node process (a blue/green upgrade) can bind the same port beside this one.

Workers. ``python -m edge.worker --spec JSON``, one trio loop each. A unix socketpair
per worker carries JSON lines: supervisor -> worker ``reload {path, generation}``,
``drain {grace}``, ``stop``, ``ping``; worker -> supervisor ``ready``, ``reloaded``,
``reload_failed``, ``draining``, ``pong``. A worker whose control socket reaches EOF
(the supervisor died) drains and exits, so workers never outlive their parent. A worker
that exits is restarted with exponential backoff (0.1 s doubling to 10 s, reset after
10 s of uptime); one that does not report ready within ``READY_TIMEOUT`` or stops
answering pings for ``WATCHDOG_TIMEOUT`` is killed and so restarted.

Configuration. The supervisor loads and compiles a configuration itself before any
worker sees it (``install``); a bad one is refused with its reasons (kept in /status
``last_reload_error``) while the old one keeps serving. A good one gets the next
*generation* number and every worker is told to compile the same path and swap its
snapshot; a worker reporting an older generation (restarted, or it missed a message)
is told again, so workers converge on the current generation. Triggers: SIGHUP, a
change of the file (stat polled every second), and ``install(path)`` from the bundle
sync.

Shutdown. SIGTERM/SIGINT: /readyz turns 503, every worker is told to drain (stop
accepting, finish in-flight requests within ``grace_period``), the supervisor waits
for them (grace + 5 s, then SIGKILL) and exits 0. A second SIGINT (Ctrl-C twice)
kills the workers at once and exits 1; a repeated SIGTERM is ignored.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio

from edge import __version__, admin, config_source, metrics, native
from edge.errors import ConfigError
from edge.node_config import NodeConfig, split_address

log = logging.getLogger("edge.supervisor")

WATCH_INTERVAL = 1.0
BACKOFF_MIN = 0.1
BACKOFF_MAX = 10.0
# a worker that stayed up this long was healthy: its next crash restarts quickly again
BACKOFF_RESET = 10.0
# after the grace period, how long a draining worker may take to exit before SIGKILL
EXIT_MARGIN = 5.0
# a control line is a small JSON object; a huge one means a broken worker
MAX_CONTROL_LINE = 1024 * 1024
ADMIN_MAX_CONNECTIONS = 64
LISTEN_BACKLOG = 4096
# a worker compiles the configuration (WASM modules included) before it reports ready;
# one that has not after this long is stuck, and a restart is the best remedy
READY_TIMEOUT = 120.0
# a ready worker answers a ping from its trio loop; a loop blocked this long (a plugin
# stuck in a CPU loop, a deadlock) serves nobody, so the worker is killed and restarted
# (EDGE_WATCHDOG_TIMEOUT overrides it, in seconds)
PING_INTERVAL = 5.0
WATCHDOG_TIMEOUT = 30.0


def _fields(**kw: Any) -> dict[str, Any]:
    return {"fields": kw}


@dataclass(frozen=True, slots=True)
class Installed:
    """The configuration the node serves (what /status reports)."""

    path: str
    version: str
    hash: str
    loaded_at: float
    routes: int
    generation: int


@dataclass(slots=True)
class WorkerSlot:
    index: int
    pid: int | None = None
    ready: bool = False
    generation: int = -1  # the configuration generation the worker serves
    requested: int = -1  # the generation it was last told to load
    restarts: int = 0
    started_at: float | None = None
    last_exit: int | None = None
    last_error: str | None = None
    proc: trio.Process | None = None
    outbox: trio.MemorySendChannel[dict[str, Any]] | None = None
    ready_event: trio.Event | None = None
    last_seen: float = 0.0  # trio clock: the worker's last control message


class _Metrics:
    """The supervisor's own metrics; defined after ``enable_multiprocess`` so that their
    values go to the shared directory."""

    def __init__(self) -> None:
        self.reloads = metrics.counter(
            "edge_config_reloads_total", "Configuration reload attempts by result", ["result"]
        )
        self.restarts = metrics.counter(
            "edge_worker_restarts_total", "Worker processes restarted after they exited"
        )
        self.ready_workers = metrics.gauge(
            "edge_workers_ready", "Worker processes that reported ready", mode="livesum"
        )
        self.last_success = metrics.gauge(
            "edge_config_last_reload_success_timestamp_seconds",
            "When the current configuration was installed",
            mode="livemax",
        )


class Supervisor:
    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self.node_id = node.effective_node_id()
        self.state_dir = Path(node.effective_state_dir())
        self.grace = node.grace_period
        self.watchdog_timeout = _env_seconds("EDGE_WATCHDOG_TIMEOUT", WATCHDOG_TIMEOUT)
        self.ping_interval = min(PING_INTERVAL, self.watchdog_timeout / 4)
        self.listeners = node.effective_listeners()
        self.slots = [WorkerSlot(i) for i in range(node.effective_workers())]
        self.installed: Installed | None = None
        self.last_reload_error: list[str] | None = None
        self.last_reload_at: float | None = None
        self.reload_counts = {"ok": 0, "failed": 0, "unchanged": 0}
        self.extra_status: dict[str, Any] = {"bundle": {}}
        self.stopping = False
        self.started_at = time.time()
        self.exit_code = 0
        self._generation = 0
        self._shared: dict[str, Any] = {
            "state_dir": str(self.state_dir),
            "node_id": self.node_id,
            "role": "supervisor",
        }
        self._sockets: list[socket.socket] = []
        self._spawning = 0  # workers being started with the listen sockets as pass_fds
        self._admin_sock: socket.socket | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._reload_lock: trio.Lock | None = None
        self._stop_event: trio.Event | None = None
        self._workers_done: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._metrics: _Metrics | None = None

    # -- setup (sync, before trio) ---------------------------------------------------

    def prepare_state(self) -> None:
        """Create the state directory and a fresh metrics directory; raises OSError."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # inherited by workers: the WASM module cache and the node-wide counter table
        # (edge.counters keys it by run id, so a restarted node starts from zero)
        os.environ["EDGE_STATE_DIR"] = str(self.state_dir)
        os.environ["EDGE_RUN_ID"] = str(os.getpid())
        metrics.enable_multiprocess(self.state_dir / "metrics", wipe=True)
        self._metrics = _Metrics()

    @property
    def _m(self) -> _Metrics:
        if self._metrics is None:
            self._metrics = _Metrics()
        return self._metrics

    def load_initial(self, path: str) -> None:
        """Compile the starting configuration; ConfigError when it is invalid."""
        self._activate(self._compile(path), reason="start")

    def bind(self) -> None:
        """Bind the listen sockets and the admin socket; OSError names the address."""
        for conf in self.listeners:
            self._sockets.append(_bind(conf.address, reuseport=True))
        self._admin_sock = _bind(self.node.admin, reuseport=False)

    def _close_listen_sockets(self, *, force: bool = False) -> None:
        if self._spawning and not force:
            return  # a worker is being started with these descriptors; close at exit
        for s in self._sockets:
            s.close()
        self._sockets.clear()

    def close_sockets(self) -> None:
        self._close_listen_sockets(force=True)
        if self._admin_sock is not None:
            self._admin_sock.close()
            self._admin_sock = None

    # -- the interface for other components ------------------------------------------

    def install(self, path: str | os.PathLike[str]) -> None:
        """Validate and compile the configuration at ``path``; when good, make it current.

        Raises ConfigError (and records it as /status ``last_reload_error``) when it is
        bad; the current configuration keeps serving. Callable from the supervisor's trio
        thread or from a worker thread started with ``trio.to_thread``.
        """
        try:
            installed = self._compile(str(path))
        except ConfigError as exc:
            self._in_trio(self._reload_failed, exc.lines(), "install")
            raise
        self._in_trio(self._activate, installed, "install")

    def set_status(self, key: str, value: Any) -> None:
        """Set a /status field; a dotted key ("bundle.version") sets inside a section."""
        section, _, name = key.partition(".")
        if name:
            target = self.extra_status.setdefault(section, {})
            if isinstance(target, dict):
                target[name] = value
                return
        self.extra_status[key] = value

    @property
    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        if self.stopping:
            return "draining"
        if self.installed is None:
            return "no valid configuration loaded"
        waiting = [s.index for s in self.slots if not s.ready]
        if waiting:
            return f"workers not ready: {waiting}"
        # a worker started before the first configuration arrived (bundle mode) answers
        # 503 until it has loaded one: not ready until every worker serves some generation
        empty = [s.index for s in self.slots if s.generation < 1]
        if empty:
            return f"workers without a configuration yet: {empty}"
        return None

    def status_doc(self) -> dict[str, Any]:
        inst = self.installed
        return {
            "node_id": self.node_id,
            "edge_version": __version__,
            "native": native.state,
            "pid": os.getpid(),
            "started_at": _iso(self.started_at),
            "ready": self.ready,
            "not_ready_reason": self.not_ready_reason(),
            "draining": self.stopping,
            "config": None
            if inst is None
            else {
                "path": inst.path,
                "version": inst.version,
                "hash": inst.hash,
                "loaded_at": _iso(inst.loaded_at),
                "routes": inst.routes,
                "generation": inst.generation,
            },
            "last_reload_at": _iso(self.last_reload_at) if self.last_reload_at else None,
            "last_reload_error": "\n".join(self.last_reload_error)
            if self.last_reload_error
            else None,
            "last_reload_problems": self.last_reload_error or [],
            "reloads": dict(self.reload_counts),
            "listeners": [msgspec.to_builtins(lst) for lst in self.listeners],
            "admin": self.node.admin,
            "workers": [
                {
                    "index": s.index,
                    "pid": s.pid,
                    "ready": s.ready,
                    "generation": s.generation,
                    "restarts": s.restarts,
                    "started_at": _iso(s.started_at) if s.started_at else None,
                    "last_exit": s.last_exit,
                    "last_error": s.last_error,
                }
                for s in self.slots
            ],
            "worker_pids": [s.pid for s in self.slots if s.pid is not None],
            **self.extra_status,
        }

    # -- configuration lifecycle -----------------------------------------------------

    def _compile(self, path: str) -> Installed:
        snap = config_source.compile_path(path, node_id=self.node_id, shared=self._shared)
        return Installed(
            path=str(path),
            version=str(getattr(snap, "version", "") or ""),
            hash=config_source.content_hash(path),
            loaded_at=time.time(),
            routes=config_source.route_count(snap),
            generation=-1,  # assigned when activated
        )

    def _in_trio(self, fn: Any, *args: Any) -> None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            if self._token is None:  # before trio.run: plain call
                fn(*args)
            else:
                trio.from_thread.run_sync(fn, *args, trio_token=self._token)
        else:
            fn(*args)

    def _activate(self, inst: Installed, reason: str) -> None:
        self._generation += 1
        inst = Installed(**{**_asdict(inst), "generation": self._generation})
        previous = self.installed
        self.installed = inst
        self.last_reload_error = None
        self.last_reload_at = time.time()
        if reason != "start":
            self.reload_counts["ok"] += 1
            self._m.reloads.labels(result="ok").inc()
        self._m.last_success.set(inst.loaded_at)
        log.info(
            "configuration installed",
            extra=_fields(
                reason=reason,
                path=inst.path,
                version=inst.version,
                hash=inst.hash,
                routes=inst.routes,
                generation=inst.generation,
                previous_version=previous.version if previous else None,
            ),
        )
        for slot in self.slots:
            self._converge(slot)

    def _reload_failed(self, lines: list[str], reason: str) -> None:
        self.last_reload_error = lines
        self.last_reload_at = time.time()
        self.reload_counts["failed"] += 1
        self._m.reloads.labels(result="failed").inc()
        log.error(
            "configuration rejected; the current one keeps serving",
            extra=_fields(
                reason=reason,
                problems=lines,
                serving=self.installed.version if self.installed else None,
            ),
        )

    async def reload(self, reason: str, *, force: bool) -> None:
        """Re-read the current configuration path (SIGHUP, file change)."""
        assert self._reload_lock is not None
        inst = self.installed
        path = inst.path if inst is not None else self.node.config
        if path is None:
            log.warning("reload requested but no configuration path is known")
            return
        async with self._reload_lock:
            try:
                new = await trio.to_thread.run_sync(self._compile, path)
            except ConfigError as exc:
                self._reload_failed(exc.lines(), reason)
                return
            except Exception as exc:  # a bug in a compiler must not take the node down
                log.exception("configuration compile crashed", extra=_fields(reason=reason))
                self._reload_failed([f"{path}: internal error: {type(exc).__name__}"], reason)
                return
            cur = self.installed
            if not force and cur is not None and cur.hash == new.hash and cur.path == new.path:
                self.last_reload_error = None
                self.reload_counts["unchanged"] += 1
                self._m.reloads.labels(result="unchanged").inc()
                log.info("configuration unchanged", extra=_fields(reason=reason, hash=new.hash))
                return
            self._activate(new, reason)

    async def _watch_file(self) -> None:
        path = self.node.config
        assert path is not None
        last = await trio.to_thread.run_sync(config_source.fingerprint, path)
        while True:
            await trio.sleep(WATCH_INTERVAL)
            if self.stopping:
                return
            fp = await trio.to_thread.run_sync(config_source.fingerprint, path)
            if fp != last:
                last = fp
                await self.reload("file changed", force=False)

    # -- workers -----------------------------------------------------------------------

    def _converge(self, slot: WorkerSlot) -> None:
        """Tell ``slot``'s worker to load the current generation unless it has or was told."""
        inst = self.installed
        if inst is None or slot.outbox is None or self.stopping:
            return
        if slot.generation == inst.generation or slot.requested == inst.generation:
            return
        slot.requested = inst.generation
        self._send(slot, {"cmd": "reload", "path": inst.path, "generation": inst.generation})

    def _send(self, slot: WorkerSlot, msg: dict[str, Any]) -> None:
        if slot.outbox is None:
            return
        try:
            slot.outbox.send_nowait(msg)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            log.warning("control message dropped", extra=_fields(worker=slot.index, msg=msg))

    def _worker_spec(self, slot: WorkerSlot, control_fd: int) -> dict[str, Any]:
        inst = self.installed
        return {
            "index": slot.index,
            "control_fd": control_fd,
            "listeners": [
                {"fd": s.fileno(), "conf": msgspec.to_builtins(conf)}
                for s, conf in zip(self._sockets, self.listeners, strict=True)
            ],
            "config": inst.path if inst else None,
            "generation": inst.generation if inst else 0,
            "state_dir": str(self.state_dir),
            "node_id": self.node_id,
            "log_level": self.node.log_level,
            "limits": self.node.limits,
            "access_log": self.node.access_log,
            "grace_period": self.grace,
        }

    async def _run_slot(self, slot: WorkerSlot) -> None:
        assert self._stop_event is not None
        backoff = BACKOFF_MIN
        while not self.stopping:
            t0 = trio.current_time()
            code = await self._run_worker_once(slot)
            if self.stopping:
                break
            if trio.current_time() - t0 >= BACKOFF_RESET:
                backoff = BACKOFF_MIN
            slot.restarts += 1
            self._m.restarts.inc()
            log.error(
                "worker exited; restarting",
                extra=_fields(worker=slot.index, exit_code=code, restart_in=backoff),
            )
            with trio.move_on_after(backoff):
                await self._stop_event.wait()
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _run_worker_once(self, slot: WorkerSlot) -> int | None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        spec = self._worker_spec(slot, child.fileno())
        argv = [sys.executable, "-m", "edge.worker", "--spec", json.dumps(spec)]
        self._spawning += 1
        try:
            proc = await trio.lowlevel.open_process(
                argv, pass_fds=[child.fileno(), *(s.fileno() for s in self._sockets)]
            )
        except OSError as exc:
            parent.close()
            child.close()
            log.error("cannot start worker", extra=_fields(worker=slot.index, error=str(exc)))
            return None
        finally:
            self._spawning -= 1
        child.close()
        send, recv = trio.open_memory_channel[dict[str, Any]](64)
        slot.proc, slot.pid, slot.outbox = proc, proc.pid, send
        slot.started_at, slot.ready, slot.requested = time.time(), False, -1
        slot.ready_event = trio.Event()
        slot.generation = spec["generation"]
        log.info("worker started", extra=_fields(worker=slot.index, worker_pid=proc.pid))
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(parent))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_worker, slot, stream)
                nursery.start_soon(self._write_worker, stream, recv)
                nursery.start_soon(self._watchdog, slot, proc)
                if self.stopping:  # a stop raced with this start: drain it at once
                    self._send(slot, {"cmd": "drain", "grace": self.grace})
                code = await proc.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            if slot.ready:
                self._m.ready_workers.dec()
            slot.proc, slot.outbox, slot.ready = None, None, False
            slot.last_exit = proc.returncode
            slot.pid = None
            metrics.mark_dead(proc.pid)
        log.log(
            logging.INFO if code == 0 else logging.WARNING,
            "worker exited",
            extra=_fields(worker=slot.index, worker_pid=proc.pid, exit_code=code),
        )
        return code

    async def _write_worker(
        self, stream: trio.SocketStream, recv: trio.MemoryReceiveChannel[dict[str, Any]]
    ) -> None:
        async with recv:
            async for msg in recv:
                try:
                    await stream.send_all(json.dumps(msg).encode() + b"\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return

    async def _read_worker(self, slot: WorkerSlot, stream: trio.SocketStream) -> None:
        buf = b""
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    log.warning("bad control line from worker", extra=_fields(worker=slot.index))
                    continue
                if isinstance(msg, dict):
                    self._on_worker_event(slot, msg)
            if len(buf) > MAX_CONTROL_LINE:
                log.error("control line too long", extra=_fields(worker=slot.index))
                return

    async def _watchdog(self, slot: WorkerSlot, proc: trio.Process) -> None:
        assert slot.ready_event is not None
        with trio.move_on_after(READY_TIMEOUT):
            await slot.ready_event.wait()
        if not slot.ready_event.is_set():
            if not self.stopping:
                slot.last_error = f"not ready after {READY_TIMEOUT:g} s"
                log.error("worker never became ready; killing", extra=_fields(worker=slot.index))
                proc.kill()
            return
        while not self.stopping:
            await trio.sleep(self.ping_interval)
            if self.stopping:
                return
            if trio.current_time() - slot.last_seen > self.watchdog_timeout:
                slot.last_error = f"unresponsive for {self.watchdog_timeout:g} s"
                log.error("worker unresponsive; killing", extra=_fields(worker=slot.index))
                proc.kill()
                return
            self._send(slot, {"cmd": "ping"})

    def _on_worker_event(self, slot: WorkerSlot, msg: dict[str, Any]) -> None:
        slot.last_seen = trio.current_time()
        event = msg.get("event")
        gen = msg.get("generation")
        if event in ("ready", "reloaded"):
            if isinstance(gen, int):
                slot.generation = gen
            if event == "ready" and not slot.ready:
                slot.ready = True
                if slot.ready_event is not None:
                    slot.ready_event.set()
                self._m.ready_workers.inc()
                log.info(
                    "worker ready",
                    extra=_fields(worker=slot.index, worker_pid=slot.pid, generation=gen),
                )
            slot.last_error = None
            self._converge(slot)
        elif event in ("reload_failed", "failed"):
            slot.last_error = "\n".join(str(x) for x in msg.get("error") or [])
            # not retried for this generation: the next reload (or a restart) tries again
        elif event == "draining" and slot.ready:
            slot.ready = False
            self._m.ready_workers.dec()

    # -- shutdown -----------------------------------------------------------------------

    async def _shutdown(self, reason: str) -> None:
        assert self._stop_event is not None and self._workers_done is not None
        self.stopping = True
        self._stop_event.set()
        log.info("shutting down", extra=_fields(reason=reason, grace_period=self.grace))
        for slot in self.slots:
            self._send(slot, {"cmd": "drain", "grace": self.grace})
        # once the workers close theirs, the kernel refuses new connections at once
        # (a load balancer fails over) instead of queueing them for nobody
        self._close_listen_sockets()
        with trio.move_on_after(self.grace + EXIT_MARGIN):
            await self._workers_done.wait()
        if not self._workers_done.is_set():
            self._kill_workers("grace period over")
            await self._workers_done.wait()
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()

    def _kill_workers(self, why: str) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.returncode is None:
                log.warning("killing worker", extra=_fields(worker=slot.index, reason=why))
                slot.proc.kill()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
            assert self._nursery is not None
            async for signum in sigs:
                if signum == signal.SIGHUP:
                    if not self.stopping:
                        self._nursery.start_soon(self._reload_task, "SIGHUP")
                elif not self.stopping:
                    self._nursery.start_soon(self._shutdown, signal.Signals(signum).name)
                elif signum == signal.SIGINT:
                    # Ctrl-C again: the operator does not want to wait for the drain
                    self.exit_code = 1
                    self._kill_workers("second SIGINT")
                else:
                    # a process manager repeating SIGTERM must not cut the drain short
                    log.info("already draining; signal ignored", extra=_fields(signal=signum))

    async def _reload_task(self, reason: str) -> None:
        await self.reload(reason, force=True)

    # -- admin listener -----------------------------------------------------------------

    async def _serve_admin(self) -> None:
        assert self._admin_sock is not None
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._admin_sock))
        limiter = trio.CapacityLimiter(ADMIN_MAX_CONNECTIONS)

        async def handler(stream: trio.SocketStream) -> None:
            try:
                limiter.acquire_nowait()
            except trio.WouldBlock:
                await stream.aclose()
                return
            try:
                await self._admin_conn(stream)
            finally:
                limiter.release()

        log.info("admin listening", extra=_fields(address=self.node.admin))
        await trio.serve_listeners(handler, [listener])

    async def _admin_conn(self, stream: trio.SocketStream) -> None:
        head = False
        async with stream:
            try:
                buf = b""
                with trio.fail_after(admin.HEAD_TIMEOUT):
                    while (req := admin.parse_head(buf)) is None:
                        data = await stream.receive_some(4096)
                        if not data:
                            return
                        buf += data
                head = req.method == "HEAD"
                status, body, ctype = await self._endpoint(admin.resolve(req))
            except admin.AdminProtocolError as exc:
                status, body, ctype = exc.status, admin.error_body(exc.message), admin.JSON
            except trio.TooSlowError:
                status, body, ctype = 408, admin.error_body("request timeout"), admin.JSON
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            try:
                with trio.fail_after(admin.HEAD_TIMEOUT):
                    await stream.send_all(admin.build_response(status, body, ctype, head=head))
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                return

    async def _endpoint(self, name: str) -> tuple[int, bytes, str]:
        if name == "healthz":
            return 200, admin.json_body({"status": "ok"}), admin.JSON
        if name == "readyz":
            reason = self.not_ready_reason()
            if reason is None:
                return 200, admin.json_body({"ready": True}), admin.JSON
            return 503, admin.json_body({"ready": False, "reason": reason}), admin.JSON
        if name == "status":
            return 200, admin.json_body(self.status_doc()), admin.JSON
        body = await trio.to_thread.run_sync(metrics.render)
        return 200, body, metrics.CONTENT_TYPE

    # -- main -----------------------------------------------------------------------------

    async def serve(self, bundle_sync: Any = None) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        self._token = trio.lowlevel.current_trio_token()
        self._reload_lock = trio.Lock()
        self._stop_event = trio.Event()
        self._workers_done = trio.Event()
        # compiled hot-path modules (edge/native.py): "on", or why not
        log.info("starting", extra=_fields(version=__version__, native=native.state))
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._signals)
                nursery.start_soon(self._serve_admin)
                if self.node.config and bundle_sync is None:
                    nursery.start_soon(self._watch_file)
                if bundle_sync is not None:
                    nursery.start_soon(bundle_sync, self)
                async with trio.open_nursery() as workers:
                    for slot in self.slots:
                        workers.start_soon(self._run_slot, slot)
                self._workers_done.set()
                # workers only all end once stopping; wait for _shutdown to cancel us
                await trio.sleep_forever()
        finally:
            self.close_sockets()
        log.info("stopped", extra=_fields(exit_code=self.exit_code))
        return self.exit_code


def _bind(address: str, *, reuseport: bool) -> socket.socket:
    host, port = split_address(address)
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "[::]:80" means IPv6 only; list 0.0.0.0 separately for IPv4
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        msg = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise OSError(exc.errno, f"cannot listen on {address}: {msg}") from None
    return sock


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ValueError(f"{name}: expected seconds in (0, 3600], got {raw!r}")
    return value


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _asdict(inst: Installed) -> dict[str, Any]:
    return {f: getattr(inst, f) for f in Installed.__slots__}
