import pytest

from edge.plugins.hmac_auth import HmacAuth, parse_authorization
from tests.support.plugins import Consumer, build, config_error, env, json_body, request
from tests.support.plugins_hmac import authorization, digest, gmt_now

SECRET = "my-secret-key"


def plugin(conf: dict | None = None):
    alice = Consumer("alice")
    e = env({"hmac-auth": [(alice, {"key_id": "alice-key", "secret_key": SECRET})]})
    return build(HmacAuth, conf or {}, e), alice


def signed_request(
    method: str = "GET",
    uri: str = "/a?b=1",
    signed: tuple[str, ...] = ("@request-target", "date"),
    algorithm: str = "hmac-sha256",
    date: str | None = None,
    extra: dict | None = None,
    key_id: str = "alice-key",
    secret: str = SECRET,
    body: bytes | None = None,
):
    hdrs = {"Date": date or gmt_now(), "X-Custom": "v", **(extra or {})}
    hdrs["Authorization"] = authorization(
        key_id, secret, method, uri, hdrs, list(signed), algorithm
    )
    return request(method, uri, hdrs, body=body)


@pytest.mark.parametrize("alg", ["hmac-sha1", "hmac-sha256", "hmac-sha512"])
async def test_valid_signature(alg: str) -> None:
    p, alice = plugin()
    req = signed_request(algorithm=alg, signed=("@request-target", "date", "x-custom"))
    assert await p.rewrite(req) is None
    assert req.consumer is alice and req.headers.get("x-consumer-username") == "alice"


def fails(reason: str):
    async def check(p, req) -> None:
        r = await p.rewrite(req)
        assert r is not None and r.status == 401, reason
        assert json_body(r) == {"message": "client request can't be validated"}
        assert r.headers.get("www-authenticate") == 'hmac realm="hmac"'
        assert req.plugin_ctx["hmac_auth_error"] == reason

    return check


async def test_failure_reasons() -> None:
    p, _ = plugin()
    await fails("missing Authorization header")(p, request())
    await fails("Authorization header does not start with 'Signature '")(
        p, request(headers={"Authorization": "Basic abc"})
    )
    await fails("keyId or signature missing")(
        p, request(headers={"Authorization": 'Signature keyId="alice-key",algorithm="hmac-sha256"'})
    )
    await fails("malformed Authorization field")(
        p, request(headers={"Authorization": "Signature keyId=alice"})
    )
    await fails("Invalid keyId")(p, signed_request(key_id="nobody"))
    await fails("Invalid signature")(p, signed_request(secret="wrong"))
    await fails("Clock skew exceeded")(p, signed_request(date=gmt_now(-1000)))
    await fails("Invalid GMT format time")(p, signed_request(date="yesterday"))
    req = signed_request()
    req.headers.remove("date")
    await fails("Date header missing. failed to validate clock skew")(p, req)
    req = signed_request()
    req.headers.set(
        "Authorization", req.headers.get("authorization").replace('signature="', 'signature="!!')
    )
    await fails("Invalid signature")(p, req)
    req = signed_request()
    req.set_uri("/other")  # the request-target no longer matches what was signed
    await fails("Invalid signature")(p, req)
    await fails("Authorization header too long")(
        p, request(headers={"Authorization": "Signature " + "a" * 10000})
    )


async def test_allowed_algorithms_signed_headers_clock_skew_zero() -> None:
    p, _ = plugin({"allowed_algorithms": ["hmac-sha512"]})
    await fails("Invalid algorithm")(p, signed_request())
    p, _ = plugin({"signed_headers": ["x-custom"]})
    await fails('expected header "x-custom" missing in signing')(p, signed_request())
    assert await p.rewrite(signed_request(signed=("@request-target", "date", "x-custom"))) is None
    p, _ = plugin({"clock_skew": 0})
    assert await p.rewrite(signed_request(date=gmt_now(-100000))) is None


async def test_body_digest() -> None:
    p, _ = plugin({"validate_request_body": True, "max_req_body_size": 10})
    body = b"hello"
    assert (
        await p.rewrite(signed_request("POST", extra={"Digest": digest(body)}, body=body)) is None
    )
    await fails("Invalid digest")(
        p, signed_request("POST", extra={"Digest": digest(b"x")}, body=body)
    )
    await fails("Invalid digest")(p, signed_request("POST", body=body))
    big = b"y" * 11
    r = await p.rewrite(signed_request("POST", extra={"Digest": digest(big)}, body=big))
    assert r.status == 413


async def test_hide_credentials_and_anonymous() -> None:
    p, _ = plugin({"hide_credentials": True})
    req = signed_request()
    assert await p.rewrite(req) is None and "authorization" not in req.headers
    alice = Consumer("alice")
    e = env({"hmac-auth": [(alice, {"key_id": "k", "secret_key": "s"})]})
    e.consumers["anon"] = Consumer("anon")
    pa = build(HmacAuth, {"anonymous_consumer": "anon"}, e)
    req = request()
    assert await pa.rewrite(req) is None and req.consumer.username == "anon"


def test_parse_authorization() -> None:
    f = parse_authorization(
        'Signature keyId="a",algorithm="hmac-sha1",headers="x y",signature="c2ln"'
    )
    assert f == {"keyId": "a", "algorithm": "hmac-sha1", "headers": "x y", "signature": "c2ln"}


def test_config_errors() -> None:
    assert config_error(HmacAuth, {"allowed_algorithms": ["md5"]}).startswith(
        "allowed_algorithms[0]"
    )
    assert config_error(HmacAuth, {"clock_skew": -1}).startswith("clock_skew")
