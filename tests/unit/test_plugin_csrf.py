import base64
import json
import time

from edge.plugins.csrf import Csrf, lua_num, sign
from tests.support.plugins import build, config_error, json_body, request, upstream_response


def token_from_cookie(p: Csrf) -> str:
    req = request()
    resp = upstream_response()
    p.header_filter(req, resp)
    cookie = resp.headers.get("set-cookie")
    name, _, rest = cookie.partition("=")
    assert name == "apisix-csrf-token"
    value, _, attrs = rest.partition(";")
    assert attrs.startswith("path=/;SameSite=Lax;Expires=") and attrs.endswith("GMT")
    return value


def post(p: Csrf, header: str | None, cookie: str | None):
    h = {}
    if header is not None:
        h["apisix-csrf-token"] = header
    if cookie is not None:
        h["Cookie"] = f"apisix-csrf-token={cookie}"
    return p.access(request("POST", headers=h))


def test_double_submit() -> None:
    p = build(Csrf, {"key": "userkey"})
    tok = token_from_cookie(p)
    assert post(p, tok, tok) is None
    for method in ("GET", "HEAD", "OPTIONS"):
        assert p.access(request(method)) is None


def test_rejections() -> None:
    p = build(Csrf, {"key": "userkey"})
    tok = token_from_cookie(p)
    cases = [
        ((None, tok), "no csrf token in headers"),
        (("", tok), "no csrf token in headers"),
        ((tok, None), "no csrf cookie"),
        ((tok, tok + "x"), "csrf token mismatch"),
        (("garbage", "garbage"), "Failed to verify the csrf token signature"),
    ]
    for (h, c), msg in cases:
        r = post(p, h, c)
        assert r.status == 401 and json_body(r) == {"error_msg": msg}
    other = build(Csrf, {"key": "another-key"})
    forged = token_from_cookie(other)
    assert json_body(post(p, forged, forged))["error_msg"].startswith("Failed")


def test_expiry_and_apisix_token_format() -> None:
    p = build(Csrf, {"key": "k", "expires": 100})
    old = int(time.time()) - 200
    t = {"random": 0.84018771676347, "expires": old, "sign": sign(0.84018771676347, old, "k")}
    tok = base64.b64encode(json.dumps(t).encode()).decode()
    assert post(p, tok, tok).status == 401
    fresh = int(time.time())
    t = {"random": 0.84018771676347, "expires": fresh, "sign": sign(0.84018771676347, fresh, "k")}
    tok = base64.b64encode(json.dumps(t).encode()).decode()
    assert post(p, tok, tok) is None
    assert lua_num(0.84018771676347) == "0.84018771676347" and lua_num(1700000000) == "1700000000"


def test_custom_name_and_errors() -> None:
    p = build(Csrf, {"key": "k", "name": "xsrf"})
    req = request()
    resp = upstream_response()
    p.header_filter(req, resp)
    assert resp.headers.get("set-cookie").startswith("xsrf=")
    assert config_error(Csrf, {"key": ""}).startswith("key")
    assert config_error(Csrf, {"key": "k", "name": "a;b"}).startswith("name")
    assert config_error(Csrf, {}).startswith("schema")
