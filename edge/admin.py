"""The admin listener's protocol, sans-IO: request heads in, endpoint names and bytes out.

The admin listener answers load-balancer health checks and operators, not the
internet: one small GET per connection, answered and closed. That keeps it simple and
bounded (a head of at most ``MAX_HEAD`` bytes, no bodies, no keep-alive). The
supervisor's trio loop feeds bytes here and writes what comes back.

Endpoints: ``/healthz`` (the process is alive), ``/readyz`` (200 only when a valid
configuration is loaded and every worker reported ready, else 503 with the reason),
``/status`` (JSON document), ``/metrics`` (Prometheus text, all workers summed).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import msgspec

# a health checker's request is ~100 bytes; a browser's with cookies a few KiB
MAX_HEAD = 8 * 1024
# the whole head must arrive within this, so a silent peer cannot hold a slot
HEAD_TIMEOUT = 5.0

ENDPOINTS = {
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/status": "status",
    "/metrics": "metrics",
}

JSON = "application/json"
_encoder = msgspec.json.Encoder(order="deterministic")


class AdminProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class AdminRequest:
    method: str
    path: str
    query: str


def parse_head(buf: bytes) -> AdminRequest | None:
    """The request in ``buf``, ``None`` while the head is incomplete.

    Only the request line matters: headers are skipped (never echoed or logged).
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise AdminProtocolError(431, "request head too large")
        return None
    if end > MAX_HEAD:
        raise AdminProtocolError(431, "request head too large")
    line, _, _ = buf[:end].partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise AdminProtocolError(400, "bad request line")
    try:
        method = parts[0].decode("ascii")
        target = parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AdminProtocolError(400, "bad request line") from None
    if not method.isalpha() or not target.startswith("/"):
        raise AdminProtocolError(400, "bad request line")
    path, _, query = target.partition("?")
    return AdminRequest(method, path, query)


def resolve(req: AdminRequest) -> str:
    """The endpoint name for ``req``; AdminProtocolError(404/405) otherwise."""
    name = ENDPOINTS.get(req.path.rstrip("/") or req.path)
    if name is None:
        raise AdminProtocolError(404, "not found")
    if req.method not in ("GET", "HEAD"):
        raise AdminProtocolError(405, "method not allowed")
    return name


def json_body(doc: object) -> bytes:
    return _encoder.encode(doc) + b"\n"


def error_body(message: str) -> bytes:
    return json_body({"error_msg": message})


def build_response(status: int, body: bytes, content_type: str = JSON, *, head: bool) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:
        lines.append("Allow: GET, HEAD")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return out if head else out + body
