"""Draining through the real process: SIGTERM lets an in-flight request finish, closes
idle keep-alive connections, and the process exits 0."""

from __future__ import annotations

import signal
import threading

import httpx

from tests.support.procs import wait_until
from tests.support.proxy import Reader, connect, edge_proxy, route
from tests.support.upstream import Upstream


def test_sigterm_finishes_in_flight_request_and_closes_idle() -> None:
    with Upstream("a") as up, edge_proxy([route("all", "/*", up.addr)]) as edge:
        idle = connect(edge.port)
        idle.sendall(b"GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
        idle_reader = Reader(idle)
        assert idle_reader.response()[0] == 200

        result: dict[str, object] = {}

        def slow() -> None:
            try:
                result["r"] = httpx.get(edge.url + "/slow", timeout=30)
            except Exception as e:  # reported by the assertion below
                result["e"] = e

        t = threading.Thread(target=slow)
        t.start()
        wait_until(lambda: _held(up), 20, "the slow request to reach the upstream")
        assert edge.proc is not None
        edge.proc.send_signal(signal.SIGTERM)
        # the idle keep-alive connection is closed by the drain
        assert idle_reader.closed()
        up.release()
        t.join(30)
        r = result.get("r")
        assert isinstance(r, httpx.Response), result
        assert r.status_code == 200 and r.text == "slow"
        assert edge.proc.wait(30) == 0
        idle.close()


def _held(up: Upstream) -> bool:
    # /slow is recorded when its request arrived (before it is held)
    return any(r["path"].endswith("/slow") for r in up.requests)
