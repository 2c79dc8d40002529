#!/usr/bin/env python3
"""Throughput with request-guard on: the plain route, the same route with the plugin,
and nginx, in one run (issue 5's benchmark; target: guard >= 85% of plain).

Reuses bench/run.py's nginx/wrk helpers. Needs plugins_wasm/dist/request-guard.wasm
(plugins_wasm/build.sh). Everything on 127.0.0.1, one worker each, bounded by
--seconds per measurement.

    python plugins_wasm/bench.py [--seconds 10] [--rounds 2] [--connections 32] [--threads 2]
                                 [--module other.wasm]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "plugins_wasm" / "dist" / "request-guard.wasm"


def _bench_helpers():  # bench/ is a directory of scripts, not a package
    spec = importlib.util.spec_from_file_location("edge_bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept")
    ap.add_argument("--module", type=Path, default=MODULE, help="another module to compare")
    args = ap.parse_args()
    if not args.module.is_file():
        raise SystemExit(f"{args.module} is missing: run plugins_wasm/build.sh first")
    b = _bench_helpers()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    tmp = Path(tempfile.mkdtemp(prefix="edge-bench-guard-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port, nginx_port, edge_port, admin_port = (b.free_port() for _ in range(4))
        up = b.nginx_conf(
            tmp,
            "upstream",
            f"server {{ listen 127.0.0.1:{up_port} reuseport backlog=4096; "
            f"location / {{ default_type text/plain; return 200 '{b.BODY.decode()}'; }} }}",
        )
        proxy = b.nginx_conf(
            tmp,
            "proxy",
            f"upstream backend {{ server 127.0.0.1:{up_port}; keepalive 64; }}\n"
            f"server {{ listen 127.0.0.1:{nginx_port} backlog=4096; location / {{ "
            "proxy_pass http://backend; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; } }',
        )
        procs.append(b.start_nginx(up))
        b.wait_http(f"http://127.0.0.1:{up_port}/")
        procs.append(b.start_nginx(proxy))
        b.wait_http(f"http://127.0.0.1:{nginx_port}/")
        data = args.module.read_bytes()
        (tmp / "request-guard.wasm").write_bytes(data)
        cfg = tmp / "edge.yaml"
        cfg.write_text(
            "tenants: [{id: acme}]\n"
            "wasm_plugins:\n"
            "  - {name: acme/request-guard, file: request-guard.wasm, tenant: acme,\n"
            f"     sha256: {hashlib.sha256(data).hexdigest()}}}\n"
            f"upstreams: [{{id: app, nodes: {{'127.0.0.1:{up_port}': 1}}}}]\n"
            "routes:\n"
            "  - {id: plain, uri: /plain/*, upstream_id: app}\n"
            "  - {id: guard, uri: /guard/*, upstream_id: app,\n"
            "     plugins: {acme/request-guard: {conf: {}}}}\n"
        )
        node = tmp / "node.yaml"
        node.write_text(
            f"listeners: [{{address: '127.0.0.1:{edge_port}'}}]\n"
            f"admin: '127.0.0.1:{admin_port}'\nworkers: 1\nlog_level: warning\n"
            f"access_log: 'off'\nstate_dir: {tmp / 'state'}\nconfig: {cfg}\n"
        )
        log = open(tmp / "edge.log", "wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--node", str(node)],
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )
        try:
            b.wait_http(f"http://127.0.0.1:{admin_port}/readyz")
            b.wait_http(f"http://127.0.0.1:{edge_port}/guard/x")
        except SystemExit:
            log.flush()
            print((tmp / "edge.log").read_text()[-3000:], file=sys.stderr)
            raise
        targets = {
            "edge plain": f"http://127.0.0.1:{edge_port}/plain/users/42?sort=name",
            "edge +guard": f"http://127.0.0.1:{edge_port}/guard/users/42?sort=name",
            "nginx": f"http://127.0.0.1:{nginx_port}/plain/users/42?sort=name",
        }
        results: dict[str, dict[str, float]] = {}
        for url in targets.values():
            b.wrk(url, 1, args.connections, args.threads)  # warm-up: keep-alive, VM, caches
        # alternate the targets and keep each one's best round, so a burst of load from
        # elsewhere on the machine does not land on one target only
        for _ in range(args.rounds):
            for name, url in targets.items():
                r = b.wrk(url, args.seconds, args.connections, args.threads)
                if name not in results or r["rps"] > results[name]["rps"]:
                    results[name] = r
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, best of "
            f"{args.rounds}, {len(b.BODY)}-byte body, 1 worker each, access log off, "
            f"module {args.module.name}"
        )
        print(f"{'':12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
        for name, r in results.items():
            print(
                f"{name:12}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['errors']:>8.0f}"
            )
        ratio = results["edge +guard"]["rps"] / results["edge plain"]["rps"]
        print(f"request-guard / plain: {ratio:.2f} (target >= 0.85)")
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
