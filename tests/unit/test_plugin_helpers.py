"""The shared pieces: consumer attachment, credential hiding, variables, replies."""

import pytest

from edge.plugins import _auth, _reply, _vars
from edge.plugins.base import PluginConfigError
from tests.support.plugins import Consumer, env, request


def test_attach_consumer_replaces_spoofed_headers() -> None:
    req = request(headers=[("X-Consumer-Username", "root"), ("X-Consumer-Custom-ID", "0")])
    c = Consumer("jack", custom_id="c7")
    c.credential_id = "cred-1"  # type: ignore[attr-defined]
    _auth.attach_consumer(req, c)
    assert req.consumer is c
    assert req.headers.get_all("x-consumer-username") == ["jack"]
    assert req.headers.get_all("x-consumer-custom-id") == ["c7"]
    assert req.headers.get("x-credential-identifier") == "cred-1"
    req = request(headers=[("X-Consumer-Custom-ID", "spoof")])
    _auth.attach_consumer(req, Consumer("rose"))
    assert "x-consumer-custom-id" not in req.headers


def test_strip_query_arg_and_cookie() -> None:
    req = request(uri="/p?a=1&apikey=s&b=&apikey=t")
    _auth.strip_query_arg(req, "apikey")
    assert req.uri == "/p?a=1&b=" and req.args == {"a": "1", "b": ""}
    req = request(uri="/p?apikey=s")
    _auth.strip_query_arg(req, "apikey")
    assert req.uri == "/p"
    req = request(headers=[("Cookie", "a=1; jwt=x"), ("Cookie", "jwt=y; b=2")])
    _auth.strip_cookie(req, "jwt")
    assert req.headers.get_all("cookie") == ["a=1; b=2"] and req.cookies == {"a": "1", "b": "2"}
    req = request(headers=[("Cookie", "jwt=x")])
    _auth.strip_cookie(req, "jwt")
    assert "cookie" not in req.headers


def test_anonymous() -> None:
    e = env()
    e.consumers["anon"] = Consumer("anon")
    failure = _reply.message(401, "no")
    req = request()
    assert _auth.Anonymous(None, e).fallback(req, failure) is failure
    assert _auth.Anonymous("anon", e).fallback(req, failure) is None
    assert req.consumer.username == "anon"
    r = _auth.Anonymous("ghost", e).fallback(request(), failure)
    assert r.status == 401 and r.body == b'{"message":"Invalid user authorization"}'


def test_consumer_problems_report_all() -> None:
    def add(consumer: Consumer, conf: str) -> None:
        if conf == "bad":
            raise PluginConfigError("secret", f"consumer {consumer.username}: bad")

    _auth.index_all("x", [(Consumer("a"), "ok")], add)
    with pytest.raises(_auth.ConsumerProblems) as one:
        _auth.index_all("x", [(Consumer("a"), "bad")], add)
    assert (one.value.field, one.value.message) == ("secret", "consumer a: bad")
    with pytest.raises(_auth.ConsumerProblems) as two:
        _auth.index_all("x", [(Consumer("a"), "bad"), (Consumer("b"), "bad")], add)
    assert two.value.field == "" and "consumer a" in two.value.message
    assert "consumer b" in two.value.message and len(two.value.problems) == 2


def test_vars_errors_name_the_field() -> None:
    with pytest.raises(PluginConfigError) as e:
        _vars.compile_var("nope", "key")
    assert e.value.field == "key"
    with pytest.raises(PluginConfigError) as e:
        _vars.compile_template("/$nope", "uri")
    assert e.value.field == "uri"
    with pytest.raises(PluginConfigError) as e:
        _vars.compile_expr([["arg_a", "==", "1"], ["arg_b", "~~", "("]], "vars")
    assert e.value.field == "vars[1]"
    assert _vars.compile_template("$arg_a-x")(request(uri="/?a=1")) == "1-x"
