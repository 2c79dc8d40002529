from __future__ import annotations

import pytest

from edge.admin import (
    MAX_HEAD,
    AdminProtocolError,
    AdminRequest,
    build_response,
    parse_head,
    resolve,
)

GOOD = b"GET /readyz HTTP/1.1\r\nHost: x\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n"


def test_whole_head() -> None:
    assert parse_head(GOOD) == AdminRequest("GET", "/readyz", "")


def test_byte_by_byte_is_incomplete_until_the_blank_line() -> None:
    for i in range(len(GOOD)):
        assert parse_head(GOOD[:i]) is None
    assert parse_head(GOOD) == AdminRequest("GET", "/readyz", "")


def test_trailing_data_ignored_and_query_split() -> None:
    req = parse_head(b"HEAD /status?verbose=1 HTTP/1.0\r\n\r\nGARBAGE")
    assert req == AdminRequest("HEAD", "/status", "verbose=1")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /readyz\r\n\r\n", 400),
        (b"GET readyz HTTP/1.1\r\n\r\n", 400),
        (b"GET /readyz SPDY/3\r\n\r\n", 400),
        (b"G\xffT /readyz HTTP/1.1\r\n\r\n", 400),
        (b"GET  /readyz HTTP/1.1\r\n\r\n", 400),
        (b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\n\r\n", 431),
        (b"GET /" + b"a" * (MAX_HEAD + 10), 431),
    ],
)
def test_bad_heads(head: bytes, status: int) -> None:
    with pytest.raises(AdminProtocolError) as info:
        parse_head(head)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/healthz", "healthz"),
        ("GET", "/readyz/", "readyz"),
        ("HEAD", "/status", "status"),
        ("GET", "/metrics", "metrics"),
    ],
)
def test_resolve(method: str, path: str, expected: str) -> None:
    assert resolve(AdminRequest(method, path, "")) == expected


def test_resolve_errors() -> None:
    with pytest.raises(AdminProtocolError) as info:
        resolve(AdminRequest("GET", "/admin/secret", ""))
    assert info.value.status == 404
    with pytest.raises(AdminProtocolError) as info:
        resolve(AdminRequest("POST", "/readyz", ""))
    assert info.value.status == 405


def test_response_bytes() -> None:
    out = build_response(503, b'{"ready":false}\n', head=False)
    assert out == (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: 16\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        b'{"ready":false}\n'
    )
    head = build_response(405, b"xx", head=True)
    assert head.endswith(b"Allow: GET, HEAD\r\n\r\n") and b"Content-Length: 2" in head
