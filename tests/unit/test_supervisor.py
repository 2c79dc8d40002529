"""The supervisor's decisions that need no processes: install, readiness, /status."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from edge.errors import ConfigError
from edge.node_config import NodeConfig
from edge.supervisor import Supervisor

GOOD = """
upstreams: [{id: u, nodes: [{host: 127.0.0.1, port: 8080}]}]
routes: [{id: r, uri: /a, upstream_id: u}]
"""
BAD = "routes: [{id: r, uri: /a, upstream_id: payments}]"


def _sup(tmp_path: Path, workers: int = 2) -> Supervisor:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(GOOD)
    return Supervisor(NodeConfig(config=str(cfg), workers=workers, state_dir=str(tmp_path)))


async def test_readiness_needs_config_and_every_worker(tmp_path: Path) -> None:
    sup = _sup(tmp_path)
    assert sup.not_ready_reason() == "no valid configuration loaded"
    sup.load_initial(str(tmp_path / "edge.yaml"))
    assert sup.not_ready_reason() == "workers not ready: [0, 1]"
    sup._on_worker_event(sup.slots[0], {"event": "ready", "generation": 1})
    assert sup.not_ready_reason() == "workers not ready: [1]"
    sup._on_worker_event(sup.slots[1], {"event": "ready", "generation": 1})
    assert sup.ready
    sup._on_worker_event(sup.slots[1], {"event": "draining"})
    assert not sup.ready
    sup.stopping = True
    assert sup.not_ready_reason() == "draining"


def test_install_refuses_bad_and_keeps_current(tmp_path: Path) -> None:
    sup = _sup(tmp_path)
    sup.load_initial(str(tmp_path / "edge.yaml"))
    first = sup.installed
    assert first is not None and first.generation == 1 and first.routes == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    with pytest.raises(ConfigError):
        sup.install(bad)
    assert sup.installed is first
    doc = sup.status_doc()
    assert "routes[0].upstream_id" in doc["last_reload_error"]
    assert doc["reloads"]["failed"] == 1
    sup.install(tmp_path / "edge.yaml")
    assert sup.installed is not None and sup.installed.generation == 2
    assert sup.status_doc()["last_reload_error"] is None


def test_install_from_a_worker_thread_applies_in_the_trio_thread(tmp_path: Path) -> None:
    sup = _sup(tmp_path)
    seen: list[str] = []

    async def main() -> None:
        sup._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(sup.install, tmp_path / "edge.yaml")
        seen.append(threading.current_thread().name)

    trio.run(main)
    assert sup.installed is not None and sup.installed.generation == 1 and seen


def test_workers_converge_on_the_current_generation(tmp_path: Path) -> None:
    sup = _sup(tmp_path, workers=1)
    sup.load_initial(str(tmp_path / "edge.yaml"))
    slot = sup.slots[0]

    async def main() -> list[dict[str, object]]:
        send, recv = trio.open_memory_channel[dict[str, object]](8)
        slot.outbox = send  # type: ignore[assignment]
        # a worker started on an older generation is told to load the current one, once
        sup._on_worker_event(slot, {"event": "ready", "generation": 0})
        sup._on_worker_event(slot, {"event": "pong"})
        sup._on_worker_event(slot, {"event": "reloaded", "generation": 0})
        sup.install(tmp_path / "edge.yaml")
        send.close()
        return [m async for m in recv]

    sent = trio.run(main)
    path = str(tmp_path / "edge.yaml")
    assert sent == [
        {"cmd": "reload", "path": path, "generation": 1},
        {"cmd": "reload", "path": path, "generation": 2},
    ]


def test_set_status_sections(tmp_path: Path) -> None:
    sup = _sup(tmp_path)
    sup.set_status("bundle.version", 7)
    sup.set_status("bundle.stale", False)
    sup.set_status("region", "eu-west-1")
    doc = sup.status_doc()
    assert doc["bundle"] == {"version": 7, "stale": False}
    assert doc["region"] == "eu-west-1"
    assert doc["workers"][0] == {
        "index": 0,
        "pid": None,
        "ready": False,
        "generation": -1,
        "restarts": 0,
        "started_at": None,
        "last_exit": None,
        "last_error": None,
    }


def test_watchdog_timeout_env_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_WATCHDOG_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="EDGE_WATCHDOG_TIMEOUT"):
        _sup(tmp_path)
    monkeypatch.setenv("EDGE_WATCHDOG_TIMEOUT", "8")
    sup = _sup(tmp_path)
    assert sup.watchdog_timeout == 8 and sup.ping_interval == 2
