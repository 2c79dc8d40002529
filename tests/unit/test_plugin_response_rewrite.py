import pytest

from edge.context import Response
from edge.http.headers import Headers
from edge.plugins.response_rewrite import ResponseRewrite
from tests.support.plugins import build, config_error, request


def run(conf: dict, chunks: list[bytes], status: int = 200, uri: str = "/", headers=None):
    p = build(ResponseRewrite, conf)
    req = request(uri=uri)
    resp = Response(status, Headers(headers or [("Content-Length", "5"), ("ETag", "x")]))
    p.header_filter(req, resp)
    out = b"".join(p.body_filter(req, resp, c, i == len(chunks) - 1) for i, c in enumerate(chunks))
    return resp, out


def test_status_body_headers() -> None:
    conf = {
        "status_code": 201,
        "body": "new",
        "headers": {"add": ["X-A: 1", "X-A: $remote_addr"], "set": {"X-S": "s"}, "remove": ["X-R"]},
    }
    resp, out = run(conf, [b"ab", b"cd", b"e"], headers=[("Content-Length", "5"), ("X-R", "1")])
    assert resp.status == 201 and out == b"new"
    assert resp.headers.get_all("x-a") == ["1", "127.0.0.1"] and resp.headers.get("x-s") == "s"
    assert "x-r" not in resp.headers and "content-length" not in resp.headers


def test_body_base64_and_flat_headers() -> None:
    resp, out = run({"body": "aGk=", "body_base64": True, "headers": {"X-F": "f"}}, [b"old"])
    assert out == b"hi" and resp.headers.get("x-f") == "f"


def test_filters_once_global_and_case() -> None:
    conf = {
        "filters": [
            {"regex": "foo", "replace": "bar"},
            {"regex": "X(\\d)", "replace": "y$1", "scope": "global", "options": "jio"},
        ]
    }
    resp, out = run(conf, [b"foo foo x1 ", b"X2"])
    assert out == b"bar foo y1 y2"
    assert "content-length" not in resp.headers and "etag" not in resp.headers


def test_vars_gate() -> None:
    conf = {"status_code": 403, "vars": [["arg_x", "==", "1"]]}
    resp, out = run(conf, [b"body"], uri="/?x=1")
    assert resp.status == 403 and out == b"body"
    resp, _ = run(conf, [b"body"], uri="/?x=2")
    assert resp.status == 200


def test_local_response_body_rewritten() -> None:
    p = build(ResponseRewrite, {"body": "custom"})
    req = request()
    resp = Response(401, Headers([("Content-Type", "application/json")]), b"{}", local=True)
    p.header_filter(req, resp)
    assert resp.body == b"custom"
    assert p.body_filter(req, resp, b"custom", True) == b"custom"


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"status_code": 600}, "status_code"),
        ({"body": "x", "filters": [{"regex": "a", "replace": "b"}]}, "filters"),
        ({"filters": [{"regex": "(", "replace": "b"}]}, "filters[0].regex"),
        ({"filters": [{"regex": "a", "replace": "b", "scope": "all"}]}, "filters[0].scope"),
        ({"body": "***", "body_base64": True}, "body"),
        ({"headers": {"add": ["novalue"]}}, "headers.add[0]"),
        ({"vars": [["arg_x", "~~", "("]]}, "vars"),
    ],
)
def test_config_errors(conf: dict, field: str) -> None:
    assert config_error(ResponseRewrite, conf).startswith(field)
