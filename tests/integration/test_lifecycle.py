"""The real `edge run`: supervisor, workers, admin listener, reloads, drain, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from tests.support.lifecycle import (
    BAD_CONFIG,
    HeldUpstream,
    config,
    get,
    load,
    metric_samples,
    status,
    workers_on,
)
from tests.support.procs import ROOT, EdgeProcess, free_port, http_get, wait_until


def test_help_is_complete() -> None:
    top = subprocess.run(
        [sys.executable, "-m", "edge", "--help"], capture_output=True, text=True, timeout=60
    )
    assert top.returncode == 0 and "run" in top.stdout
    run = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0
    for flag in (
        "--config",
        "--listen",
        "--admin",
        "--workers",
        "--state-dir",
        "--node",
        "--log-level",
        "--grace-period",
        "--bundle-source",
        "--trusted-root",
        "--poll-interval",
        "--node-id",
        "/healthz",
        "/readyz",
        "/metrics",
        "SIGHUP",
        "SIGTERM",
    ):
        assert flag in run.stdout, flag


def test_invalid_config_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(yaml.safe_dump(BAD_CONFIG))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--config",
            str(cfg),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--admin",
            f"127.0.0.1:{free_port()}",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    problems = [ln for ln in proc.stderr.splitlines() if not ln.startswith("{")]
    assert any(
        ln.startswith(f"{cfg}: routes[0].upstream_id:") and "payments" in ln for ln in problems
    ), proc.stderr
    assert "worker started" not in proc.stderr


def test_bad_node_file_and_usage_errors(tmp_path: Path) -> None:
    node = tmp_path / "node.yaml"
    node.write_text("listeners: [{address: nowhere}]\nworkers: 0\n")
    base = [sys.executable, "-m", "edge", "run"]
    proc = subprocess.run(
        [*base, "--node", str(node), "--config", str(tmp_path / "x.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"{node}: listeners[0].address: expected HOST:PORT (IPv6 as [ADDR]:PORT), got 'nowhere'",
        f"{node}: workers: must be between 1 and 256",
    ]
    usage = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "--config" in usage.stderr


def test_admin_endpoints_status_and_metrics(tmp_path: Path) -> None:
    with HeldUpstream() as up, EdgeProcess(config(up.port, ["/a"]), workers=2) as edge:
        assert http_get(edge.admin_url + "/healthz") == (200, b'{"status":"ok"}\n')
        assert http_get(edge.admin_url + "/readyz") == (200, b'{"ready":true}\n')
        assert get(edge, "/a")[0] == 200
        assert get(edge, "/nothing-here")[0] == 404

        doc = status(edge)
        assert doc["ready"] is True and doc["draining"] is False
        assert doc["config"]["path"] == str(edge.config_path)
        assert len(doc["config"]["version"]) == 16 and len(doc["config"]["hash"]) == 16
        assert doc["config"]["loaded_at"].endswith("Z") and doc["config"]["routes"] == 1
        assert doc["last_reload_error"] is None and doc["bundle"] == {}
        pids = doc["worker_pids"]
        assert len(set(pids)) == 2 and os.getpid() not in pids
        for pid in pids:
            os.kill(pid, 0)  # alive
        assert [w["index"] for w in doc["workers"]] == [0, 1]

        # every worker process increments its own counter; /metrics shows the sum
        samples = metric_samples(edge)
        assert samples[("edge_worker_starts_total", ())] == 2
        assert samples[("edge_workers_ready", ())] == 2

        code, body = http_get(edge.admin_url + "/nope")
        assert code == 404 and json.loads(body) == {"error_msg": "not found"}
        with socket.create_connection(("127.0.0.1", edge.admin_port), timeout=5) as s:
            s.sendall(b"POST /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 405 ")


def test_reload_by_file_change_and_sighup(tmp_path: Path) -> None:
    with HeldUpstream() as up, EdgeProcess(config(up.port, ["/a"]), workers=2) as edge:
        assert get(edge, "/b")[0] == 404
        gen = status(edge)["config"]["generation"]

        # a bad configuration is refused; the old one keeps serving
        edge.write_config(BAD_CONFIG)
        wait_until(lambda: status(edge)["last_reload_error"] is not None, 20, "reload error")
        doc = status(edge)
        assert "routes[0].upstream_id" in doc["last_reload_error"]
        assert "payments" in doc["last_reload_error"]
        assert doc["config"]["generation"] == gen and doc["ready"] is True
        assert get(edge, "/a")[0] == 200
        assert any("configuration rejected" in ln for ln in edge.log_lines())

        # a good one is installed in every worker
        edge.write_config(config(up.port, ["/a", "/b"], version="v2"))
        wait_until(lambda: workers_on(edge, gen + 1), 20, "workers on the new configuration")
        assert status(edge)["last_reload_error"] is None
        assert get(edge, "/b")[0] == 200

        # SIGHUP reloads even when nothing changed (e.g. to re-resolve secrets)
        assert edge.proc is not None
        edge.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: workers_on(edge, gen + 2), 20, "workers reloaded by SIGHUP")
        assert get(edge, "/b")[0] == 200

        samples = metric_samples(edge)
        # two good reloads in each of two workers
        assert samples[("edge_worker_reloads_total", (("result", "ok"),))] == 4
        assert samples[("edge_config_reloads_total", (("result", "failed"),))] == 1
        assert samples[("edge_config_reloads_total", (("result", "ok"),))] == 2


def test_reload_under_load_drops_nothing(tmp_path: Path) -> None:
    with HeldUpstream() as up, EdgeProcess(config(up.port, ["/a"]), workers=2) as edge:
        gen = status(edge)["config"]["generation"]
        with load(edge.port, "/a") as client:
            wait_until(lambda: client.done >= 100, 30, "load running")
            for i in range(1, 4):
                edge.write_config(config(up.port, ["/a", f"/c{i}"], version=f"v{i}"))
                wait_until(lambda i=i: workers_on(edge, gen + i), 20, f"reload {i}")
                before = client.done
                wait_until(lambda before=before: client.done >= before + 50, 30, "traffic")
            assert edge.proc is not None
            edge.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: workers_on(edge, gen + 4), 20, "SIGHUP reload")
            before = client.done
            wait_until(lambda: client.done >= before + 50, 30, "traffic after SIGHUP")
        assert client.failures == []
        assert client.done >= 300
        assert get(edge, "/c3")[0] == 200 and get(edge, "/c1")[0] == 404


def test_sigterm_drains_in_flight_request_then_exits_0(tmp_path: Path) -> None:
    with HeldUpstream() as up:
        edge = EdgeProcess(config(up.port, ["/hold", "/a"]), workers=2)
        # listeners and grace period from a node file; the flags fill the rest
        edge.node = {
            "listeners": [{"address": f"127.0.0.1:{edge.port}"}],
            "grace_period": 30,
            "log_level": "debug",
        }
        with edge:
            result: dict[str, object] = {}

            def slow_request() -> None:
                result["answer"] = get(edge, "/hold", timeout=60)

            t = threading.Thread(target=slow_request)
            t.start()
            assert up.held.wait(30), "the request never reached the upstream"
            assert edge.proc is not None
            edge.proc.send_signal(signal.SIGTERM)

            def refusing() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", edge.port), timeout=2).close()
                except ConnectionRefusedError:
                    return True
                return False

            # draining: not ready, and no longer accepting new connections
            wait_until(lambda: http_get(edge.admin_url + "/readyz")[0] == 503, 20, "not ready")
            wait_until(refusing, 20, "listen socket closed")
            assert edge.proc.poll() is None  # still waiting for the in-flight request

            up.release()
            t.join(30)
            assert result["answer"] == (200, b'{"path": "/hold"}')
            assert edge.proc.wait(30) == 0
            assert sum("drained; exiting" in ln for ln in edge.log_lines()) == 2


def test_killed_worker_is_restarted_and_traffic_continues(tmp_path: Path) -> None:
    with HeldUpstream() as up, EdgeProcess(config(up.port, ["/a"]), workers=2) as edge:
        before = status(edge)["workers"]
        victim = before[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        # the surviving worker keeps taking connections from the shared listen socket
        for _ in range(20):
            assert get(edge, "/a")[0] == 200

        def restarted() -> bool:
            w = status(edge)["workers"][0]
            return w["pid"] not in (None, victim) and w["ready"]

        wait_until(restarted, 30, "worker 0 restarted")
        wait_until(lambda: http_get(edge.admin_url + "/readyz")[0] == 200, 20, "ready again")
        doc = status(edge)
        assert doc["workers"][0]["restarts"] == 1 and doc["workers"][0]["last_exit"] == -9
        assert doc["workers"][1]["pid"] == before[1]["pid"]
        for _ in range(20):
            assert get(edge, "/a")[0] == 200
        samples = metric_samples(edge)
        assert samples[("edge_worker_restarts_total", ())] == 1
        # the dead worker's count stays in the total: 2 first starts + 1 restart
        assert samples[("edge_worker_starts_total", ())] == 3
        assert samples[("edge_workers_ready", ())] == 2


def test_workers_do_not_outlive_a_killed_supervisor(tmp_path: Path) -> None:
    with HeldUpstream() as up, EdgeProcess(config(up.port, ["/a"]), workers=2) as edge:
        pids = status(edge)["worker_pids"]
        assert edge.proc is not None
        edge.proc.kill()
        edge.proc.wait(10)

        def gone(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # a zombie of ours? workers are children of the dead supervisor, so init
            # reaps them; /proc tells a zombie apart from a live process
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ", 1)[1].startswith("Z")

        # the control socket reaches EOF: each worker drains and exits on its own
        wait_until(lambda: all(gone(p) for p in pids), 30, "workers exited")


def test_frozen_worker_is_killed_by_the_watchdog_and_replaced(tmp_path: Path) -> None:
    with (
        HeldUpstream() as up,
        EdgeProcess(config(up.port, ["/a"]), workers=2, env={"EDGE_WATCHDOG_TIMEOUT": "2"}) as edge,
    ):
        frozen = status(edge)["workers"][0]["pid"]
        os.kill(frozen, signal.SIGSTOP)  # alive, holding its socket, answering nothing

        def replaced() -> bool:
            w = status(edge)["workers"][0]
            return w["pid"] not in (None, frozen) and w["ready"]

        wait_until(replaced, 30, "frozen worker replaced")
        assert any("worker unresponsive; killing" in ln for ln in edge.log_lines())
        assert status(edge)["workers"][0]["restarts"] == 1
        assert get(edge, "/a")[0] == 200


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(yaml.safe_dump(config(free_port(), ["/a"])))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge",
                "run",
                "--config",
                str(cfg),
                "--listen",
                f"127.0.0.1:{port}",
                "--admin",
                f"127.0.0.1:{free_port()}",
                "--state-dir",
                str(tmp_path / "state"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert f"edge run: cannot listen on 127.0.0.1:{port}: address already in use" in proc.stderr
