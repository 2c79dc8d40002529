"""request-id (APISIX priority 12015): give every request an id, upstream and back.

An id the client sent in ``header_name`` is kept (as APISIX); otherwise one is made
with ``algorithm``: ``uuid`` (v4), ``nanoid`` (21 URL-safe characters) or ``range_id``
(``length`` characters from ``char_set``). All use ``secrets``, so ids are unguessable.
"""

from __future__ import annotations

import secrets
import uuid

import msgspec

from edge.context import Request, Response
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
MAX_INCOMING = 256  # a longer client id is replaced: it would bloat logs and upstream headers


class RangeId(msgspec.Struct, forbid_unknown_fields=True):
    char_set: str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    length: int = 16


class Config(msgspec.Struct, forbid_unknown_fields=True):
    header_name: str = "X-Request-Id"
    include_in_response: bool = True
    algorithm: str = "uuid"
    range_id: RangeId = msgspec.field(default_factory=RangeId)


class RequestId(Plugin):
    name = "request-id"
    priority = 12015
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not conf.header_name:
            raise PluginConfigError("header_name", "must not be empty")
        self.lname = conf.header_name.lower()
        if conf.algorithm == "uuid":
            self.make = lambda: str(uuid.uuid4())
        elif conf.algorithm == "nanoid":
            self.make = lambda: "".join(secrets.choice(NANOID_ALPHABET) for _ in range(21))
        elif conf.algorithm == "range_id":
            cs, n = conf.range_id.char_set, conf.range_id.length
            if len(cs) < 6:
                raise PluginConfigError("range_id.char_set", "needs at least 6 characters")
            if n < 6:
                raise PluginConfigError("range_id.length", "must be >= 6")
            self.make = lambda: "".join(secrets.choice(cs) for _ in range(n))
        else:
            raise PluginConfigError(
                "algorithm", f"unknown algorithm {conf.algorithm!r} (uuid, nanoid, range_id)"
            )

    def rewrite(self, req: Request) -> Response | None:
        rid = req.headers.get(self.lname)
        if not rid or len(rid) > MAX_INCOMING:
            rid = self.make()
            req.headers.set(self.conf.header_name, rid)
        req.plugin_ctx["request-id"] = rid
        req.request_id = rid
        return None

    def header_filter(self, req: Request, resp: Response) -> None:
        if not self.conf.include_in_response:
            return
        rid = req.plugin_ctx.get("request-id")
        if rid and self.lname not in resp.headers:
            resp.headers.set(self.conf.header_name, rid)
