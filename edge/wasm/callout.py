"""proxy_http_call's transport: the gateway's own upstream client.

A call goes through ``edge.upstream.client.forward`` with the worker's connection
pools and health registry (``WorkerState.pools`` / ``.health``), so it gets what
proxied requests get: the upstream's balancer and retries, keep-alive pooling,
health state and TLS settings. ``forward`` is built around a downstream ``Request``;
a call-out has none, so a minimal synthetic one carries the call's method, path,
authority (the Host under ``pass_host: pass``) and headers.

The call's own timeout bounds each of connect/send/read and the whole exchange
(retries included). A failure of any kind (no node, refused, reset, timeout,
malformed or oversized response) is a failed call: the guest sees
``num_headers == 0`` in ``proxy_on_http_call_response``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
import trio

from edge.config.model import UpstreamSpec
from edge.context import ConnInfo, Request
from edge.errors import EdgeError
from edge.http.headers import Headers
from edge.upstream.client import Exchange, RequestBody, UpstreamPools, forward
from edge.upstream.health import HealthRegistry
from edge.upstream.model import Upstream, compile_upstream
from edge.wasm.context import CallResult, PendingCall

log = logging.getLogger("edge.wasm")

MAX_RESPONSE_BYTES = 4 << 20

# the key under which the worker puts its ``WorkerState`` into ``shared``
WORKER_STATE = "worker_state"

# fields the upstream client sets itself (framing, Host from the authority)
_DROPPED = frozenset({"host", "content-length", "connection", "transfer-encoding"})
# the call-out's stand-in for the downstream connection forward() describes upstream
_CONN = ConnInfo("127.0.0.1", 0, "127.0.0.1", 0)

FAILED = CallResult(0, Headers(), b"", failed=True)


class Gateway:
    """Pools and health registry for calls made outside a worker (``edge validate``,
    tests): the worker's ``WorkerState`` has the same two attributes."""

    def __init__(self) -> None:
        self.pools = UpstreamPools()
        self.health = HealthRegistry()


_fallback: Gateway | None = None


def fallback_gateway() -> Gateway:
    global _fallback
    if _fallback is None:
        _fallback = Gateway()
    return _fallback


def compiled(upstream: Any, upstream_id: str) -> Upstream | None:
    """A compiled ``Upstream`` from a compiled one, a spec or a raw mapping; None when
    it cannot be built (the call then fails). The host compiles at config time, so
    requests only see the first case."""
    if upstream is None or isinstance(upstream, Upstream):
        return upstream
    try:
        spec = (
            upstream
            if isinstance(upstream, UpstreamSpec)
            else msgspec.convert(upstream, UpstreamSpec)
        )
        return compile_upstream(spec, upstream_id)
    except (msgspec.ValidationError, ValueError, EdgeError) as e:
        log.warning("wasm http_call upstream %s unusable: %s", upstream_id, e)
        return None


def synthetic_request(call: PendingCall) -> Request:
    headers = Headers([("Host", call.authority)])
    for n, v in call.headers:
        if n.lower() not in _DROPPED:
            headers.add(n, v)
    return Request(call.method, call.path, "1.1", headers, _CONN, time.monotonic(), time.time())


async def perform(call: PendingCall, upstream: Any, gateway: Any = None) -> CallResult:
    """Run one call within its timeout; never raises for network trouble.

    ``gateway`` has ``pools`` and ``health`` (the worker's ``WorkerState``)."""
    up = compiled(upstream, call.upstream)
    if up is None:
        return FAILED
    gw = gateway if gateway is not None else fallback_gateway()
    t = call.timeout
    with_body = call.body or call.method not in ("GET", "HEAD")
    body = RequestBody(data=call.body) if with_body else RequestBody()
    ex: Exchange | None = None
    with trio.move_on_after(t):
        try:
            ex = await forward(gw.pools, gw.health, synthetic_request(call), up, body, (t, t, t))
            chunks: list[bytes] = []
            size = 0
            while True:
                data = await ex.next_chunk()
                if not data:
                    break
                size += len(data)
                if size > MAX_RESPONSE_BYTES:
                    ex.abort()
                    log.info("wasm http_call to %s: response over %d bytes", call.upstream, size)
                    return FAILED
                chunks.append(data)
            ex.finish()
            head = ex.head
            return CallResult(head.status, head.headers.copy(), b"".join(chunks))
        except EdgeError as e:
            if ex is not None:
                ex.abort()
            log.info("wasm http_call to %s failed: %s", call.upstream, type(e).__name__)
            return FAILED
    if ex is not None and not ex.done:
        ex.abort()
    log.info("wasm http_call to %s timed out after %.3fs", call.upstream, t)
    return FAILED
