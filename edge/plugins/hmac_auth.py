"""hmac-auth (APISIX priority 2530): identify the consumer by an HMAC request signature.

APISIX 3.x scheme::

    Authorization: Signature keyId="k",algorithm="hmac-sha256",
                   headers="@request-target date",signature="<base64>"

The signing string is ``keyId`` followed by one line per listed header, each
``name: value`` (``@request-target`` is ``METHOD request-uri``), every line ending in
``\\n``. Failures answer 401 ``{"message":"client request can't be validated"}`` with
``WWW-Authenticate: hmac realm="..."``; the precise reason goes only to the debug
log-free ``req.plugin_ctx`` (never the secret nor the signature). A body larger than
``max_req_body_size`` under ``validate_request_body`` answers 413.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from edge.context import Request, Response
from edge.errors import ClientError
from edge.plugins import _auth, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}
MAX_AUTH_LEN = 8192  # an Authorization header longer than this is refused unparsed
MAX_SIGNED_HEADERS = 64
_FIELD_RE = re.compile(r'\s*(\w+)="([^"]*)"\s*')
FAIL_MSG = "client request can't be validated"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    allowed_algorithms: list[str] = msgspec.field(default_factory=lambda: list(DIGESTS))
    clock_skew: int = 300
    signed_headers: list[str] | None = None
    validate_request_body: bool = False
    hide_credentials: bool = False
    max_req_body_size: int = 48 * 1024
    realm: str = "hmac"
    anonymous_consumer: str | None = None


class ConsumerConfig(msgspec.Struct, forbid_unknown_fields=True):
    key_id: str
    secret_key: str


def parse_authorization(value: str) -> dict[str, str] | str:
    """``Signature k="v",...`` -> fields, or a reason string when malformed."""
    if len(value) > MAX_AUTH_LEN:
        return "Authorization header too long"
    if not value.startswith("Signature "):
        return "Authorization header does not start with 'Signature '"
    fields: dict[str, str] = {}
    for part in value[10:].split(","):
        m = _FIELD_RE.fullmatch(part)
        if m is None:
            return "malformed Authorization field"
        fields[m.group(1)] = m.group(2)
    return fields


def signing_string(key_id: str, headers: list[str], req: Request) -> str | None:
    """The string both sides sign; None when a listed header is absent."""
    lines = [key_id]
    for name in headers:
        if name == "@request-target":
            lines.append(f"{req.method} {req.uri or '/'}")
            continue
        value = req.headers.get(name.lower())
        if value is None:
            return None
        lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


class HmacAuth(Plugin):
    name = "hmac-auth"
    priority = 2530
    Config = Config
    ConsumerConfig = ConsumerConfig
    is_auth = True

    @classmethod
    def index_consumers(
        cls, creds: list[tuple[Any, Any]], env: CompileEnv
    ) -> dict[str, tuple[Any, bytes, str]]:
        # key_id -> (consumer, secret, X-Credential-Identifier)
        index: dict[str, tuple[Any, bytes, str]] = {}

        def add(consumer: Any, conf: ConsumerConfig) -> None:
            if not conf.key_id or not conf.secret_key:
                raise PluginConfigError(
                    "key_id", f"consumer {consumer.username}: key_id and secret_key are required"
                )
            if conf.key_id in index:
                raise PluginConfigError(
                    "key_id",
                    f"consumers {index[conf.key_id][0].username} and "
                    f"{consumer.username} use the same key_id",
                )
            index[conf.key_id] = (
                consumer,
                conf.secret_key.encode(),
                _auth.credential_id(consumer, cls.name),
            )

        _auth.index_all(cls.name, creds, add)
        return index

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not conf.allowed_algorithms:
            raise PluginConfigError("allowed_algorithms", "expected at least one algorithm")
        for i, a in enumerate(conf.allowed_algorithms):
            if a not in DIGESTS:
                raise PluginConfigError(f"allowed_algorithms[{i}]", f"unknown algorithm {a!r}")
        if conf.clock_skew < 0:
            raise PluginConfigError("clock_skew", "must be >= 0")
        if conf.max_req_body_size < 0:
            raise PluginConfigError("max_req_body_size", "must be >= 0")
        self.allowed = frozenset(conf.allowed_algorithms)
        self.required = [h.lower() for h in conf.signed_headers or ()]
        self.index: dict[str, tuple[Any, bytes, str]] = env.consumer_index(self.name) or {}
        self.anonymous = _auth.Anonymous(conf.anonymous_consumer, env)
        self.www = [("WWW-Authenticate", f'hmac realm="{conf.realm}"')]

    def _fail(self, req: Request, reason: str) -> Response | None:
        # the reason is kept for the access log / debugging; it never carries secrets
        req.plugin_ctx["hmac_auth_error"] = reason
        return self.anonymous.fallback(req, _reply.message(401, FAIL_MSG, self.www))

    def _verify(self, req: Request) -> tuple[tuple[Any, bytes, str] | None, str]:
        """-> (the matched index entry, "") or (None, reason). Pure: no body access."""
        auth = req.headers.get("authorization")
        if auth is None:
            return None, "missing Authorization header"
        fields = parse_authorization(auth)
        if isinstance(fields, str):
            return None, fields
        key_id, sig_b64, algorithm = (
            fields.get("keyId"),
            fields.get("signature"),
            fields.get("algorithm"),
        )
        if not key_id or not sig_b64:
            return None, "keyId or signature missing"
        if not algorithm:
            return None, "algorithm missing"
        entry = self.index.get(key_id)
        if entry is None:
            return None, "Invalid keyId"
        if algorithm not in self.allowed:
            return None, "Invalid algorithm"
        c = self.conf
        if c.clock_skew > 0:
            date = req.headers.get("date")
            if date is None:
                return None, "Date header missing. failed to validate clock skew"
            try:
                ts = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return None, "Invalid GMT format time"
            if abs(time.time() - ts) > c.clock_skew:
                return None, "Clock skew exceeded"
        headers = fields.get("headers", "").split() if "headers" in fields else []
        if len(headers) > MAX_SIGNED_HEADERS:
            return None, "too many signed headers"
        if self.required:
            listed = {h.lower() for h in headers}
            for h in self.required:
                if h not in listed:
                    return None, f'expected header "{h}" missing in signing'
        try:
            given = base64.b64decode(sig_b64, validate=True)
        except (binascii.Error, ValueError):
            return None, "Invalid signature"
        s = signing_string(key_id, headers, req)
        if s is None:
            return None, "Invalid signature"
        secret = entry[1]
        # header values are latin-1 decoded octets: encoding back gives the bytes signed
        expected = hmac.new(secret, s.encode("latin-1", "replace"), DIGESTS[algorithm]).digest()
        if not hmac.compare_digest(expected, given):
            return None, "Invalid signature"
        return entry, ""

    async def rewrite(self, req: Request) -> Response | None:
        entry, reason = self._verify(req)
        if entry is None:
            return self._fail(req, reason)
        if self.conf.validate_request_body:
            digest = req.headers.get("digest")
            if digest is None:
                return self._fail(req, "Invalid digest")
            if req.body is not None:
                body = req.body
                if len(body) > self.conf.max_req_body_size:
                    return _reply.message(413, "request body too large")
            elif req.read_body is not None:
                try:
                    # 0 means "no limit" to the server, so a 0 limit reads at most 1 byte over
                    body = await req.read_body(self.conf.max_req_body_size or 1)
                except ClientError as e:
                    if e.status == 413:
                        return _reply.message(413, "request body too large")
                    raise
                if len(body) > self.conf.max_req_body_size:
                    return _reply.message(413, "request body too large")
                # the body was consumed: it goes upstream from here
                req.body = body
            else:
                body = b""
            want = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            if not hmac.compare_digest(want.encode(), digest.encode("utf-8", "surrogateescape")):
                return self._fail(req, "Invalid digest")
        if self.conf.hide_credentials:
            req.headers.remove("authorization")
        _auth.attach_consumer(req, entry[0], entry[2])
        return None
