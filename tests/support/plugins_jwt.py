"""Key material and token signers for jwt-auth tests.

Tokens are signed two ways: with pyjwt, and "by hand" with ``cryptography`` (JWS
compact serialisation written out here), so the plugin is checked against a signer
that shares no code with pyjwt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HS_SECRET = {"HS256": "s" * 32, "HS384": "t" * 48, "HS512": "u" * 64}
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


@cache
def private_key(alg: str) -> Any:
    if alg[:2] in ("RS", "PS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(alg)


def private_pem(alg: str) -> str:
    return (
        private_key(alg)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def public_pem(alg: str) -> str:
    return (
        private_key(alg)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def consumer_cred(alg: str, key: str, **extra: Any) -> dict[str, Any]:
    if alg.startswith("HS"):
        return {"key": key, "secret": HS_SECRET[alg], "algorithm": alg, **extra}
    return {"key": key, "public_key": public_pem(alg), "algorithm": alg, **extra}


def sign_pyjwt(alg: str, payload: dict[str, Any]) -> str:
    import jwt

    key: Any = HS_SECRET[alg] if alg.startswith("HS") else private_key(alg)
    return jwt.encode(payload, key, algorithm=alg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(alg: str, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """JWS compact serialisation with ``cryptography`` only."""
    h = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (
        _b64(json.dumps(h).encode()) + "." + _b64(json.dumps(payload).encode())
    ).encode()
    if alg.startswith("HS"):
        digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[2:]]
        sig = hmac.new(HS_SECRET[alg].encode(), signing_input, digest).digest()
    elif alg.startswith("RS"):
        sig = private_key(alg).sign(signing_input, padding.PKCS1v15(), _HASH[alg[2:]]())
    elif alg.startswith("PS"):
        h_alg = _HASH[alg[2:]]()
        sig = private_key(alg).sign(
            signing_input,
            padding.PSS(mgf=padding.MGF1(h_alg), salt_length=h_alg.digest_size),
            h_alg,
        )
    elif alg.startswith("ES"):
        key = private_key(alg)
        der = key.sign(signing_input, ec.ECDSA(_HASH[alg[2:]]()))
        r, s = decode_dss_signature(der)
        n = (key.curve.key_size + 7) // 8
        sig = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    elif alg == "EdDSA":
        sig = private_key(alg).sign(signing_input)
    else:
        raise ValueError(alg)
    return signing_input.decode() + "." + _b64(sig)


def sign_hs_with(secret: bytes, payload: dict[str, Any], alg: str = "HS256") -> str:
    """An HS token keyed with arbitrary bytes (used for algorithm-confusion attacks)."""
    h = {"alg": alg, "typ": "JWT"}
    signing_input = (
        _b64(json.dumps(h).encode()) + "." + _b64(json.dumps(payload).encode())
    ).encode()
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input.decode() + "." + _b64(sig)
