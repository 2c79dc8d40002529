import math
import time

import pytest

from edge.plugins.jwt_auth import JwtAuth
from tests.support import plugins_jwt as K
from tests.support.plugins import Consumer, build, config_error, env, json_body, request

ALL = ("HS256", "HS384", "HS512", *K.ASYMMETRIC)


def plugin(alg: str = "HS256", conf: dict | None = None, **cred: object):
    alice = Consumer("alice", custom_id="c-1")
    e = env({"jwt-auth": [(alice, K.consumer_cred(alg, "alice-key", **cred))]})
    return build(JwtAuth, conf or {}, e), alice


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + tok}


@pytest.mark.parametrize("alg", ALL)
@pytest.mark.parametrize("signer", [K.sign_pyjwt, K.sign_raw])
def test_every_algorithm_both_signers(alg: str, signer) -> None:
    p, alice = plugin(alg)
    tok = signer(alg, {"key": "alice-key", "exp": int(time.time()) + 60})
    req = request(headers=bearer(tok))
    assert p.rewrite(req) is None
    assert req.consumer is alice
    assert req.headers.get("x-consumer-username") == "alice"
    assert req.headers.get("x-consumer-custom-id") == "c-1"


@pytest.mark.parametrize("alg", ALL)
def test_tampered_signature_fails(alg: str) -> None:
    p, _ = plugin(alg)
    tok = K.sign_raw(alg, {"key": "alice-key"})
    head, _payload, sig = tok.split(".")
    other = K.sign_raw(alg, {"key": "alice-key", "admin": True}).split(".")[1]
    r = p.rewrite(request(headers=bearer(f"{head}.{other}.{sig}")))
    assert r.status == 401 and json_body(r) == {"message": "failed to verify jwt"}
    assert r.headers.get("www-authenticate") == 'Bearer realm="jwt"'


def test_alg_confusion_hs256_with_rsa_public_key() -> None:
    p, _ = plugin("RS256")
    forged = K.sign_hs_with(K.public_pem("RS256").encode(), {"key": "alice-key"})
    r = p.rewrite(request(headers=bearer(forged)))
    assert r.status == 401 and json_body(r) == {"message": "failed to verify jwt"}


def test_alg_none_refused() -> None:
    p, _ = plugin("HS256")
    tok = K.sign_raw("HS256", {"key": "alice-key"}, header={"alg": "none"})
    head, payload, _ = tok.split(".")
    r = p.rewrite(request(headers=bearer(f"{head}.{payload}.")))
    assert r.status == 401


def test_alg_must_equal_consumers() -> None:
    p, _ = plugin("HS256")
    # right secret, other HMAC size: still refused
    tok = K.sign_hs_with(K.HS_SECRET["HS256"].encode(), {"key": "alice-key"}, alg="HS512")
    assert p.rewrite(request(headers=bearer(tok))).status == 401


def test_exp_nbf_and_grace() -> None:
    now = int(time.time())
    p, _ = plugin("HS256")
    expired = K.sign_pyjwt("HS256", {"key": "alice-key", "exp": now - 10})
    assert p.rewrite(request(headers=bearer(expired))).status == 401
    future = K.sign_pyjwt("HS256", {"key": "alice-key", "nbf": now + 100})
    assert p.rewrite(request(headers=bearer(future))).status == 401
    pg, _ = plugin("HS256", lifetime_grace_period=60)
    assert pg.rewrite(request(headers=bearer(expired))) is None
    # claims_to_verify narrows the checks
    pn, _ = plugin("HS256", {"claims_to_verify": ["nbf"]})
    assert pn.rewrite(request(headers=bearer(expired))) is None
    bad_exp = K.sign_pyjwt("HS256", {"key": "alice-key", "exp": "tomorrow"})
    assert p.rewrite(request(headers=bearer(bad_exp))).status == 401


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "Missing JWT token in request"),
        ("garbage", "JWT token invalid"),
        ("a.b.c", "JWT token invalid"),
        ("!!!.@@@.###", "JWT token invalid"),
        ("x" * 20000, "JWT token invalid"),
    ],
)
def test_malformed_tokens_are_401(token: str | None, message: str) -> None:
    p, _ = plugin()
    r = p.rewrite(request(headers=bearer(token) if token else {}))
    assert r.status == 401 and json_body(r) == {"message": message}


def test_key_claim_problems() -> None:
    p, _ = plugin()
    r = p.rewrite(request(headers=bearer(K.sign_pyjwt("HS256", {"sub": "x"}))))
    assert json_body(r) == {"message": "missing user key in JWT token"}
    r = p.rewrite(request(headers=bearer(K.sign_pyjwt("HS256", {"key": "nobody"}))))
    assert json_body(r) == {"message": "Invalid user key in JWT token"}
    r = p.rewrite(request(headers=bearer(K.sign_pyjwt("HS256", {"key": ["alice-key"]}))))
    assert r.status == 401
    pk, _ = plugin("HS256", {"key_claim_name": "iss"})
    assert pk.rewrite(request(headers=bearer(K.sign_pyjwt("HS256", {"iss": "alice-key"})))) is None


