#!/usr/bin/env python3
"""The benchmark: edge's routes beside nginx as a reverse proxy, in one run.

Starts, all on 127.0.0.1 in a temporary directory removed at the end:
  1. nginx, 1 worker, serving a fixed 100-byte body: the upstream of everything;
  2. nginx, 1 worker, as a reverse proxy to (1) with upstream keepalive;
  3. edge, 1 worker, with one route per edge scenario, all to (1).
Then runs wrk against each selected scenario for a bounded time (a 1 s warm-up each,
then --seconds per round) and prints, side by side: requests/s, p50, p99, errors, the
CPU time per request of the server's processes, and the ratios to nginx and to the
plain edge route, with each issue's target.

Scenarios (--only takes a comma-separated subset, in any order):
  nginx    nginx reverse proxy (2)
  floor    bench/floor_relay.py: a Python epoll + httptools relay with no gateway work,
           the floor of what edge's hot path can cost; not run unless named in --only
  plain    edge, a route with no plugin                   issue 2: >= 0.40x nginx
  plugins  edge, real-ip + jwt-auth (HS256 bearer token sent by wrk) + limit-count
           (a count never reached) + prometheus           issue 3: >= 0.30x nginx
  wasm     edge, one proxy-wasm header filter, tinygo_add_req_header from the corpus
           (../shared/wasm-corpus beside the repo, or --corpus); for reference (issue 4
           sets its target for go_http_headers or a filter of ours: filter)
  filter   edge, one proxy-wasm header filter of ours: plugin_sdk/rust/examples/
           header_filter.rs (adds a response header), built with cargo on first use
           (skipped with a message when it cannot be)     issue 4: >= 0.85x plain
  guard    edge, request-guard (plugins_wasm/dist/request-guard.wasm from
           plugins_wasm/build.sh; skipped with a message when absent)  issue 5: >= 0.85x plain
  wasm-min edge, the smallest useful proxy-wasm filter (WAT, sets one request header);
           not run unless named in --only

    python bench/run.py [--seconds 10] [--rounds 1] [--only plain,plugins]
                        [--connections 32] [--threads 2] [--access-log stderr|off|PATH]

With --rounds N the scenarios are measured N times, alternating, and each keeps its
best round, so a burst of load from elsewhere does not land on one scenario only.
With 3 rounds or more, "paired" is the median over rounds of a scenario's req/s over
its target's base in the same round, and it decides the target: the machine's speed
drifts within minutes, and a round measures both within seconds of each other.
The CPU column (user+system of the server's processes over the wrk run, per request)
is what a saturated worker would pay, so its ratios hardly move with machine load.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = b"hello from the upstream. " * 4  # 100 bytes
CORPUS = ROOT.parent / "shared" / "wasm-corpus"
GUARD = ROOT / "plugins_wasm" / "dist" / "request-guard.wasm"
PATH = "/users/42?sort=name"  # every scenario requests /<scenario>{PATH}
JWT_KEY, JWT_SECRET = "bench-key", "bench-secret-0123456789abcdef0123"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SCENARIOS = ("nginx", "floor", "plain", "plugins", "wasm", "filter", "guard", "wasm-min")
DEFAULT = ("nginx", "plain", "plugins", "wasm", "filter", "guard")
# scenario -> (ratio it is judged by, target); the issue that sets it
TARGETS = {
    "plain": ("nginx", 0.40, "issue 2"),
    "plugins": ("nginx", 0.30, "issue 3"),
    "filter": ("plain", 0.85, "issue 4"),
    "guard": ("plain", 0.85, "issue 5"),
    "wasm-min": ("plain", 0.85, "issue 4"),
}
# scenarios measured against a base for reference, with no target of their own: issue 4
# sets its target for "go_http_headers or a filter of ours" (filter); a TinyGo module
# calls every callback of the stream whether it uses it or not
REFERENCE = {"wasm": ("plain", "issue 4 judges filter; TinyGo corpus module, for reference")}

# on_request_headers: replace request header "x-wasm: 1"; nothing else exported
HEADER_FILTER_WAT = """
(module
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x-wasm1")
  (global $heap (mut i32) (i32.const 1024))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32)
    (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get 0 i32.add global.set $heap
    local.get $p)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 22) (i32.const 1)))
    i32.const 0))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 60.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=1) as r:
                if r.status == 200:
                    return
                last = str(r.status)
        except Exception as exc:  # any failure means "not yet"
            last = str(exc)
        time.sleep(0.05)  # polling a readiness probe, bounded by the deadline
    raise SystemExit(f"not ready: {url} ({last})")


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


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of ``pid`` and its child processes (nginx's or edge's
    workers), from /proc."""
    total = 0.0
    kids: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += (task / "children").read_text().split()
        except OSError:
            continue
    for p in [str(pid), *kids]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # after the command: state is [0], utime [11], stime [12] (clock ticks)
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def wrk(
    url: str, seconds: int, connections: int, threads: int, headers: list[str], pid: int
) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    c0 = cpu_seconds(pid)
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    cpu = cpu_seconds(pid) - c0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if m is None or n is None:
        raise SystemExit(f"wrk against {url} printed no result:\n{out}")

    def pct(p: str) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            return float("nan")
        v = float(found.group(1))
        unit = found.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = 0
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if e:
        errors += int(e.group(1))
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if e:
        errors += sum(int(x) for x in e.groups())
    return {
        "rps": float(m.group(1)),
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": errors,
        "cpu_us": cpu / max(1, int(n.group(1))) * 1e6,
    }


def hs256_token(key: str, secret: str) -> str:
    """A jwt-auth bearer token, signed here (no jwt library needed by the benchmark)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"key": key, "exp": int(time.time()) + 86400}).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


