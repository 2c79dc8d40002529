from edge.plugins.key_auth import KeyAuth
from tests.support.plugins import Consumer, build, env, json_body, request


def plugin(conf: dict | None = None):
    jack = Consumer("jack", custom_id="cid-9")
    e = env({"key-auth": [(jack, {"key": "auth-one"}), (Consumer("rose"), {"key": "auth-two"})]})
    e.consumers["guest"] = Consumer("guest")
    return build(KeyAuth, conf or {}, e), jack


def test_header_and_query() -> None:
    p, jack = plugin()
    req = request(headers={"apikey": "auth-one"})
    assert p.rewrite(req) is None and req.consumer is jack
    assert req.headers.get("x-consumer-username") == "jack"
    assert req.headers.get("x-consumer-custom-id") == "cid-9"
    assert req.headers.get("apikey") == "auth-one"  # not hidden by default
    req = request(uri="/x?apikey=auth-two")
    assert p.rewrite(req) is None and req.consumer.username == "rose"


def test_missing_and_invalid() -> None:
    p, _ = plugin()
    r = p.rewrite(request())
    assert r.status == 401 and json_body(r) == {"message": "Missing API key in request"}
    assert r.headers.get("www-authenticate") == 'Key realm="key"'
    r = p.rewrite(request(headers={"apikey": "wrong"}))
    assert r.status == 401 and json_body(r) == {"message": "Invalid API key in request"}
    r = p.rewrite(request(headers={"apikey": "x" * 100000}))
    assert r.status == 401


def test_custom_names_hide_credentials_anonymous() -> None:
    p, _ = plugin({"header": "X-Key", "query": "k", "hide_credentials": True, "realm": "r"})
    req = request(headers={"X-Key": "auth-one"})
    assert p.rewrite(req) is None and "x-key" not in req.headers
    req = request(uri="/p?k=auth-one&z=1")
    assert p.rewrite(req) is None and req.uri == "/p?z=1"
    assert p.rewrite(request()).headers.get("www-authenticate") == 'Key realm="r"'
    pa, _ = plugin({"anonymous_consumer": "guest"})
    req = request(headers={"apikey": "bad"})
    assert pa.rewrite(req) is None and req.consumer.username == "guest"
