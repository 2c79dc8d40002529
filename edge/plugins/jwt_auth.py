"""jwt-auth (APISIX priority 2510): identify the consumer by a signed JWT.

The token comes from ``header`` (a ``Bearer `` prefix is stripped), else the ``query``
argument, else the ``cookie``. Its payload names the consumer through
``key_claim_name``; the token's ``alg`` must equal the consumer's ``algorithm`` exactly,
which is what refuses algorithm confusion (an HS256 token "signed" with an RSA public
key, or ``alg: none``). Keys are parsed once per snapshot with pyjwt's algorithm
objects, so a request costs two base64 decodes, one JSON parse and one verify.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from edge.context import Request, Response
from edge.plugins import _auth, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

MAX_TOKEN_LEN = 8192  # a JWT longer than this is refused unparsed
# verified tokens remembered per plugin instance (a snapshot); cleared whole when full,
# so the memory is bounded by about VERIFIED_CACHE_SIZE * MAX_TOKEN_LEN
VERIFIED_CACHE_SIZE = 1024
ALGORITHMS = get_default_algorithms()
# RFC 7518 3.2: an HMAC key at least as long as the hash output
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
SUPPORTED = (
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class Config(msgspec.Struct, forbid_unknown_fields=True):
    header: str = "authorization"
    query: str = "jwt"
    cookie: str = "jwt"
    hide_credentials: bool = False
    key_claim_name: str = "key"
    store_in_ctx: bool = False
    claims_to_verify: list[str] = msgspec.field(default_factory=lambda: ["exp", "nbf"])
    anonymous_consumer: str | None = None
    realm: str = "jwt"


class ConsumerConfig(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    secret: str | None = None
    public_key: str | None = None
    algorithm: str = "HS256"
    exp: int = 86400
    base64_secret: bool = False
    lifetime_grace_period: int = 0
    # accepted for APISIX compatibility; edge never signs tokens, so it is unused
    private_key: str | None = None


class Verifier:
    """One consumer's compiled credential."""

    __slots__ = ("consumer", "credential_id", "alg", "algo", "key", "grace")

    def __init__(self, consumer: Any, conf: ConsumerConfig) -> None:
        who = f"consumer {getattr(consumer, 'username', '?')}"
        if conf.algorithm not in SUPPORTED:
            raise PluginConfigError("algorithm", f"{who}: unsupported algorithm {conf.algorithm!r}")
        if conf.lifetime_grace_period < 0:
            raise PluginConfigError("lifetime_grace_period", f"{who}: must be >= 0")
        self.consumer = consumer
        self.credential_id = _auth.credential_id(consumer, "jwt-auth")
        self.alg = conf.algorithm
        self.algo = ALGORITHMS[conf.algorithm]
        self.grace = conf.lifetime_grace_period
        if conf.algorithm.startswith("HS"):
            if not conf.secret:
                raise PluginConfigError("secret", f"{who}: secret is required for {conf.algorithm}")
            if conf.base64_secret:
                try:
                    raw = base64.b64decode(conf.secret, validate=True)
                except (binascii.Error, ValueError):
                    raise PluginConfigError(
                        "secret", f"{who}: base64_secret is set but secret is not base64"
                    ) from None
            else:
                raw = conf.secret.encode()
            need = HMAC_MIN_BYTES[conf.algorithm]
            if len(raw) < need:
                raise PluginConfigError(
                    "secret",
                    f"{who}: {conf.algorithm} needs a secret of at least {need} bytes, "
                    f"got {len(raw)}",
                )
            try:
                self.key = self.algo.prepare_key(raw)
            except InvalidKeyError:
                raise PluginConfigError(
                    "secret", f"{who}: an asymmetric key cannot be an HMAC secret"
                ) from None
            return
        if not conf.public_key:
            raise PluginConfigError(
                "public_key", f"{who}: public_key is required for {conf.algorithm}"
            )
        try:
            key = self.algo.prepare_key(conf.public_key)
        except (InvalidKeyError, ValueError, TypeError) as e:
            raise PluginConfigError(
                "public_key", f"{who}: public key does not parse ({type(e).__name__})"
            ) from None
        if hasattr(key, "private_bytes"):
            raise PluginConfigError(
                "public_key", f"{who}: expected a public key, got a private key"
            )
        if conf.algorithm[:2] in ("RS", "PS"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise PluginConfigError(
                    "public_key", f"{who}: {conf.algorithm} needs an RSA public key"
                )
            if key.key_size < 2048:
                raise PluginConfigError(
                    "public_key", f"{who}: RSA keys shorter than 2048 bits are refused"
                )
        elif conf.algorithm.startswith("ES"):
            if (
                not isinstance(key, ec.EllipticCurvePublicKey)
                or key.curve.name != CURVES[conf.algorithm]
            ):
                raise PluginConfigError(
                    "public_key",
                    f"{who}: {conf.algorithm} needs an EC public key on {CURVES[conf.algorithm]}",
                )
        elif not isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            raise PluginConfigError(
                "public_key", f"{who}: EdDSA needs an Ed25519 or Ed448 public key"
            )
        self.key = key


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url(seg: str) -> bytes:
    """Strict base64url (RFC 7515 2): the lenient decoder would skip foreign characters."""
    if not _B64URL.fullmatch(seg) or len(seg) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


class JwtAuth(Plugin):
    name = "jwt-auth"
    priority = 2510
    Config = Config
    ConsumerConfig = ConsumerConfig
    is_auth = True

    @classmethod
    def index_consumers(cls, creds: list[tuple[Any, Any]], env: CompileEnv) -> dict[str, Verifier]:
        index: dict[str, Verifier] = {}

        def add(consumer: Any, conf: ConsumerConfig) -> None:
            if conf.key in index:
                raise PluginConfigError(
                    "key",
                    f"consumers {index[conf.key].consumer.username} and "
                    f"{consumer.username} use the same key",
                )
            index[conf.key] = Verifier(consumer, conf)

        _auth.index_all(cls.name, creds, add)
        return index

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        for i, c in enumerate(conf.claims_to_verify):
            if c not in ("exp", "nbf"):
                raise PluginConfigError(
                    f"claims_to_verify[{i}]", f"unknown claim {c!r} (exp or nbf)"
                )
        self.check_exp = "exp" in conf.claims_to_verify
        self.check_nbf = "nbf" in conf.claims_to_verify
        self.header = conf.header.lower()
        self.index: dict[str, Verifier] = env.consumer_index(self.name) or {}
        self.anonymous = _auth.Anonymous(conf.anonymous_consumer, env)
        self.www = [("WWW-Authenticate", f'Bearer realm="{conf.realm}"')]
        # token -> (verifier, payload, the time window its exp/nbf claims allow)
        self.verified: dict[str, tuple[Verifier, dict[str, Any], float, float]] = {}

    def _fail(self, req: Request, msg: str) -> Response | None:
        return self.anonymous.fallback(req, _reply.message(401, msg, self.www))

    def _token(self, req: Request) -> tuple[str | None, str]:
        tok = req.headers.get(self.header)
        if tok is not None:
            if tok[:7] in ("Bearer ", "bearer "):
                tok = tok[7:]
            return tok, "header"
        if req.query:
            tok = req.args.get(self.conf.query)
            if tok is not None:
                return tok, "query"
        tok = req.cookies.get(self.conf.cookie)
        return tok, "cookie"

    def _verify(self, token: str) -> tuple[Verifier, dict[str, Any]] | str:
        """Signature and key checks (not time claims): ``(verifier, payload)`` or why not."""
        parts = token.split(".") if len(token) <= MAX_TOKEN_LEN else ()
        if len(parts) != 3:
            return "JWT token invalid"
        try:
            header = json.loads(_b64url(parts[0]))
            payload = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            return "JWT token invalid"
        if not isinstance(header, dict) or not isinstance(payload, dict):
            return "JWT token invalid"
        user_key = payload.get(self.conf.key_claim_name)
        if user_key is None:
            return "missing user key in JWT token"
        v = self.index.get(user_key) if isinstance(user_key, str) else None
        if v is None:
            return "Invalid user key in JWT token"
        if header.get("alg") != v.alg:
            return "failed to verify jwt"
        signing_input = (parts[0] + "." + parts[1]).encode()
        try:
            ok = v.algo.verify(signing_input, v.key, signature)
        except Exception:  # a malformed signature must end as 401, whatever the backend raises
            ok = False
        if not ok:
            return "failed to verify jwt"
        return v, payload

    def rewrite(self, req: Request) -> Response | None:
        token, where = self._token(req)
        if not token:
            return self._fail(req, "Missing JWT token in request")
        # a token whose signature verified is remembered (exactly, by its full text) for
        # this snapshot; its time claims are still checked on every request
        hit = self.verified.get(token)
        if hit is None:
            result = self._verify(token)
            if isinstance(result, str):
                return self._fail(req, result)
            if len(self.verified) >= VERIFIED_CACHE_SIZE:
                self.verified.clear()
            v, payload = result
            self.verified[token] = hit = (v, payload, *self._window(payload, v.grace))
        v, payload, valid_from, valid_until = hit
        if not valid_from <= time.time() < valid_until:
            return self._fail(req, "failed to verify jwt")
        if self.conf.hide_credentials:
            if where == "header":
                req.headers.remove(self.header)
            elif where == "query":
                _auth.strip_query_arg(req, self.conf.query)
            else:
                _auth.strip_cookie(req, self.conf.cookie)
        if self.conf.store_in_ctx:
            req.plugin_ctx["jwt_auth_payload"] = dict(payload)
        _auth.attach_consumer(req, v.consumer, v.credential_id)
        return None

    def _window(self, payload: dict[str, Any], grace: int) -> tuple[float, float]:
        """The times (Unix seconds, from inclusive, until exclusive) at which the
        token's checked exp and nbf claims let it in; an empty window for a claim
        that is not a number."""
        valid_from, valid_until = -math.inf, math.inf
        if self.check_exp and "exp" in payload:
            exp = payload["exp"]
            if isinstance(exp, bool) or not isinstance(exp, (int, float)):
                return math.inf, -math.inf
            valid_until = exp + grace
        if self.check_nbf and "nbf" in payload:
            nbf = payload["nbf"]
            if isinstance(nbf, bool) or not isinstance(nbf, (int, float)):
                return math.inf, -math.inf
            valid_from = nbf - grace
        return valid_from, valid_until
