"""Local responses shaped like APISIX's (``{"message": ...}`` or ``{"error_msg": ...}``).

Bodies are rendered once per plugin instance where they do not depend on the request,
so ending a request costs a ``Headers`` object and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from edge.context import Response
from edge.http.headers import Headers


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def reply(
    status: int,
    body: bytes | None,
    extra: list[tuple[str, str]] | None = None,
    ct: str = "application/json",
) -> Response:
    """A local response with a pre-rendered body."""
    h = Headers()
    if body is not None:
        h.set("Content-Type", ct)
    if extra:
        for n, v in extra:
            h.add(n, v)
    return Response(status, h, body if body is not None else b"", local=True)


def message(status: int, msg: str, extra: list[tuple[str, str]] | None = None) -> Response:
    return reply(status, encode({"message": msg}), extra)


def error_msg(status: int, msg: str, extra: list[tuple[str, str]] | None = None) -> Response:
    return reply(status, encode({"error_msg": msg}), extra)
