"""Connection setup for listeners behind a load balancer: PROXY protocol, source
restriction and TLS, run once per connection before the first HTTP byte.

Order, as a connection arrives:

1. PROXY protocol (``proxy_protocol: v1|v2``): only peers in ``trusted_proxies`` may
   connect at all (an untrusted peer could otherwise claim any client address); the
   header must arrive whole within ``proxy_protocol_timeout``. Its source address becomes
   the client address; its TLVs go to ``ConnInfo.proxy_tlvs``. A v2 LOCAL header (a load
   balancer's health check) keeps the peer's own address.
2. ``ip_restriction`` on the listener: the client address as the PROXY header gave it
   (before any ``real-ip`` plugin reads CDN headers) must pass the whitelist/blacklist.
   This is how a node refuses traffic that did not come through the CDN's ranges.
3. TLS (``tls: true``): the certificate comes from the current snapshot's SNI table; a
   handshake must finish within ``TLS_HANDSHAKE_TIMEOUT``; an SNI that demands a client
   certificate (mTLS) without a valid one gets a 400 and the connection is closed.

Every refusal closes the connection, logs one line and counts
``edge_listener_refused_total{listener, reason}``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import trio

from edge import metrics
from edge.context import ConnInfo
from edge.errors import ClientError
from edge.http.proxy_protocol import ProxyHeaderReader, ProxyProtocolError
from edge.tls import check_client_cert

log = logging.getLogger("edge.listener")

# long enough for a client on a slow mobile link, short enough that a peer that opens
# connections and never speaks TLS cannot pin many of them
TLS_HANDSHAKE_TIMEOUT = 10.0
_RECV = 4096

REFUSED = metrics.counter(
    "edge_listener_refused_total",
    "Connections refused during setup (PROXY protocol, source restriction, TLS)",
    ["listener", "reason"],
)

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConnectionRefused(ClientError):
    """Setup refused the connection; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PrefixedStream(trio.abc.Stream):
    """A stream that yields ``prefix`` before reading from ``inner``: the bytes read
    past a PROXY header belong to the TLS handshake or the first request."""

    def __init__(self, inner: trio.abc.Stream, prefix: bytes) -> None:
        self.inner = inner
        self.prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.prefix:
            await trio.lowlevel.checkpoint()
            data, self.prefix = self.prefix, b""
            return data
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Compiled:
    """A listener's settings turned into lookup-ready form, once per listener."""

    __slots__ = ("allow", "deny", "name", "pp_timeout", "pp_version", "tls", "trusted")

    def __init__(self, lconf: Any) -> None:
        self.name = lconf.address
        self.pp_version = {"v1": 1, "v2": 2}.get(lconf.proxy_protocol)
        self.pp_timeout = float(lconf.proxy_protocol_timeout)
        self.trusted = _nets(lconf.trusted_proxies)
        restriction = getattr(lconf, "ip_restriction", None)
        self.allow = _nets(restriction.whitelist) if restriction and restriction.whitelist else None
        self.deny = _nets(restriction.blacklist) if restriction and restriction.blacklist else None
        self.tls = bool(lconf.tls)


def _nets(cidrs: list[str]) -> tuple[Net, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _in(addr: str, nets: tuple[Net, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in nets)


def needs_setup(lconf: Any) -> bool:
    restriction = getattr(lconf, "ip_restriction", None)
    return bool(lconf.tls or lconf.proxy_protocol != "off" or restriction)


class ConnSetup:
    """The ``WorkerState.conn_setup`` hook: ``await setup(stream, info, lconf)`` returns
    the stream to speak HTTP on and the bytes already read from it."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self._compiled: dict[int, _Compiled] = {}

    async def __call__(
        self, stream: trio.abc.Stream, info: ConnInfo, lconf: Any
    ) -> tuple[trio.abc.Stream, bytes]:
        if lconf is None:
            return stream, b""
        c = self._compiled.get(id(lconf))
        if c is None:
            c = self._compiled[id(lconf)] = _Compiled(lconf)
        try:
            initial = b""
            if c.pp_version is not None:
                initial = await self._proxy_header(stream, info, c)
            if (c.allow is not None and not _in(info.client_addr, c.allow)) or (
                c.deny is not None and _in(info.client_addr, c.deny)
            ):
                raise ConnectionRefused(
                    "source_not_allowed", f"source {info.client_addr} not allowed on listener"
                )
            if c.tls:
                return await self._tls(PrefixedStream(stream, initial), info, c), b""
            return stream, initial
        except ConnectionRefused as e:
            REFUSED.labels(listener=c.name, reason=e.reason).inc()
            log.warning(
                "refused connection from %s:%s on %s: %s",
                info.peer_addr,
                info.peer_port,
                c.name,
                e,
            )
            raise

    async def _proxy_header(self, stream: trio.abc.Stream, info: ConnInfo, c: _Compiled) -> bytes:
        if not _in(info.peer_addr, c.trusted):
            raise ConnectionRefused("untrusted_proxy", "peer is not in trusted_proxies")
        reader = ProxyHeaderReader(c.pp_version or 1)
        with trio.move_on_after(c.pp_timeout):
            while True:
                try:
                    got = reader.feed(await stream.receive_some(_RECV))
                except ProxyProtocolError as e:
                    raise ConnectionRefused("proxy_protocol_malformed", str(e)) from None
                if got is not None:
                    header, rest = got
                    if header.proxied:
                        info.client_addr, info.client_port = header.src_addr, header.src_port
                        info.server_addr, info.server_port = header.dst_addr, header.dst_port
                    info.proxy_tlvs = header.tlvs
                    return rest
        raise ConnectionRefused("proxy_protocol_timeout", "no complete PROXY header in time")

    async def _tls(
        self, stream: trio.abc.Stream, info: ConnInfo, c: _Compiled
    ) -> trio.SSLStream[trio.abc.Stream]:
        table = getattr(self.worker.snapshot, "tls", None)
        if table is None:
            raise ConnectionRefused("tls_no_certificates", "TLS listener, but no ssls configured")
        tls = trio.SSLStream(stream, table.base, server_side=True, https_compatible=True)
        with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT) as scope:
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as e:
                reason = getattr(e.__cause__, "reason", None)
                if reason == "CALLBACK_FAILED":  # our only callback is the SNI lookup
                    raise ConnectionRefused(
                        "tls_unknown_sni",
                        "TLS handshake failed: no certificate for the requested SNI",
                    ) from None
                raise ConnectionRefused(
                    "tls_handshake", f"TLS handshake failed: {reason}"
                ) from None
        if scope.cancelled_caught:
            raise ConnectionRefused("tls_handshake_timeout", "TLS handshake timed out")
        info.tls = True
        ssl_object = tls._ssl_object  # trio forwards no custom attributes (the SNI we kept)
        info.sni = getattr(ssl_object, "edge_sni", None)
        ok, subject = check_client_cert(table, ssl_object)
        if not ok:
            body = b'{"error_msg":"a valid client certificate is required"}'
            head = (
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            with trio.move_on_after(1):
                await tls.send_all(head + body)
            raise ConnectionRefused("tls_client_certificate", "client certificate missing/invalid")
        info.mtls = subject is not None
        info.client_cert_subject = subject
        return tls
