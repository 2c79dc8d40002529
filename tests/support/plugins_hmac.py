"""An independent signer for hmac-auth requests (APISIX 3.x ``Signature`` scheme)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from email.utils import formatdate

DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}


def gmt_now(offset: float = 0.0) -> str:
    import time

    return formatdate(time.time() + offset, usegmt=True)


def authorization(
    key_id: str,
    secret: str,
    method: str,
    uri: str,
    headers: dict[str, str],
    signed: list[str],
    algorithm: str = "hmac-sha256",
) -> str:
    lines = [key_id]
    lower = {k.lower(): v for k, v in headers.items()}
    for name in signed:
        if name == "@request-target":
            lines.append(f"{method} {uri}")
        else:
            lines.append(f"{name}: {lower[name.lower()]}")
    s = "\n".join(lines) + "\n"
    sig = base64.b64encode(hmac.new(secret.encode(), s.encode(), DIGESTS[algorithm]).digest())
    return (
        f'Signature keyId="{key_id}",algorithm="{algorithm}",'
        f'headers="{" ".join(signed)}",signature="{sig.decode()}"'
    )


def digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