@dataclass
class Scenario:
    name: str
    url: str
    pid: int
    headers: list[str] = field(default_factory=list)


def edge_config(
    tmp: Path, wanted: list[str], up_port: int, corpus: Path
) -> tuple[dict[str, object], dict[str, list[str]]]:
    """The edge configuration with a route per wanted edge scenario, and the headers
    wrk sends to each."""
    upstream = {"nodes": {f"127.0.0.1:{up_port}": 1}}
    routes: list[dict[str, object]] = []
    wasm_plugins: list[dict[str, str]] = []
    headers: dict[str, list[str]] = {}
    cfg: dict[str, object] = {"upstreams": [{"id": "app", **upstream}]}

    def wasm_module(name: str, data: bytes) -> str:
        (tmp / f"{name}.wasm").write_bytes(data)
        wasm_plugins.append(
            {
                "name": f"bench/{name}",
                "file": f"{name}.wasm",
                "sha256": hashlib.sha256(data).hexdigest(),
                "tenant": "bench",
            }
        )
        return f"bench/{name}"

    for name in wanted:
        route: dict[str, object] = {"id": name, "uri": f"/{name}/*", "upstream_id": "app"}
        if name == "plugins":
            route["plugins"] = {
                "real-ip": {"source": "http_x_real_ip", "trusted_addresses": ["127.0.0.1"]},
                "jwt-auth": {},
                "limit-count": {"count": 1_000_000_000, "time_window": 3600},
                "prometheus": {},
            }
            cfg["consumers"] = [
                {
                    "username": "bench",
                    "plugins": {"jwt-auth": {"key": JWT_KEY, "secret": JWT_SECRET}},
                }
            ]
            headers[name] = [
                f"Authorization: Bearer {hs256_token(JWT_KEY, JWT_SECRET)}",
                "X-Real-IP: 10.0.0.7",
            ]
        elif name == "wasm":
            data = (corpus / "tinygo_add_req_header.wasm").read_bytes()
            route["plugins"] = {wasm_module("tinygo", data): {}}
        elif name == "wasm-min":
            import wasmtime  # only this scenario compiles WAT

            route["plugins"] = {wasm_module("min", wasmtime.wat2wasm(HEADER_FILTER_WAT)): {}}
        elif name == "guard":
            route["plugins"] = {wasm_module("request-guard", GUARD.read_bytes()): {"conf": {}}}
        elif name == "filter":
            route["plugins"] = {wasm_module("header-filter", sdk_header_filter().read_bytes()): {}}
        routes.append(route)
    cfg["routes"] = routes
    if wasm_plugins:
        cfg["tenants"] = [{"id": "bench"}]
        cfg["wasm_plugins"] = wasm_plugins
    return cfg, headers


def sdk_header_filter() -> Path:
    """plugin_sdk/rust/examples/header_filter.rs built (cached) as the tests build it."""
    sys.path.insert(0, str(ROOT))
    from tests.support.wasm_build import rust_sdk_example

    return rust_sdk_example("header_filter")


def ratio(results: dict[str, dict[str, float]], name: str, base: str, key: str) -> str:
    if base not in results or name not in results:
        return "-"
    a, b = results[name][key], results[base][key]
    # requests/s: higher is better; CPU per request: the base's cost over ours
    return f"{a / b:.2f}x" if key == "rps" else f"{b / a:.2f}x"


