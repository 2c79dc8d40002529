"""A worker process: one trio loop serving the inherited listen sockets.

Started by the supervisor as ``python -m edge.worker --spec JSON`` (see
``edge.supervisor`` for the protocol). The spec names the inherited file descriptors
(listen sockets, the control socket), the configuration path and generation, and the
node settings a worker needs. The worker:

1. compiles the configuration itself (the supervisor already proved it valid) and puts
   the snapshot in its ``WorkerState``; with no configuration yet (a bundle node before
   its first bundle) it serves with no snapshot, which the proxy answers with 503;
2. serves every listener with ``edge.server.serve_listener``, runs the WorkerState's
   background work (health checks, pool sweeping) and, once a snapshot holds WASM
   plugins, the WASM host's tick task; then reports ``ready``;
3. obeys control messages: ``reload`` compiles the new path in a thread while the old
   snapshot keeps serving, then swaps it by assignment (requests capture the snapshot
   when they start, so in-flight ones finish on the old one); ``drain`` stops accepting
   and waits for in-flight requests up to the grace period, then exits 0; ``stop`` exits
   at once. EOF on the control socket (the supervisor is gone) means drain.

SIGTERM/SIGINT sent straight to a worker (a terminal's Ctrl-C reaches the whole process
group) also mean drain, so the supervisor stays the one that decides about restarts.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
from typing import Any

import msgspec
import trio

from edge import config_source, logsetup, metrics
from edge.errors import ConfigError
from edge.node_config import ListenerConf, build_limits

log = logging.getLogger("edge.worker")

MAX_CONTROL_LINE = 1024 * 1024
EXIT_CONFIG = 3
# the key under which edge.wasm.host keeps a worker's plugin runtimes in ``shared``
WASM_RUNTIMES = "wasm_runtimes"
# ... and the key under which WASM http_calls find this worker's ``WorkerState``
# (pools, health, snapshot: edge.wasm.callout.WORKER_STATE)
WORKER_STATE = "worker_state"


def _fields(**kw: Any) -> dict[str, Any]:
    return {"fields": kw}


def access_log_target(value: str) -> str | None:
    """Node config ``access_log`` -> what ``edge.accesslog.AccessLog`` takes."""
    if value == "off":
        return None
    if value == "stderr":
        return "-"
    return value


def needs_conn_setup(listeners: list[ListenerConf]) -> bool:
    return any(
        lst.tls or lst.proxy_protocol != "off" or lst.ip_restriction is not None
        for lst in listeners
    )


def conn_setup_hook(listeners: list[ListenerConf]) -> Any:
    """A factory ``(worker_state) -> ConnSetup`` when a listener needs connection setup,
    None for plain HTTP listeners (which then skip the step entirely)."""
    if not needs_conn_setup(listeners):
        return None
    from edge.listener import ConnSetup

    return ConnSetup


def make_worker_state(spec: dict[str, Any], listeners: list[ListenerConf]) -> Any:
    from edge.accesslog import AccessLog
    from edge.worker_state import WorkerState

    state = WorkerState(
        None,
        limits=build_limits(spec.get("limits") or {}),
        access_log=AccessLog(access_log_target(spec.get("access_log", "stderr"))),
    )
    factory = conn_setup_hook(listeners)
    if factory is not None:
        # plain listeners pass through it untouched; TLS reads the worker's snapshot
        state.conn_setup = factory(state)
    return state


class Worker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.index: int = spec["index"]
        self.node_id: str = spec.get("node_id", "")
        self.grace: float = float(spec.get("grace_period", 30.0))
        self.generation: int = spec.get("generation", 0)
        self.path: str | None = spec.get("config")
        # per-process objects that survive snapshot swaps (counters, WASM VMs)
        self.shared: dict[str, Any] = {
            "state_dir": spec.get("state_dir"),
            "node_id": self.node_id,
            "worker_index": self.index,
            "role": "worker",
        }
        self.state: Any = None
        self.control: trio.SocketStream | None = None
        self._send_lock = trio.Lock()
        self._reload_lock = trio.Lock()
        self._draining = False
        self._ticks_started = False
        self._nursery: trio.Nursery | None = None
        self._starts = metrics.counter(
            "edge_worker_starts_total", "Worker processes started (all workers summed)"
        )
        self._reloads = metrics.counter(
            "edge_worker_reloads_total", "Snapshot swaps in workers by result", ["result"]
        )

    def compile(self, path: str) -> Any:
        return config_source.compile_path(path, node_id=self.node_id, shared=self.shared)

    async def send(self, msg: dict[str, Any]) -> None:
        if self.control is None:
            return
        async with self._send_lock:
            try:
                await self.control.send_all(json.dumps(msg).encode() + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def run(self) -> int:
        self.control = trio.SocketStream(
            trio.socket.from_stdlib_socket(socket.socket(fileno=self.spec["control_fd"]))
        )
        from edge.server import serve_listener

        listeners = []
        for item in self.spec["listeners"]:
            sock = socket.socket(fileno=item["fd"])
            conf = msgspec.convert(item["conf"], ListenerConf)
            listeners.append((trio.SocketListener(trio.socket.from_stdlib_socket(sock)), conf))
        self.state = make_worker_state(self.spec, [c for _, c in listeners])
        self.shared[WORKER_STATE] = self.state
        if self.path is not None:
            try:
                self.state.snapshot = await trio.to_thread.run_sync(self.compile, self.path)
            except ConfigError as exc:
                log.error("configuration rejected", extra=_fields(problems=exc.lines()))
                await self.send({"event": "failed", "error": exc.lines()})
                return EXIT_CONFIG
            except Exception as exc:  # a compiler bug: say so, let the supervisor retry
                log.exception("configuration compile crashed", extra=_fields(path=self.path))
                await self.send({"event": "failed", "error": [type(exc).__name__]})
                return EXIT_CONFIG
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._signals)
            # health checks and pool sweeping; cancelled with the nursery
            await nursery.start(self.state.run)
            # buffered per-request metrics (prometheus plugin) and the connection /
            # upstream-health gauges reach /metrics from here: every 0.5 s and at exit
            nursery.start_soon(metrics.flush_periodically, self.state)
            self._ensure_wasm_ticks()
            for listener, conf in listeners:
                nursery.start_soon(serve_listener, listener, self.state, conf)
            self._starts.inc()
            log.info(
                "worker serving",
                extra=_fields(listeners=[c.address for _, c in listeners], gen=self.generation),
            )
            await self.send({"event": "ready", "generation": self.generation})
            nursery.start_soon(self._control_loop)
        return 0

    def _ensure_wasm_ticks(self) -> None:
        """Serve proxy_on_tick, queues and root-context http_calls of this worker's WASM
        VMs, once a snapshot created some (the host keeps them in ``shared``); workers
        without WASM plugins never import wasmtime."""
        if self._ticks_started or WASM_RUNTIMES not in self.shared:
            return
        from edge.wasm.host import run_ticks

        assert self._nursery is not None
        self._ticks_started = True
        self._nursery.start_soon(run_ticks, self.shared)

    async def _control_loop(self) -> None:
        assert self.control is not None and self._nursery is not None
        buf = b""
        while True:
            try:
                data = await self.control.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                log.warning("supervisor gone; draining")
                self._nursery.start_soon(self._drain, self.grace)
                return
            buf += data
            if len(buf) > MAX_CONTROL_LINE:
                log.error("control line too long; draining")
                self._nursery.start_soon(self._drain, self.grace)
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    self._on_command(msg)

    def _on_command(self, msg: dict[str, Any]) -> None:
        assert self._nursery is not None
        cmd = msg.get("cmd")
        if cmd == "reload" and isinstance(msg.get("path"), str):
            self._nursery.start_soon(self._reload, msg["path"], int(msg.get("generation", 0)))
        elif cmd == "drain":
            self._nursery.start_soon(self._drain, float(msg.get("grace", self.grace)))
        elif cmd == "ping":
            # answered from this trio loop: proof to the supervisor that it still turns
            self._nursery.start_soon(self.send, {"event": "pong"})
        elif cmd == "stop":
            log.info("stopping at once")
            self._nursery.cancel_scope.cancel()

    async def _reload(self, path: str, generation: int) -> None:
        async with self._reload_lock:
            if self._draining or generation <= self.generation:
                return
            try:
                snap = await trio.to_thread.run_sync(self.compile, path)
            except ConfigError as exc:
                self._reloads.labels(result="failed").inc()
                log.error("reload rejected", extra=_fields(problems=exc.lines(), path=path))
                await self.send({"event": "reload_failed", "error": exc.lines()})
                return
            except Exception as exc:  # keep serving the old snapshot whatever went wrong
                self._reloads.labels(result="failed").inc()
                log.exception("reload crashed", extra=_fields(path=path))
                await self.send({"event": "reload_failed", "error": [f"{type(exc).__name__}"]})
                return
            # one assignment: requests that already captured the old snapshot keep it
            self.state.snapshot = snap
            self.path, self.generation = path, generation
            self._ensure_wasm_ticks()
            self._reloads.labels(result="ok").inc()
            log.info(
                "snapshot swapped",
                extra=_fields(version=getattr(snap, "version", None), gen=generation),
            )
            await self.send({"event": "reloaded", "generation": generation})

    async def _drain(self, grace: float) -> None:
        assert self._nursery is not None
        if self._draining:
            return
        self._draining = True
        log.info("draining", extra=_fields(grace_period=grace))
        await self.send({"event": "draining"})
        finished = await self.state.drain(grace)
        # past the grace period, whatever is still running is cancelled with the nursery
        log.info(
            "drained; exiting",
            extra=_fields(all_finished=finished, connections_left=self.state.connections),
        )
        self._nursery.cancel_scope.cancel()

    async def _signals(self) -> None:
        assert self._nursery is not None
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as sigs:
            async for _ in sigs:
                self._nursery.start_soon(self._drain, self.grace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge.worker", description="edge worker process")
    parser.add_argument("--spec", required=True, help="JSON spec written by the supervisor")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    logsetup.setup(spec.get("log_level", "info"), worker=spec.get("index"))
    try:
        return trio.run(Worker(spec).run)
    except KeyboardInterrupt:
        # SIGINT before the signal receiver was installed: nothing was being served yet
        return 0


if __name__ == "__main__":
    sys.exit(main())
