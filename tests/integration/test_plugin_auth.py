"""jwt-auth, hmac-auth, key-auth and the consumer headers through the real gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support import plugins_jwt as K
from tests.support.plugins import Gateway, start_gateway
from tests.support.plugins_hmac import authorization, digest, gmt_now

JWT_ALGS = ("HS256", "HS384", "HS512", *K.ASYMMETRIC)


def _consumers() -> list[dict]:
    out = [
        {
            "username": f"u_{alg.lower()}",
            "custom_id": f"cid-{alg.lower()}",
            "plugins": {"jwt-auth": K.consumer_cred(alg, f"key-{alg}")},
        }
        for alg in JWT_ALGS
    ]
    out[0]["plugins"]["jwt-auth"]["lifetime_grace_period"] = 0
    out += [
        {
            "username": "graceful",
            "plugins": {
                "jwt-auth": K.consumer_cred("HS512", "key-grace", lifetime_grace_period=120)
            },
        },
        {"username": "jack", "plugins": {"key-auth": {"key": "auth-one"}}},
        {"username": "rose", "plugins": {"key-auth": {"key": "auth-two"}}},
        {
            "username": "alice",
            "plugins": {"hmac-auth": {"key_id": "alice-key", "secret_key": "alice-secret"}},
        },
        {"username": "anon"},
    ]
    return out


ROUTES = [
    {"id": "jwt", "uri": "/jwt/*", "plugins": {"jwt-auth": {}}},
    {
        "id": "jwt-hide",
        "uri": "/jwt-hide/*",
        "plugins": {"jwt-auth": {"hide_credentials": True, "realm": "edge"}},
    },
    {
        "id": "jwt-anon",
        "uri": "/jwt-anon/*",
        "plugins": {"jwt-auth": {"anonymous_consumer": "anon"}},
    },
    {"id": "key", "uri": "/key/*", "plugins": {"key-auth": {}}},
    {
        "id": "key-hide",
        "uri": "/key-hide/*",
        "plugins": {"key-auth": {"header": "X-Key", "query": "k", "hide_credentials": True}},
    },
    {"id": "hmac", "uri": "/hmac/*", "plugins": {"hmac-auth": {}}},
    {
        "id": "hmac-body",
        "uri": "/hmac-body/*",
        "plugins": {
            "hmac-auth": {
                "validate_request_body": True,
                "max_req_body_size": 64,
                "signed_headers": ["date"],
                "hide_credentials": True,
            }
        },
    },
    {
        "id": "restricted",
        "uri": "/restricted/*",
        "plugins": {"key-auth": {}, "consumer-restriction": {"whitelist": ["jack"]}},
    },
    {
        "id": "by-method",
        "uri": "/by-method/*",
        "plugins": {
            "key-auth": {},
            "consumer-restriction": {
                "allowed_by_methods": [{"user": "jack", "methods": ["GET"]}],
                "rejected_code": 405,
                "rejected_msg": "method not allowed for you",
            },
        },
    },
]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    yield from start_gateway(ROUTES, consumers=_consumers())


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.mark.parametrize("alg", JWT_ALGS)
@pytest.mark.parametrize("signer", [K.sign_pyjwt, K.sign_raw], ids=["pyjwt", "cryptography"])
def test_jwt_every_algorithm(gw: Gateway, alg: str, signer) -> None:
    tok = signer(alg, {"key": f"key-{alg}", "exp": int(time.time()) + 300})
    r = gw.get("/jwt/a", headers=bearer(tok))
    assert r.status_code == 200, r.text
    up = gw.upstream_headers(r)
    assert up["x-consumer-username"] == [f"u_{alg.lower()}"]
    assert up["x-consumer-custom-id"] == [f"cid-{alg.lower()}"]
    assert up["x-credential-identifier"] == [f"u_{alg.lower()}/jwt-auth"]
    assert up["authorization"] == [f"Bearer {tok}"]  # kept without hide_credentials


def test_jwt_failures(gw: Gateway) -> None:
    now = int(time.time())
    cases = [
        ({}, "Missing JWT token in request"),
        (bearer("not-a-jwt"), "JWT token invalid"),
        (bearer("e30.e30.%%%"), "JWT token invalid"),
        (bearer(K.sign_pyjwt("HS256", {"sub": "x"})), "missing user key in JWT token"),
        (bearer(K.sign_pyjwt("HS256", {"key": "nobody"})), "Invalid user key in JWT token"),
        (
            bearer(K.sign_pyjwt("HS256", {"key": "key-HS256", "exp": now - 5})),
            "failed to verify jwt",
        ),
        (
            bearer(K.sign_pyjwt("HS256", {"key": "key-HS256", "nbf": now + 300})),
            "failed to verify jwt",
        ),
        # algorithm confusion: HS256 keyed with the consumer's RSA public key
        (
            bearer(K.sign_hs_with(K.public_pem("RS256").encode(), {"key": "key-RS256"})),
            "failed to verify jwt",
        ),
        # the right key under another algorithm than the consumer's
        (
            bearer(K.sign_hs_with(K.HS_SECRET["HS256"].encode(), {"key": "key-HS256"}, "HS512")),
            "failed to verify jwt",
        ),
        ({"Authorization": "Bearer " + "A" * 6000}, "JWT token invalid"),
    ]
    for headers, message in cases:
        r = gw.get("/jwt/a", headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json() == {"message": message}
        assert r.headers["www-authenticate"] == 'Bearer realm="jwt"'


def test_jwt_grace_query_cookie_hide(gw: Gateway) -> None:
    expired = K.sign_raw("HS512", {"key": "key-grace", "exp": int(time.time()) - 30})
    assert gw.get("/jwt/g", headers=bearer(expired)).status_code == 200
    tok = K.sign_pyjwt("ES256", {"key": "key-ES256"})
    r = gw.get(f"/jwt-hide/q?jwt={tok}&keep=1")
    assert r.status_code == 200 and r.json()["path"] == "/jwt-hide/q?keep=1"
    r = gw.get("/jwt-hide/c", headers={"Cookie": f"jwt={tok}; other=1"})
    assert r.status_code == 200
    assert gw.upstream_headers(r)["cookie"] == ["other=1"]
    r = gw.get("/jwt-hide/h", headers=bearer(tok))
    assert "authorization" not in gw.upstream_headers(r)
    assert gw.get("/jwt-hide/h").headers["www-authenticate"] == 'Bearer realm="edge"'


def test_jwt_anonymous_and_spoofed_identity(gw: Gateway) -> None:
    r = gw.get(
        "/jwt-anon/x",
        headers={"X-Consumer-Username": "root", "X-Credential-Identifier": "root/jwt-auth"},
    )
    assert r.status_code == 200
    up = gw.upstream_headers(r)
    assert up["x-consumer-username"] == ["anon"]
    # the anonymous consumer matched no credential: none is claimed, and the spoof is gone
    assert "x-credential-identifier" not in up


def test_key_auth(gw: Gateway) -> None:
    r = gw.get("/key/a", headers={"apikey": "auth-one"})
    assert r.status_code == 200 and gw.upstream_headers(r)["x-consumer-username"] == ["jack"]
    assert gw.upstream_headers(r)["x-credential-identifier"] == ["jack/key-auth"]
    r = gw.get("/key/a?apikey=auth-two")
    assert gw.upstream_headers(r)["x-consumer-username"] == ["rose"]
    assert gw.upstream_headers(r)["x-credential-identifier"] == ["rose/key-auth"]
    r = gw.get("/key/a")
    assert r.status_code == 401 and r.json() == {"message": "Missing API key in request"}
    r = gw.get("/key/a", headers={"apikey": "wrong"})
    assert r.status_code == 401 and r.json() == {"message": "Invalid API key in request"}
    r = gw.get("/key-hide/a?k=auth-one&x=1")
    assert r.status_code == 200 and r.json()["path"] == "/key-hide/a?x=1"
    r = gw.get("/key-hide/a", headers={"X-Key": "auth-one"})
    assert "x-key" not in gw.upstream_headers(r)
    assert gw.get("/key-hide/a", headers={"apikey": "auth-one"}).status_code == 401


def hmac_headers(method: str, uri: str, secret: str = "alice-secret", **kw) -> dict[str, str]:
    signed = kw.pop("signed", ["@request-target", "date"])
    h = {"Date": kw.pop("date", gmt_now()), **kw.pop("extra", {})}
    h["Authorization"] = authorization("alice-key", secret, method, uri, h, signed, **kw)
    return h


@pytest.mark.parametrize("alg", ["hmac-sha1", "hmac-sha256", "hmac-sha512"])
def test_hmac_ok(gw: Gateway, alg: str) -> None:
    r = gw.get("/hmac/p?q=1", headers=hmac_headers("GET", "/hmac/p?q=1", algorithm=alg))
    assert r.status_code == 200, r.text
    assert gw.upstream_headers(r)["x-consumer-username"] == ["alice"]
    assert gw.upstream_headers(r)["x-credential-identifier"] == ["alice/hmac-auth"]


def test_hmac_failures(gw: Gateway) -> None:
    bad = [
        {},
        {"Authorization": "Signature garbage"},
        {"Authorization": 'Signature keyId="alice-key",algorithm="hmac-sha256"'},
        {"Authorization": "Signature " + "x" * 9000},
        hmac_headers("GET", "/hmac/p", secret="wrong"),
        hmac_headers("GET", "/hmac/other"),
        hmac_headers("GET", "/hmac/p", date=gmt_now(-3600)),
        hmac_headers("GET", "/hmac/p", date="not a date"),
    ]
    for h in bad:
        r = gw.get("/hmac/p", headers=h)
        assert r.status_code == 401, h
        assert r.json() == {"message": "client request can't be validated"}
        assert r.headers["www-authenticate"] == 'hmac realm="hmac"'


def test_hmac_body_digest(gw: Gateway) -> None:
    body = b'{"a":1}'
    h = hmac_headers("POST", "/hmac-body/x", extra={"Digest": digest(body)})
    r = gw.request("POST", "/hmac-body/x", headers=h, content=body)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == body.decode()
    assert "authorization" not in gw.upstream_headers(r)
    h = hmac_headers("POST", "/hmac-body/x", extra={"Digest": digest(b"other")})
    assert gw.request("POST", "/hmac-body/x", headers=h, content=body).status_code == 401
    big = b"z" * 65
    h = hmac_headers("POST", "/hmac-body/x", extra={"Digest": digest(big)})
    assert gw.request("POST", "/hmac-body/x", headers=h, content=big).status_code == 413
    # signed_headers: date must be among the signed headers
    h = hmac_headers(
        "POST", "/hmac-body/x", signed=["@request-target"], extra={"Digest": digest(body)}
    )
    assert gw.request("POST", "/hmac-body/x", headers=h, content=body).status_code == 401


def test_consumer_restriction(gw: Gateway) -> None:
    assert gw.get("/restricted/a", headers={"apikey": "auth-one"}).status_code == 200
    r = gw.get("/restricted/a", headers={"apikey": "auth-two"})
    assert r.status_code == 403 and r.json() == {"message": "The consumer_name is forbidden."}
    assert gw.get("/by-method/a", headers={"apikey": "auth-one"}).status_code == 200
    r = gw.request("DELETE", "/by-method/a", headers={"apikey": "auth-one"})
    assert r.status_code == 405 and r.json() == {"message": "method not allowed for you"}


def test_credentials_never_logged(gw: Gateway) -> None:
    secret_token = K.sign_pyjwt("HS256", {"key": "key-HS256"})
    gw.get("/jwt/a", headers=bearer(secret_token))
    gw.get("/jwt/a", headers=bearer(secret_token + "tampered"))
    gw.get("/key/a", headers={"apikey": "auth-one-wrong"})
    log = gw.edge.log()
    assert secret_token not in log and "auth-one-wrong" not in log and "alice-secret" not in log
