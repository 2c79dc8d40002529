"""Serialize HTTP/1.1 heads and chunked framing; strip hop-by-hop headers (sans-IO).

Status lines are prebuilt per status code. A head is assembled as one ``str`` and
encoded once; a single count of line feeds then proves no header value smuggled a
CR/LF in (a plugin may have set it), which would otherwise split the message.
"""

from __future__ import annotations

from http import HTTPStatus

from edge.http.headers import Headers

# RFC 9110 7.6.1 and RFC 9112: meaningful for one connection only, never forwarded
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


_PLAIN_CONNECTION = frozenset({"keep-alive", "close"})


class HeadWriteError(ValueError):
    """A head could not be serialized (a CR/LF or non-latin-1 char in a field)."""


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_STATUS_LINES: dict[int, str] = {s: f"HTTP/1.1 {s} {_reason(s)}\r\n" for s in range(100, 600)}

CRLF = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def strip_hop_by_hop(headers: Headers) -> None:
    """Remove hop-by-hop fields, plus any field the Connection header names, in place."""
    items = headers.raw()
    drop: frozenset[str] | set[str] | None = None
    for e in items:
        ln = e[0]
        if ln in HOP_BY_HOP or ln.startswith("proxy-"):
            if drop is None:
                drop = HOP_BY_HOP
            if ln == "connection":
                v = e[2].lower()
                # "keep-alive" / "close" (nearly every response) name no other field
                if v not in _PLAIN_CONNECTION:
                    if drop is HOP_BY_HOP:
                        drop = set(HOP_BY_HOP)
                    for tok in v.split(","):
                        t = tok.strip()
                        if t:
                            drop.add(t)  # type: ignore[union-attr]
    if drop is not None:
        items[:] = [e for e in items if e[0] not in drop and not e[0].startswith("proxy-")]


def finish_head(head: str, nlines: int) -> bytes:
    """The head's bytes, after proving its ``nlines`` CRLFs are all ours."""
    # every line we wrote ends in CRLF; any extra LF or CR came from a field value
    if head.count("\n") != nlines or head.count("\r") != nlines:
        raise HeadWriteError("CR or LF inside a header field")
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError:
        raise HeadWriteError("header field is not latin-1") from None


def response_head(status: int, headers: Headers, reason: str = "") -> bytes:
    """``HTTP/1.1 <status> <reason>`` + fields + blank line."""
    line = _STATUS_LINES.get(status) if not reason else None
    if line is None:
        if not 100 <= status <= 999:
            raise HeadWriteError(f"invalid status {status}")
        line = f"HTTP/1.1 {status} {reason or _reason(status)}\r\n"
    items = headers.raw()
    parts = [line]
    for e in items:
        parts.append(f"{e[1]}: {e[2]}\r\n")
    parts.append("\r\n")
    return finish_head("".join(parts), len(items) + 2)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; never call with empty data (that ends the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)
