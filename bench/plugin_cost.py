#!/usr/bin/env python3
"""In-process CPU cost per request of the plugins of bench/run.py's ``plugins`` route.

    python bench/plugin_cost.py [-n 50000] [--multiprocess]

Each plugin is compiled as the registry does (msgspec-decoded config, a real
``CompileEnv``) and its phase handlers run ``n`` times on real ``Request`` objects:
real-ip (rewrite), jwt-auth (rewrite, HS256 bearer token), limit-count (access +
header_filter, file-backed node-wide counter table as in ``edge run``), prometheus
(log). ``--multiprocess`` points prometheus_client at a temporary multiprocess
directory, as a worker of ``edge run`` does (the default is the same, since that is
what the gateway pays). Costs are ``time.process_time`` per call, so other load on
the machine does not inflate them. The loop is bounded by ``n``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HS_SECRET = "bench-secret-0123456789abcdef0123"


def _cost(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(n, 2000)):  # warm caches, create label children
        fn()
    # the best of 5 slices: interruptions by other processes only ever add time
    best = float("inf")
    k = max(1, n // 5)
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(k):
            fn()
        best = min(best, time.process_time() - t0)
    return best / k * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=50000)
    ap.add_argument("--single-process", action="store_true", help="no multiprocess metrics dir")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="edge-plugin-cost-")
    from edge import metrics

    if not args.single_process:
        metrics.enable_multiprocess(os.path.join(tmp, "metrics"), wipe=True)

    import jwt

    from edge.context import Response
    from edge.counters import CounterTable
    from edge.http.headers import Headers
    from edge.plugins.jwt_auth import JwtAuth
    from edge.plugins.limit_count import LimitCount
    from edge.plugins.prometheus import Prometheus
    from edge.plugins.real_ip import RealIp
    from tests.support.plugins import Consumer, Obj, build, env, request

    alice = Consumer("alice")
    e = env(
        {"jwt-auth": [(alice, {"key": "alice-key", "secret": HS_SECRET})]},
        shared={"counter_table": CounterTable(os.path.join(tmp, "counters.shm"))},
    )
    token = jwt.encode({"key": "alice-key"}, HS_SECRET, algorithm="HS256")
    real_ip = build(RealIp, {"source": "http_x_real_ip"}, e)
    jwt_auth = build(JwtAuth, {}, e)
    limit = build(LimitCount, {"count": 10**9, "time_window": 60}, e)
    prom = build(Prometheus, {}, e)
    hdrs = [("X-Real-IP", "10.1.2.3"), ("Authorization", f"Bearer {token}")]
    resp = Response(200, Headers([("Content-Type", "text/plain")]))

    route = Obj("plugins")  # one compiled route, as in the gateway

    def fresh() -> object:
        req = request(uri="/plugins/x", headers=hdrs, route=route)
        req.matched_uri = "/plugins/*"
        req.status = 200
        req.upstream_addr = "127.0.0.1:8080"
        req.upstream_latency = 0.0004
        req.bytes_in, req.bytes_out = 80, 200
        return req

    def fresh_with_response() -> None:
        fresh()
        Response(200, Headers([("Content-Type", "text/plain")]))

    base = _cost(fresh, args.n)
    base_resp = _cost(fresh_with_response, args.n)
    req = fresh()
    assert jwt_auth.rewrite(req) is None and req.consumer is alice

    def run_real_ip() -> None:
        real_ip.rewrite(fresh())

    def run_jwt() -> None:
        jwt_auth.rewrite(fresh())

    def run_limit() -> None:
        r = fresh()
        limit.access(r)
        # the upstream's response head, as the proxy hands it to header_filter
        limit.header_filter(r, Response(200, Headers([("Content-Type", "text/plain")])))

    def run_prom() -> None:
        r = fresh()
        r.consumer = alice
        prom.log(r, resp)

    print(f"n={args.n}, CPU us per request, request construction ({base:.1f} us) subtracted")
    for name, fn, b in (
        ("real-ip", run_real_ip, base),
        ("jwt-auth", run_jwt, base),
        ("limit-count", run_limit, base_resp),
        ("prometheus", run_prom, base),
    ):
        print(f"{name:12} {_cost(fn, args.n) - b:6.2f} us")
    getattr(metrics, "flush", lambda: None)()  # buffered metrics reach the mmap files
    return 0


if __name__ == "__main__":
    sys.exit(main())
