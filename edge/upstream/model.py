"""A compiled upstream: nodes, resolved defaults and its balancer (pure data, no IO).

Built once per snapshot from an ``UpstreamSpec`` by ``compile_upstream``; the proxy
reads attributes only. Defaults are resolved here (ports by scheme, retries = nodes-1,
timeouts 60 s) so nothing on the hot path checks for ``None``.

A client certificate (``tls.client_cert`` / ``tls.client_key``) is turned into the
upstream's own ``ssl.SSLContext`` here, once per compile: the key's secret reference is
resolved on this node and the chain loaded (``edge.tls.load_chain``), so no request ever
touches the key material or the disk.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from edge import secrets
from edge.config.model import Checks, KeepalivePool, NodeSpec, Timeout, UpstreamSpec, UpstreamTLS
from edge.errors import ConfigError
from edge.tls import TlsConfigError, load_chain

if TYPE_CHECKING:
    from edge.upstream.balancer import Balancer

DEFAULT_PORTS = {"http": 80, "https": 443}


class Node:
    """One upstream server. ``key`` ("host:port") names it in logs, metrics, health."""

    __slots__ = ("host", "port", "weight", "priority", "key", "addr", "metadata")

    def __init__(
        self,
        host: str,
        port: int,
        weight: int = 1,
        priority: int = 0,
        metadata: dict[str, object] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.weight = weight
        self.priority = priority
        self.metadata = metadata or {}
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        self.addr = (bare, port)
        self.key = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"

    def __repr__(self) -> str:
        return f"Node({self.key}, weight={self.weight}, priority={self.priority})"


class UpstreamTlsError(TlsConfigError):
    """A bad ``tls`` block; ``field`` is relative to the upstream (``tls.client_key``),
    which the snapshot compiler appends to the upstream's path."""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class TLSSettings:
    """``context`` is the upstream's own client context when it presents a client
    certificate, else None (the worker's shared context for ``verify`` is used)."""

    __slots__ = ("verify", "sni", "client_cert", "client_key", "context")

    def __init__(
        self,
        verify: bool = True,
        sni: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.verify = verify
        self.sni = sni
        # the certificate (public) names the client identity in the pool key; the key
        # field keeps only the secret *reference*, never the resolved key
        self.client_cert = client_cert
        self.client_key = client_key
        self.context = context


def client_context(tls: UpstreamTLS) -> ssl.SSLContext | None:
    """The client-certificate context for ``tls``, or None when it presents none.

    Raises UpstreamTlsError naming ``tls.client_cert`` / ``tls.client_key``.
    """
    if tls.client_cert is None and tls.client_key is None:
        return None
    if not tls.client_cert:
        raise UpstreamTlsError("tls.client_cert", "required with tls.client_key")
    if not tls.client_key:
        raise UpstreamTlsError("tls.client_key", "required with tls.client_cert")
    try:
        key_pem = secrets.resolve(tls.client_key, "tls.client_key")
    except ConfigError as e:
        field, message = e.problems[0] if e.problems else ("tls.client_key", str(e))
        raise UpstreamTlsError(field or "tls.client_key", message) from None
    # create_default_context honours SSL_CERT_FILE / SSL_CERT_DIR, like the shared one
    ctx = ssl.create_default_context()
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        load_chain(ctx, tls.client_cert, key_pem, "tls.client_cert")
    except TlsConfigError as e:
        raise UpstreamTlsError(e.field, e.message) from None
    return ctx


class Upstream:
    """Everything the proxy needs to send a request to one upstream."""

    __slots__ = (
        "id",
        "name",
        "scheme",
        "pass_host",
        "upstream_host",
        "retries",
        "retry_timeout",
        "timeouts",
        "keepalive",
        "tls",
        "checks",
        "nodes",
        "balancer",
        "spec",
    )

    def __init__(self, spec: UpstreamSpec, upstream_id: str, nodes: list[Node]) -> None:
        from edge.upstream.balancer import make_balancer

        self.spec = spec
        self.id = upstream_id
        self.name = spec.name or upstream_id
        self.scheme = spec.scheme
        self.pass_host = spec.pass_host
        self.upstream_host = spec.upstream_host
        self.nodes = nodes
        # APISIX: unset retries means "every other node once"
        self.retries = spec.retries if spec.retries is not None else max(len(nodes) - 1, 0)
        # 0 / unset: retries are bounded only by ``retries``
        self.retry_timeout = spec.retry_timeout or None
        t = spec.timeout or Timeout()
        self.timeouts: tuple[float, float, float] = (t.connect, t.send, t.read)
        k: KeepalivePool = spec.keepalive_pool
        self.keepalive: tuple[int, float, int] = (k.size, k.idle_timeout, k.requests)
        tls = spec.tls
        self.tls = (
            TLSSettings(tls.verify, tls.sni, tls.client_cert, tls.client_key, client_context(tls))
            if tls is not None
            else TLSSettings()
        )
        self.checks: Checks | None = spec.checks
        self.balancer: Balancer = make_balancer(spec, nodes)

    def node(self, key: str) -> Node | None:
        for n in self.nodes:
            if n.key == key:
                return n
        return None

    def __repr__(self) -> str:
        return f"Upstream({self.id!r}, {self.spec.type}, {[n.key for n in self.nodes]})"


def parse_node_key(text: str, scheme: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[v6]:port"`` / ``"host"`` -> (host, port); raises ValueError."""
    default = DEFAULT_PORTS[scheme]
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad node address '{text}'")
        host, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return host, default
        if not rest.startswith(":"):
            raise ValueError(f"bad node address '{text}'")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        # a bare IPv6 address without brackets has no port
        return f"[{text}]", default
    else:
        return text, default
    if not port_text.isdigit():
        raise ValueError(f"bad port in node address '{text}'")
    return host, int(port_text)


def node_specs(spec: UpstreamSpec) -> list[NodeSpec]:
    """The nodes of either APISIX form as a list of ``NodeSpec`` (ports resolved).

    Raises ValueError for a malformed ``"host:port"`` key.
    """
    if isinstance(spec.nodes, dict):
        out = []
        for key, weight in spec.nodes.items():
            host, port = parse_node_key(key, spec.scheme)
            out.append(NodeSpec(host=host, port=port, weight=weight))
        return out
    return [
        n
        if n.port is not None
        else NodeSpec(
            host=n.host,
            port=DEFAULT_PORTS[spec.scheme],
            weight=n.weight,
            priority=n.priority,
            metadata=n.metadata,
        )
        for n in spec.nodes
    ]


def compile_upstream(spec: UpstreamSpec, upstream_id: str) -> Upstream:
    """Build the runtime upstream; the spec must have passed validation.

    Raises ValueError (``UpstreamTlsError`` for the client certificate) on bad input.
    """
    nodes = [
        Node(n.host, n.port or DEFAULT_PORTS[spec.scheme], n.weight, n.priority, n.metadata)
        for n in node_specs(spec)
    ]
    return Upstream(spec, upstream_id, nodes)