def paired_ratio(per_round: dict[str, list[float]], name: str, base: str) -> float | None:
    """The median over rounds of ``name``'s req/s over ``base``'s in the same round.

    The machine's speed drifts within minutes (a shared VM): two best-of-N figures may
    come from rounds minutes apart, while a round measures both scenarios within
    seconds of each other, so its ratio cancels most of the drift."""
    a, b = per_round.get(name), per_round.get(base)
    if not a or not b or len(a) != len(b):
        return None
    return float(statistics.median(x / y for x, y in zip(a, b, strict=True)))


def print_rounds(per_round: dict[str, list[float]], what: str) -> None:
    """Each round's figure, and for a scenario with a base, its ratio in that round."""
    print(f"per round ({what}; ratio to the base in the same round):")
    for name, rps in per_round.items():
        base = (TARGETS.get(name) or REFERENCE.get(name) or ("",))[0]
        b = per_round.get(base)
        cells = [
            f"{r:.0f}" + (f" ({r / b[i]:.2f})" if b and len(b) == len(rps) else "")
            for i, r in enumerate(rps)
        ]
        print(f"  {name:10}" + "  ".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=1, help="per scenario and round")
    ap.add_argument("--rounds", type=int, default=30, help="alternating rounds, best kept")
    ap.add_argument("--only", default=",".join(DEFAULT), help="comma-separated scenarios")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--access-log", default="stderr", help="edge access_log: stderr|off|PATH")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="the proxy-wasm corpus dir")
    ap.add_argument(
        "--per-round", action="store_true", help="also print each round's req/s and ratios"
    )
    args = ap.parse_args()
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown or not wanted:
        raise SystemExit(f"--only: unknown {unknown}; choose from {', '.join(SCENARIOS)}")
    if not 1 <= args.seconds <= 600 or not 1 <= args.rounds <= 60:
        raise SystemExit("--seconds must be 1..600 and --rounds 1..60")
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required")
    skipped: list[str] = []
    if "guard" in wanted and not GUARD.is_file():
        skipped.append(
            f"guard: skipped, {GUARD.relative_to(ROOT)} is missing (plugins_wasm/build.sh)"
        )
        wanted.remove("guard")
    if "filter" in wanted:
        try:
            sdk_header_filter()
        except (OSError, subprocess.CalledProcessError) as e:
            skipped.append(f"filter: skipped, the SDK example did not build ({e})")
            wanted.remove("filter")
    if "wasm" in wanted and not (args.corpus / "tinygo_add_req_header.wasm").is_file():
        skipped.append(f"wasm: skipped, no tinygo_add_req_header.wasm in {args.corpus}")
        wanted.remove("wasm")
    edge_wanted = [s for s in wanted if s not in ("nginx", "floor")]
    load_before = os.getloadavg()
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
        procs.append(start_nginx(up))
        wait_http(f"http://127.0.0.1:{up_port}/")
        scenarios: list[Scenario] = []
        if "nginx" in wanted:
            proxy = nginx_conf(
                tmp,
                "proxy",
                f"upstream backend {{ server 127.0.0.1:{up_port}; keepalive 64; }}\n"
                f"server {{ listen 127.0.0.1:{nginx_port} backlog=4096; location / {{ "
                "proxy_pass http://backend; proxy_http_version 1.1; "
                'proxy_set_header Connection ""; } }',
            )
            ngx = start_nginx(proxy)
            procs.append(ngx)
            wait_http(f"http://127.0.0.1:{nginx_port}/")
            scenarios.append(
                Scenario("nginx", f"http://127.0.0.1:{nginx_port}/plain{PATH}", ngx.pid)
            )
        if "floor" in wanted:
            floor_port = free_port()
            relay = ROOT / "bench" / "floor_relay.py"
            floor = subprocess.Popen([sys.executable, str(relay), str(floor_port), str(up_port)])
            procs.append(floor)
            wait_http(f"http://127.0.0.1:{floor_port}/")
            scenarios.append(
                Scenario("floor", f"http://127.0.0.1:{floor_port}/plain{PATH}", floor.pid)
            )
        if edge_wanted:
            cfg, headers = edge_config(tmp, edge_wanted, up_port, args.corpus)
            (tmp / "edge.json").write_text(json.dumps(cfg))
            node = tmp / "node.yaml"
            node.write_text(
                f"listeners: [{{address: '127.0.0.1:{edge_port}'}}]\n"
                f"admin: '127.0.0.1:{admin_port}'\nworkers: 1\nlog_level: warning\n"
                f"access_log: '{args.access_log}'\n"
                f"state_dir: {tmp / 'state'}\nconfig: {tmp / 'edge.json'}\n"
            )
            edge_log = open(tmp / "edge.log", "wb")
            edge = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", "--node", str(node)],
                cwd=ROOT,
                stdout=edge_log,
                stderr=subprocess.DEVNULL if args.access_log == "stderr" else edge_log,
            )
            procs.append(edge)
            try:
                wait_http(f"http://127.0.0.1:{admin_port}/readyz")
                for name in edge_wanted:
                    hdrs = dict(h.split(": ", 1) for h in headers.get(name, []))
                    wait_http(f"http://127.0.0.1:{edge_port}/{name}{PATH}", headers=hdrs)
            except SystemExit:
                edge_log.flush()
                print((tmp / "edge.log").read_text()[-3000:], file=sys.stderr)
                raise
            for name in edge_wanted:
                scenarios.append(
                    Scenario(
                        name,
                        f"http://127.0.0.1:{edge_port}/{name}{PATH}",
                        edge.pid,
                        headers.get(name, []),
                    )
                )
        scenarios.sort(key=lambda s: SCENARIOS.index(s.name))
        w = (args.connections, args.threads)
        for s in scenarios:  # warm-up: keep-alive connections open, VMs created
            wrk(s.url, 1, *w, s.headers, s.pid)
        results: dict[str, dict[str, float]] = {}
        per_round: dict[str, list[float]] = {}  # req/s of each round, in order
        per_cpu: dict[str, list[float]] = {}  # requests per CPU second of each round
        for i in range(args.rounds):
            # every other round in reverse order: a machine slowing down (or speeding up)
            # through a round favours the first scenarios as often as the last
            for s in scenarios if i % 2 == 0 else scenarios[::-1]:
                r = wrk(s.url, args.seconds, *w, s.headers, s.pid)
                per_round.setdefault(s.name, []).append(r["rps"])
                per_cpu.setdefault(s.name, []).append(1e6 / max(r["cpu_us"], 1e-3))
                if s.name not in results or r["rps"] > results[s.name]["rps"]:
                    results[s.name] = r
        load_after = os.getloadavg()
        native = subprocess.run(
            [sys.executable, "-m", "edge", "native", "status"], capture_output=True, text=True
        ).stdout.strip()
        print(f"{native} (compiled hot path, edge/native.py)")
        print(
            f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, "
            f"{'best of ' + str(args.rounds) + ', ' if args.rounds > 1 else ''}"
            f"{len(BODY)}-byte body, 1 worker each, edge access_log={args.access_log}; "
            f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
        )
        print(
            f"{'':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'cpu us/req':>12}"
            f"{'/nginx':>8}{'/plain':>8}{'cpu/plain':>11}{'paired':>8}{'cpu pair':>10}  target"
        )
        for name, r in results.items():
            target = paired = ""
            base_of = (TARGETS.get(name) or REFERENCE.get(name) or ("",))[0]
            cpu_got = paired_ratio(per_cpu, name, base_of) if args.rounds >= 3 else None
            cpu_paired = f"{cpu_got:.2f}x" if cpu_got is not None else "-"
            if name in TARGETS:
                base, want, issue = TARGETS[name]
                got = paired_ratio(per_round, name, base) if args.rounds >= 3 else None
                how = "paired"
                if got is None:
                    best = ratio(results, name, base, "rps")
                    got, how = (None if best == "-" else float(best[:-1])), "best"
                paired = f"{got:.2f}x" if got is not None and how == "paired" else "-"
                verdict = "-" if got is None else ("met" if got >= want else "NOT met")
                target = f"{issue}: >= {want:.2f}x {base} ({how}): {verdict}"
            elif name in REFERENCE and args.rounds >= 3:
                base, target = REFERENCE[name]
                got = paired_ratio(per_round, name, base)
                paired = f"{got:.2f}x" if got is not None else "-"
            print(
                f"{name:10}{r['rps']:>9.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8.0f}"
                f"{r['cpu_us']:>12.0f}{ratio(results, name, 'nginx', 'rps'):>8}"
                f"{ratio(results, name, 'plain', 'rps'):>8}"
                f"{ratio(results, name, 'plain', 'cpu_us'):>11}{paired:>8}{cpu_paired:>10}"
                f"  {target}"
            )
        if args.per_round:
            print_rounds(per_round, "req/s")
            print_rounds(per_cpu, "requests per CPU second of edge")
        for line in skipped:
            print(line)
        if any(r["errors"] for r in results.values()):
            print("some scenarios had errors (non-2xx or socket errors): their numbers are suspect")
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