def test_query_cookie_and_hide_credentials() -> None:
    tok = K.sign_pyjwt("HS256", {"key": "alice-key"})
    p, _ = plugin("HS256", {"hide_credentials": True})
    req = request(uri=f"/x?a=1&jwt={tok}")
    assert p.rewrite(req) is None and req.uri == "/x?a=1"
    req = request(headers={"Cookie": f"jwt={tok}; other=2"})
    assert p.rewrite(req) is None and req.headers.get("cookie") == "other=2"
    req = request(headers=bearer(tok))
    assert p.rewrite(req) is None and "authorization" not in req.headers
    # custom places; no Bearer prefix
    p2, _ = plugin("HS256", {"header": "X-Token", "query": "t", "cookie": "c"})
    assert p2.rewrite(request(headers={"X-Token": tok})) is None
    assert p2.rewrite(request(uri=f"/?t={tok}")) is None
    assert p2.rewrite(request(headers={"Cookie": f"c={tok}"})) is None


def test_store_in_ctx_and_spoofed_consumer_headers() -> None:
    p, _ = plugin("HS256", {"store_in_ctx": True})
    tok = K.sign_pyjwt("HS256", {"key": "alice-key", "role": "x"})
    req = request(headers={**bearer(tok), "X-Consumer-Username": "root"})
    assert p.rewrite(req) is None
    assert req.plugin_ctx["jwt_auth_payload"]["role"] == "x"
    assert req.headers.get_all("x-consumer-username") == ["alice"]


def test_anonymous_consumer() -> None:
    anon = Consumer("anon")
    alice = Consumer("alice")
    e = env({"jwt-auth": [(alice, K.consumer_cred("HS256", "k"))]})
    e.consumers["anon"] = anon
    p = build(JwtAuth, {"anonymous_consumer": "anon"}, e)
    req = request()
    assert p.rewrite(req) is None and req.consumer is anon
    missing = build(JwtAuth, {"anonymous_consumer": "ghost"}, e)
    r = missing.rewrite(request())
    assert r.status == 401 and json_body(r) == {"message": "Invalid user authorization"}


def test_realm() -> None:
    p, _ = plugin("HS256", {"realm": "edge"})
    assert p.rewrite(request()).headers.get("www-authenticate") == 'Bearer realm="edge"'


@pytest.mark.parametrize(
    ("cred", "field"),
    [
        ({"key": "k", "secret": "short", "algorithm": "HS256"}, "secret"),
        ({"key": "k", "secret": "x" * 40, "algorithm": "HS384"}, "secret"),
        ({"key": "k", "algorithm": "HS256"}, "secret"),
        ({"key": "k", "secret": "***not base64***" * 4, "base64_secret": True}, "secret"),
        (
            {"key": "k", "public_key": "-----BEGIN PUBLIC KEY-----\nnope\n", "algorithm": "RS256"},
            "public_key",
        ),
        ({"key": "k", "algorithm": "RS256"}, "public_key"),
        ({"key": "k", "public_key": K.public_pem("ES256"), "algorithm": "RS256"}, "public_key"),
        ({"key": "k", "public_key": K.public_pem("ES384"), "algorithm": "ES256"}, "public_key"),
        ({"key": "k", "public_key": K.private_pem("RS256"), "algorithm": "RS256"}, "public_key"),
        ({"key": "k", "secret": K.public_pem("RS256"), "algorithm": "HS256"}, "secret"),
        ({"key": "k", "secret": "x" * 32, "algorithm": "none"}, "algorithm"),
    ],
)
def test_bad_consumer_credentials(cred: dict, field: str) -> None:
    from edge.plugins.base import PluginConfigError

    with pytest.raises(PluginConfigError) as ei:
        env({"jwt-auth": [(Consumer("bob"), cred)]})
    assert ei.value.field == field
    assert "bob" in ei.value.message


def test_base64_secret_and_duplicate_key() -> None:
    import base64

    from edge.plugins.base import PluginConfigError

    raw = b"\x01" * 32
    cred = {"key": "k", "secret": base64.b64encode(raw).decode(), "base64_secret": True}
    e = env({"jwt-auth": [(Consumer("b"), cred)]})
    p = build(JwtAuth, {}, e)
    assert p.rewrite(request(headers=bearer(K.sign_hs_with(raw, {"key": "k"})))) is None
    with pytest.raises(PluginConfigError):
        env(
            {
                "jwt-auth": [
                    (Consumer("a"), K.consumer_cred("HS256", "k")),
                    (Consumer("b"), K.consumer_cred("HS256", "k")),
                ]
            }
        )


def test_route_config_errors() -> None:
    assert config_error(JwtAuth, {"claims_to_verify": ["iat"]}).startswith("claims_to_verify[0]")
    assert config_error(JwtAuth, {"unknown": 1}).startswith("schema:")


def test_verified_cache_still_checks_time_and_never_caches_failures() -> None:
    p, _ = plugin("HS256")
    tok = K.sign_pyjwt("HS256", {"key": "alice-key", "exp": int(time.time()) + 60})
    assert p.rewrite(request(headers=bearer(tok))) is None
    assert p.rewrite(request(headers=bearer(tok))) is None
    assert tok in p.verified
    bad = tok[:-2] + ("AA" if not tok.endswith("AA") else "BB")
    assert p.rewrite(request(headers=bearer(bad))).status == 401
    assert bad not in p.verified
    # a remembered token is let in only within the window of its claims...
    v, payload, valid_from, valid_until = p.verified[tok]
    assert valid_until == payload["exp"] and valid_from == -math.inf
    # ...so once its time ran out it is refused
    p.verified[tok] = (v, payload, valid_from, time.time() - 1)
    assert p.rewrite(request(headers=bearer(tok))).status == 401
