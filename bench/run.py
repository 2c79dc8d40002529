#!/usr/bin/env python3
"""Benchmark edge against nginx as a reverse proxy, on the same nginx upstream.

Starts (all on 127.0.0.1, in a temporary directory, cleaned up at the end):
  1. nginx, 1 worker, serving a small fixed body (the upstream);
  2. edge with 1 worker proxying to it (a prefix route, access log on, as in production);
  3. nginx, 1 worker, as a reverse proxy with upstream keepalive.
Then runs wrk for a bounded time against (2) and (3) and prints requests/s, p50, p99
and the ratio edge/nginx.

    python bench/run.py [--seconds 10] [--connections 32] [--threads 2] [--access-log off]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = b"hello from the upstream. " * 4  # 100 bytes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"not ready: {url}")


def nginx_conf(tmp: Path, name: str, server_block: str) -> Path:
    d = tmp / name
    d.mkdir()
    conf = d / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    {server_block}
}}
"""
    )
    return conf


def start_nginx(conf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wrk(url: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--access-log", default="stderr", help="edge access_log: stderr|off|PATH")
    args = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    tmp = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port, nginx_port, edge_port, admin_port = (free_port() for _ in range(4))
        up = nginx_conf(
            tmp,
            "upstream",
            f"server {{ listen 127.0.0.1:{up_port} reuseport backlog=4096; "
            f"location / {{ default_type text/plain; return 200 '{BODY.decode()}'; }} }}",
        )
        proxy = nginx_conf(
            tmp,
            "proxy",
            f"upstream backend {{ server 127.0.0.1:{up_port}; keepalive 64; }}\n"
            f"server {{ listen 127.0.0.1:{nginx_port} backlog=4096; location / {{ "
            "proxy_pass http://backend; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; } }',
        )
        procs.append(start_nginx(up))
        wait_http(f"http://127.0.0.1:{up_port}/")
        procs.append(start_nginx(proxy))
        wait_http(f"http://127.0.0.1:{nginx_port}/")
        cfg = tmp / "edge.yaml"
        cfg.write_text(
            "routes:\n"
            "  - id: bench\n"
            "    uri: /*\n"
            "    upstream:\n"
            f"      nodes: {{'127.0.0.1:{up_port}': 1}}\n"
        )
        node = tmp / "node.yaml"
        node.write_text(
            f"listeners: [{{address: '127.0.0.1:{edge_port}'}}]\n"
            f"admin: '127.0.0.1:{admin_port}'\nworkers: 1\nlog_level: warning\n"
            f"access_log: '{args.access_log}'\n"
            f"state_dir: {tmp / 'state'}\nconfig: {cfg}\n"
        )
        edge_log = open(tmp / "edge.log", "wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--node", str(node)],
                cwd=ROOT,
                stdout=edge_log,
                stderr=subprocess.DEVNULL if args.access_log == "stderr" else edge_log,
            )
        )
        try:
            wait_http(f"http://127.0.0.1:{admin_port}/readyz")
            wait_http(f"http://127.0.0.1:{edge_port}/")
        except SystemExit:
            edge_log.flush()
            print((tmp / "edge.log").read_text()[-3000:], file=sys.stderr)
            raise
        results = {}
        for name, port in (("edge", edge_port), ("nginx", nginx_port)):
            # a short warm-up so both start with open upstream keep-alive connections
            wrk(f"http://127.0.0.1:{port}/", 1, args.connections, args.threads)
            results[name] = wrk(
                f"http://127.0.0.1:{port}/", args.seconds, args.connections, args.threads
            )
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, "
            f"{len(BODY)}-byte body, 1 worker each, edge access_log={args.access_log}"
        )
        print(f"{'':8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for name, r in results.items():
            print(f"{name:8}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>8.0f}")
        ratio = results["edge"]["rps"] / results["nginx"]["rps"]
        print(f"ratio edge/nginx: {ratio:.2f}x (target >= 0.40x)")
        return 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
