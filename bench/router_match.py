"""Router lookup cost for 10 vs 10,000 routes (and snapshot compile time).

Run: python bench/router_match.py
Prints the time per ``Router.match`` for the same mix of requests (exact host + exact
URI, wildcard host + prefix, host-less exact, no match) against a 10-route and a
10,000-route table. Both tables are timed in alternation and the best of several
rounds is kept, so load from other processes affects both alike.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.config.model import decode_config
from edge.plugins import registry
from edge.snapshot import compile_snapshot
from tests.support.config import make_request

UP = {"nodes": {"127.0.0.1:9081": 1}}


def table(n: int) -> dict:
    """``n`` routes: a third prefixes, a fifth on exact hosts, some on wildcard hosts."""
    routes = []
    for i in range(n):
        r: dict = {"id": i, "upstream": UP}
        r["uri"] = f"/svc{i}/api/*" if i % 3 == 0 else f"/svc{i}/item"
        if i % 5 == 0:
            r["hosts"] = [f"h{i % 97}.example.com"]
        elif i % 7 == 0:
            r["hosts"] = [f"*.z{i % 13}.example.com"]
        if i % 11 == 0:
            r["methods"] = ["GET", "POST"]
        routes.append(r)
    return {"routes": routes}


def requests(n: int) -> list:
    """One request of each kind, aimed at routes that exist in a table of size ``n``."""
    exact_host = next(i for i in range(n) if i % 5 == 0 and i % 3 != 0)
    wild = next(i for i in range(n) if i % 7 == 0 and i % 5 != 0)
    wild_path = f"/svc{wild}/api/v1/x?y=1" if wild % 3 == 0 else f"/svc{wild}/item"
    plain = next(i for i in range(n) if i % 5 and i % 7 and i % 3)
    return [
        make_request("GET", f"/svc{exact_host}/item", host=f"h{exact_host % 97}.example.com"),
        make_request("GET", wild_path, host=f"a.z{wild % 13}.example.com"),
        make_request("POST", f"/svc{plain}/item", host="other.org"),
        make_request("GET", "/nowhere/at/all", host="other.org"),
    ]


def main() -> None:
    registry.names()  # import the built-in plugins outside the timed compile
    sizes = (10, 10_000)
    routers = {}
    for n in sizes:
        cfg, problems = decode_config(table(n))
        assert cfg is not None, problems
        t0 = time.perf_counter()
        snap = compile_snapshot(cfg)
        print(f"{n:>6} routes: compile_snapshot {1000 * (time.perf_counter() - t0):8.1f} ms")
        routers[n] = (snap.router.match, requests(n))
    best = {n: float("inf") for n in sizes}
    loops = 20_000
    for _ in range(7):
        for n in sizes:
            match, reqs = routers[n]
            t0 = time.perf_counter()
            for _ in range(loops):
                for r in reqs:
                    match(r)
            best[n] = min(best[n], (time.perf_counter() - t0) / (loops * len(reqs)))
    for n in sizes:
        hits = [routers[n][0](r) is not None for r in routers[n][1]]
        print(f"{n:>6} routes: match {best[n] * 1e6:5.2f} us/request (matched: {hits})")
    print(f"ratio 10,000 / 10: {best[10_000] / best[10]:.2f}")


if __name__ == "__main__":
    main()
