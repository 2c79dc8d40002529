"""The request head edge sends upstream (sans-IO): hop-by-hop removal, Host per
``pass_host``, the X-Forwarded-* family and X-Real-IP, body framing headers.

X-Forwarded-For is appended to (the client's own value is kept, edge adds the peer it
sees, which PROXY protocol may have replaced with the real client). X-Forwarded-Proto,
-Host, -Port and X-Real-IP are set by edge, replacing anything the client sent: they
describe the hop edge terminates, and a client must not be able to forge them.
"""

from __future__ import annotations

from typing import Any

from edge.context import Request
from edge.http.writer import HOP_BY_HOP

# fields edge drops from the client's request and sets itself (or never forwards)
_REPLACED = HOP_BY_HOP | {
    "host",
    "content-length",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
}

DEFAULT_PORTS = {"http": 80, "https": 443}


def upstream_host(req: Request, upstream: Any, node: Any) -> str:
    """The Host header for the upstream request per ``pass_host``."""
    mode = upstream.pass_host
    if mode == "pass":
        return req.headers.get("host") or node.host
    if mode == "rewrite" and upstream.upstream_host:
        return upstream.upstream_host
    if node.port == DEFAULT_PORTS.get(upstream.scheme):
        return node.host
    return f"{node.host}:{node.port}"


def upstream_headers(
    req: Request, host: str, content_length: int | None, chunked: bool
) -> list[list[str]]:
    """``[lower, name, value]`` entries for the upstream request head."""
    out: list[list[str]] = []
    xff: list[str] = []
    drop = _REPLACED
    items = req.headers.raw()
    for e in items:
        if e[0] == "connection":
            # the fields Connection names are hop-by-hop too
            drop = set(_REPLACED)
            for tok in e[2].split(","):
                drop.add(tok.strip().lower())
            drop.discard("")
    for e in items:
        ln = e[0]
        if ln in drop or ln.startswith("proxy-"):
            if ln == "x-forwarded-for":
                xff.append(e[2])
            continue
        out.append(e)
    client = req.client_addr
    xff.append(client)
    out.append(["host", "Host", host])
    out.append(["x-forwarded-for", "X-Forwarded-For", ", ".join(xff)])
    out.append(["x-forwarded-proto", "X-Forwarded-Proto", req.scheme])
    out.append(["x-forwarded-host", "X-Forwarded-Host", req.headers.get("host") or req.host])
    out.append(["x-forwarded-port", "X-Forwarded-Port", str(req.conn.server_port)])
    out.append(["x-real-ip", "X-Real-IP", client])
    if chunked:
        out.append(["transfer-encoding", "Transfer-Encoding", "chunked"])
    elif content_length is not None and (content_length or req.method in _BODY_METHODS):
        out.append(["content-length", "Content-Length", str(content_length)])
    return out


# methods whose empty body is still announced with Content-Length: 0 (as nginx does)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
