"""csrf (APISIX priority 2980): double-submit cookie with a signed token.

Every response sets ``Set-Cookie: <name>=<token>;path=/;SameSite=Lax;Expires=...``
where ``token = base64(json{random, expires, sign})`` and ``sign =
sha256hex("{expires:<expires>,random:<random>,key:<key>}")`` (APISIX's format, so
tokens are interchangeable with an APISIX node sharing the key). Unsafe methods must
send the same token in the ``<name>`` header and cookie; it must verify and be younger
than ``expires`` seconds (the token's ``expires`` field holds its creation time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from email.utils import formatdate

import msgspec

from edge.context import Request, Response
from edge.plugins import _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_LEN = 1024


class Config(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    expires: int = 7200
    name: str = "apisix-csrf-token"


def lua_num(v: float | int) -> str:
    """Lua's ``tostring`` of a number (``%.14g``), as APISIX builds the signed string."""
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    return f"{v:.14g}"


def sign(random: float | int, expires: float | int, key: str) -> str:
    s = "{expires:" + lua_num(expires) + ",random:" + lua_num(random) + ",key:" + key + "}"
    return hashlib.sha256(s.encode()).hexdigest()


class Csrf(Plugin):
    name = "csrf"
    priority = 2980
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not conf.key:
            raise PluginConfigError("key", "must not be empty")
        if conf.expires <= 0:
            raise PluginConfigError("expires", "must be > 0")
        if not conf.name or any(c in conf.name for c in " ;=,\r\n\t"):
            raise PluginConfigError("name", "not a valid cookie name")
        self.lname = conf.name.lower()
        self.errors = {
            m: _reply.encode({"error_msg": m})
            for m in ("no csrf token in headers", "no csrf cookie", "csrf token mismatch",
                      "Failed to verify the csrf token signature")
        }  # fmt: skip

    def make_token(self, now: int | None = None) -> str:
        now = int(time.time()) if now is None else now
        # a 14-significant-digit float like Lua's math.random(), drawn from secrets
        random = float(f"{secrets.randbits(52) / (1 << 52):.14g}")
        token = {"random": random, "expires": now, "sign": sign(random, now, self.conf.key)}
        return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()

    def check_token(self, token: str) -> bool:
        if len(token) > MAX_TOKEN_LEN:
            return False
        try:
            t = json.loads(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError):
            return False
        if not isinstance(t, dict):
            return False
        random, expires, given = t.get("random"), t.get("expires"), t.get("sign")
        if not isinstance(random, (int, float)) or isinstance(random, bool):
            return False
        if (
            not isinstance(expires, (int, float))
            or isinstance(expires, bool)
            or not isinstance(given, str)
        ):
            return False
        if not hmac.compare_digest(sign(random, expires, self.conf.key), given):
            return False
        return not (expires > 0 and time.time() - expires > self.conf.expires)

    def _deny(self, msg: str) -> Response:
        return _reply.reply(401, self.errors[msg])

    def access(self, req: Request) -> Response | None:
        if req.method in SAFE_METHODS:
            return None
        header = req.headers.get(self.lname)
        if not header:
            return self._deny("no csrf token in headers")
        cookie = req.cookies.get(self.conf.name)
        if cookie is None:
            return self._deny("no csrf cookie")
        if not hmac.compare_digest(
            header.encode("utf-8", "surrogateescape"), cookie.encode("utf-8", "surrogateescape")
        ):
            return self._deny("csrf token mismatch")
        if not self.check_token(cookie):
            return self._deny("Failed to verify the csrf token signature")
        return None

    def header_filter(self, req: Request, resp: Response) -> None:
        now = int(time.time())
        cookie = (
            f"{self.conf.name}={self.make_token(now)};path=/;SameSite=Lax;"
            f"Expires={formatdate(now + self.conf.expires, usegmt=True)}"
        )
        resp.headers.add("Set-Cookie", cookie)
