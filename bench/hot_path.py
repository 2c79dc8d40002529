"""In-process CPU per request of the reactor's keep-alive fast path, over socketpairs.

    python bench/hot_path.py [plain,plugins,wasm,filter,guard] [-n 20000] [--rounds 5]

For each scenario of ``bench/run.py`` (same routes and plugins), one ``FastConn`` of
``edge.reactor`` serves a socketpair "client" and relays to a socketpair "upstream"
seeded into the worker's pool; this process plays both peers. Each request is: the
client sends, the reactor's read handler runs, the upstream side reads and answers, the
reactor's upstream handler runs, the client reads. No wrk, no other process and no
epoll wait, so the figure moves far less with the machine's load than ``run.py``'s:
use it to compare two versions of the hot path. Printed: CPU per request (best of
``--rounds``), the same socket calls without edge in between, and the difference
(edge's own work, its four system calls included). The loops are bounded by ``-n``.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench_run

from edge.accesslog import AccessLog
from edge.context import ConnInfo
from edge.http.limits import DEFAULT_LIMITS
from edge.http.parser import RequestParser
from edge.reactor import FastConn, Reactor
from edge.snapshot import load_snapshot
from edge.upstream.client import UpstreamConn
from edge.worker_state import WorkerState

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n" % len(bench_run.BODY)
) + bench_run.BODY


def _best(fn: object, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        for _ in range(n):
            fn()  # type: ignore[operator]
        best = min(best, (time.process_time() - c0) / n)
    return best


def _scenario(r: Reactor, name: str, header_lines: list[str], n: int, rounds: int) -> None:
    worker = r.worker
    limits = worker.limits
    upstream = worker.snapshot.upstreams["app"]
    extra = "".join(h + "\r\n" for h in header_lines)
    raw = f"GET /{name}{bench_run.PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()
    client, server = socket.socketpair()
    up_edge, up_peer = socket.socketpair()
    server.setblocking(False)
    up_edge.setblocking(False)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(server))
    info = ConnInfo("127.0.0.1", 40000, "127.0.0.1", 9080)
    conn = FastConn(r, stream, info, RequestParser(limits))
    r.conns.add(conn)
    conn.set_events(select.EPOLLIN)
    # the upstream socketpair, as an idle pooled connection to the route's node
    pool, _ = worker.pools.take_idle(upstream, upstream.nodes[0], None)
    ustream = trio.SocketStream(trio.socket.from_stdlib_socket(up_edge))
    uc = UpstreamConn(ustream, up_edge.fileno(), pool, limits, worker.pools.waiting)
    pool.in_use += 1
    worker.pools.release(uc, True)

    def one() -> bytes:
        client.send(raw)
        conn.on_event(select.EPOLLIN)
        up_peer.recv(65536)
        up_peer.send(RESPONSE)
        r.handlers[up_edge.fileno()](select.EPOLLIN)
        return client.recv(65536)

    def sockets_only() -> None:
        client.send(raw)
        up_edge.send(server.recv(65536))
        up_peer.recv(65536)
        up_peer.send(RESPONSE)
        server.send(up_edge.recv(65536))
        client.recv(65536)

    first = one()
    if not first.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"{name}: unexpected answer {first[:200]!r}")
    for _ in range(min(n, 2000)):  # warm-up: VMs, caches
        one()
    edge_s = _best(one, n, rounds)
    base_s = _best(sockets_only, n, rounds)
    print(
        f"{name:10s} {edge_s * 1e6:7.2f} us/request, sockets only {base_s * 1e6:6.2f},"
        f" edge's work {(edge_s - base_s) * 1e6:7.2f}",
        flush=True,
    )
    conn.close()
    client.close()
    up_peer.close()


async def _main(names: list[str], n: int, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="edge-hot-path-"))
    cfg, headers = bench_run.edge_config(tmp, names, 1, bench_run.CORPUS)
    # one upstream connection and one client connection for the whole run
    cfg["upstreams"][0]["keepalive_pool"] = {"requests": 1 << 40}  # type: ignore[index]
    (tmp / "edge.json").write_text(json.dumps(cfg))
    limits = msgspec.structs.replace(DEFAULT_LIMITS, max_keepalive_requests=1 << 40)
    snap = load_snapshot(tmp / "edge.json")
    worker = WorkerState(snap, limits=limits, access_log=AccessLog("/dev/null"))
    r = Reactor(worker)
    async with trio.open_nursery() as nursery:
        r.nursery = nursery
        worker.reactor = r
        for name in names:
            _scenario(r, name, headers.get(name, []), n, rounds)
        nursery.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="?", default="plain,plugins,wasm,filter,guard")
    ap.add_argument("-n", type=int, default=20000, help="requests per round (bounded)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in names if s not in bench_run.SCENARIOS or s in ("nginx", "floor")]
    if unknown or not 1 <= args.n <= 10_000_000 or not 1 <= args.rounds <= 50:
        raise SystemExit(f"scenarios from plain,plugins,wasm,filter,guard,wasm-min; bad: {unknown}")
    trio.run(_main, names, args.n, args.rounds)


if __name__ == "__main__":
    main()
