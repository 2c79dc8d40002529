#!/usr/bin/env python3
"""Measure the node's lifecycle on this machine: start to ready, reload, worker restart,
/metrics, drain. Starts a real `edge run` on free loopback ports.

    python scripts/lifecycle_timings.py [--workers 2] [--rounds 5]

Prints one line per measurement: median and max over the rounds, in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def until(pred: Callable[[], bool], timeout: float = 60.0) -> float:
    """Seconds until ``pred`` held (polling every 5 ms); raises on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred():
            return time.perf_counter() - t0
        time.sleep(0.005)
    raise TimeoutError("condition not reached")


def one_round(cfg: Path, tmp: Path, workers: int, results: dict[str, list[float]]) -> None:
    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds * 1000)

    port, admin = free_port(), free_port()
    base = f"http://127.0.0.1:{admin}"
    argv = [
        sys.executable, "-m", "edge", "run", "--config", str(cfg),
        "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
        "--workers", str(workers), "--state-dir", str(tmp / "state"),
        "--access-log", "off", "--log-level", "warning",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.DEVNULL)
    until(lambda: get(base + "/readyz")[0] == 200)
    record("start -> /readyz 200", time.perf_counter() - t0)

    def status() -> dict:
        return json.loads(get(base + "/status")[1])

    gen = status()["config"]["generation"]
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGHUP)
    until(lambda: all(w["generation"] == gen + 1 for w in status()["workers"]))
    record("SIGHUP -> all workers on the new snapshot", time.perf_counter() - t0)

    victim = status()["workers"][0]["pid"]
    t0 = time.perf_counter()
    os.kill(victim, signal.SIGKILL)
    until(lambda: (w := status()["workers"][0])["pid"] not in (None, victim) and w["ready"])
    record("kill -9 worker -> replacement ready", time.perf_counter() - t0)

    for _ in range(10):
        t0 = time.perf_counter()
        assert get(base + "/metrics")[0] == 200
        record("GET /metrics", time.perf_counter() - t0)

    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    record("SIGTERM (idle) -> exit 0", time.perf_counter() - t0)
    assert proc.returncode == 0, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="edge-timings-"))
    cfg = tmp / "edge.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "upstreams": [{"id": "u", "nodes": [{"host": "127.0.0.1", "port": 9}]}],
                "routes": [
                    {"id": f"r{i}", "uri": f"/r{i}", "upstream_id": "u"} for i in range(100)
                ],
            }
        )
    )
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        one_round(cfg, tmp, args.workers, results)

    print(f"edge lifecycle, {args.workers} workers, {args.rounds} rounds, 100 routes")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:45s} median {median:8.1f} ms   max {max(values):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
