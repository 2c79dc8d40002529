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
from edge.http.writer import HOP_BY_HOP, HeadWriteError, finish_head

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


def upstream_head(req: Request, host: str, content_length: int | None, chunked: bool) -> bytes:
    """The request head for the upstream, as bytes. Raises ``HeadWriteError`` if a
    plugin left something unwritable in it (a CR/LF, a non-latin-1 character)."""
    target = req.uri
    if not target or " " in target:
        raise HeadWriteError("invalid request target")
    items = req.headers.raw()
    drop: set[str] | frozenset[str] = _REPLACED
    for e in items:
        if e[0] == "connection":
            # the fields Connection names are hop-by-hop too
            named = set(_REPLACED)
            for tok in e[2].split(","):
                named.add(tok.strip().lower())
            named.discard("")
            drop = named
    xff = ""
    parts = [f"{req.method} {target} HTTP/1.1\r\n"]
    for e in items:
        ln = e[0]
        if ln in drop or ln.startswith("proxy-"):
            if ln == "x-forwarded-for":
                xff = f"{xff}{e[2]}, "
            continue
        parts.append(f"{e[1]}: {e[2]}\r\n")
    client = req.client_addr
    parts.append(
        f"Host: {host}\r\nX-Forwarded-For: {xff}{client}\r\n"
        f"X-Forwarded-Proto: {req.scheme}\r\n"
        f"X-Forwarded-Host: {req.headers.get('host') or req.host}\r\n"
        f"X-Forwarded-Port: {req.conn.server_port}\r\nX-Real-IP: {client}\r\n"
    )
    lines = len(parts) + 6
    if chunked:
        parts.append("Transfer-Encoding: chunked\r\n")
        lines += 1
    elif content_length is not None and (content_length or req.method in _BODY_METHODS):
        parts.append(f"Content-Length: {content_length}\r\n")
        lines += 1
    parts.append("\r\n")
    return finish_head("".join(parts), lines)


# methods whose empty body is still announced with Content-Length: 0 (as nginx does)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
