"""proxy_http_call's transport: a small trio HTTP/1.1 client to a named upstream.

The gateway's pooled upstream client (edge/upstream/client.py) is built around a
downstream ``Request``; a plugin's call-out has none, so this module sends one
request per connection (``Connection: close``) to the upstream's first node. A
failure of any kind (refused, reset, timeout, malformed or oversized response) is a
failed call: the guest sees ``num_headers == 0`` in ``proxy_on_http_call_response``.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import httptools
import trio

from edge.http.headers import Headers
from edge.wasm.context import CallResult, PendingCall

log = logging.getLogger("edge.wasm")

MAX_RESPONSE_BYTES = 4 << 20
MAX_HEAD_BYTES = 64 << 10


def upstream_nodes(upstream: Any) -> tuple[str, list[tuple[str, int]]]:
    """(scheme, [(host, port)]) from a compiled ``Upstream`` or a config spec."""
    if isinstance(upstream, dict):
        nodes = upstream.get("nodes")
        scheme = str(upstream.get("scheme") or "http")
    else:
        nodes = getattr(upstream, "nodes", None)
        scheme = str(getattr(upstream, "scheme", None) or "http")
    default_port = 443 if scheme == "https" else 80
    out: list[tuple[str, int]] = []
    if isinstance(nodes, dict):
        for key in nodes:
            host, _, port = str(key).rpartition(":")
            if not host:
                host, port = str(key), ""
            out.append((host.strip("[]"), int(port) if port.isdigit() else default_port))
    elif isinstance(nodes, list):
        for n in nodes:
            addr = getattr(n, "addr", None)
            if addr is not None:
                out.append((addr[0], int(addr[1])))
                continue
            host = n.get("host") if isinstance(n, dict) else getattr(n, "host", None)
            port = n.get("port") if isinstance(n, dict) else getattr(n, "port", None)
            if host:
                out.append((str(host).strip("[]"), int(port or default_port)))
    return scheme, out


class _Collect:
    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.done = False
        self.too_big = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_RESPONSE_BYTES:
            self.too_big = True
        else:
            self.body.append(data)

    def on_message_complete(self) -> None:
        self.done = True


FAILED = CallResult(0, Headers(), b"", failed=True)


async def perform(call: PendingCall, upstream: Any) -> CallResult:
    """Run one call within its timeout; never raises for network trouble."""
    scheme, nodes = upstream_nodes(upstream)
    if not nodes:
        return FAILED
    host, port = nodes[0]
    with trio.move_on_after(call.timeout):
        try:
            return await _exchange(call, scheme, host, port)
        except (
            OSError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            ssl.SSLError,
            httptools.HttpParserError,
        ) as e:
            log.info("wasm http_call to %s failed: %s", call.upstream, type(e).__name__)
            return FAILED
    log.info("wasm http_call to %s timed out after %.3fs", call.upstream, call.timeout)
    return FAILED


async def _exchange(call: PendingCall, scheme: str, host: str, port: int) -> CallResult:
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    async with stream:
        if scheme == "https":
            ctx = ssl.create_default_context()
            stream = trio.SSLStream(stream, ctx, server_hostname=call.authority.partition(":")[0])
        lines = [f"{call.method} {call.path} HTTP/1.1", f"Host: {call.authority}"]
        for n, v in call.headers:
            if n in ("host", "content-length", "connection", "transfer-encoding"):
                continue
            lines.append(f"{n}: {v}")
        if call.body or call.method not in ("GET", "HEAD"):
            lines.append(f"Content-Length: {len(call.body)}")
        lines.append("Connection: close")
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + call.body)
        col = _Collect()
        parser = httptools.HttpResponseParser(col)
        received = 0
        while not col.done:
            data = await stream.receive_some(65536)
            if not data:
                break
            received += len(data)
            parser.feed_data(data)
            if col.too_big or (not col.headers and received > MAX_HEAD_BYTES):
                return FAILED
        if not col.done:
            # a close-delimited body ends at EOF; anything else is truncated
            try:
                parser.feed_data(b"")
            except httptools.HttpParserError:
                return FAILED
            if not col.done and parser.get_status_code() == 0:
                return FAILED
        return CallResult(parser.get_status_code(), Headers(col.headers), b"".join(col.body))
