import re

from edge.plugins.request_id import RequestId
from tests.support.plugins import build, config_error, request, upstream_response


def roundtrip(conf: dict, headers: dict | None = None):
    p = build(RequestId, conf)
    req = request(headers=headers or {})
    p.rewrite(req)
    resp = upstream_response()
    p.header_filter(req, resp)
    return req, resp


def test_uuid_default() -> None:
    req, resp = roundtrip({})
    rid = req.headers.get("x-request-id")
    assert re.fullmatch(r"[0-9a-f-]{36}", rid)
    assert resp.headers.get("x-request-id") == rid == req.request_id


def test_incoming_id_kept_and_not_in_response() -> None:
    req, resp = roundtrip({"include_in_response": False}, {"X-Request-Id": "abc"})
    assert req.headers.get("x-request-id") == "abc"
    assert "x-request-id" not in resp.headers
    req, _ = roundtrip({}, {"X-Request-Id": "a" * 1000})
    assert len(req.headers.get("x-request-id")) == 36


def test_nanoid_range_id_custom_header() -> None:
    req, resp = roundtrip({"algorithm": "nanoid", "header_name": "X-Trace"})
    assert re.fullmatch(r"[A-Za-z0-9_-]{21}", req.headers.get("x-trace"))
    assert resp.headers.get("x-trace") == req.headers.get("x-trace")
    req, _ = roundtrip({"algorithm": "range_id", "range_id": {"char_set": "abcdef", "length": 8}})
    assert re.fullmatch(r"[a-f]{8}", req.headers.get("x-request-id"))
    assert config_error(RequestId, {"algorithm": "snowflake"}).startswith("algorithm")
    assert config_error(RequestId, {"algorithm": "range_id", "range_id": {"length": 2}}).startswith(
        "range_id.length"
    )
