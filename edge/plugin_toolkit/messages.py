"""Reading the request and the canned upstream response `edge plugin test` runs with.

Either form is accepted in a file: a JSON object
(``{"method", "path", "headers": {..} or [[k, v], ..], "body"}`` for a request,
``{"status", "headers", "body"}`` for a response; ``body_base64`` for binary), or a raw
HTTP/1.1 message (``GET /p HTTP/1.1`` / ``HTTP/1.1 200 OK``, headers, blank line, body).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any


class MessageError(Exception):
    """The file is neither a valid JSON message nor a raw HTTP message (says where)."""


@dataclass
class RequestSpec:
    method: str = "GET"
    path: str = "/"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class ResponseSpec:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _headers(value: object, where: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for i, pair in enumerate(value):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise MessageError(f"{where}.headers[{i}]: expected [name, value]")
            items.append((pair[0], pair[1]))
    else:
        raise MessageError(f"{where}.headers: expected an object or a list of [name, value]")
    out = []
    for k, v in items:
        if not isinstance(k, str) or not isinstance(v, str | int):
            raise MessageError(f"{where}.headers: names and values must be strings")
        out.append((k, str(v)))
    return out


def _body(obj: dict, where: str) -> bytes:
    if "body_base64" in obj:
        try:
            return base64.b64decode(obj["body_base64"], validate=True)
        except (ValueError, TypeError) as e:
            raise MessageError(f"{where}.body_base64: not base64 ({e})") from None
    body = obj.get("body", "")
    if isinstance(body, dict | list):
        return json.dumps(body).encode()
    if not isinstance(body, str):
        raise MessageError(f"{where}.body: expected a string, object or list")
    return body.encode()


def _raw(data: bytes, where: str) -> tuple[str, list[tuple[str, str]], bytes]:
    head, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    headers = []
    for n, line in enumerate(lines[1:], start=2):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MessageError(f"{where}: line {n}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, body if sep else b""


def _json(text: bytes, where: str) -> dict[str, Any]:
    """A message given as a JSON object rather than in HTTP form."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise MessageError(f"{where}: invalid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise MessageError(f"{where}: expected a JSON object")
    return obj


def parse_request(data: bytes, where: str) -> RequestSpec:
    text = data.lstrip()
    if text.startswith(b"{"):
        obj = _json(text, where)
        return RequestSpec(
            method=str(obj.get("method", "GET")).upper(),
            path=str(obj.get("path", "/")),
            headers=_headers(obj.get("headers"), where),
            body=_body(obj, where),
        )
    first, headers, body = _raw(text, where)
    parts = first.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise MessageError(f"{where}: line 1: expected 'METHOD /path HTTP/1.1'")
    return RequestSpec(method=parts[0].upper(), path=parts[1], headers=headers, body=body)


def parse_response(data: bytes, where: str) -> ResponseSpec:
    text = data.lstrip()
    if text.startswith(b"{"):
        obj = _json(text, where)
        status = obj.get("status", 200)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise MessageError(f"{where}.status: expected an HTTP status code")
        return ResponseSpec(
            status=status, headers=_headers(obj.get("headers"), where), body=_body(obj, where)
        )
    first, headers, body = _raw(text, where)
    parts = first.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise MessageError(f"{where}: line 1: expected 'HTTP/1.1 200 OK'")
    return ResponseSpec(status=int(parts[1]), headers=headers, body=body)
