"""consumer-restriction (APISIX priority 2400): allow or deny by who or what is called.

``type`` chooses the value checked: the authenticated ``consumer_name`` (default),
the ``consumer_group_id``, the ``service_id`` or the ``route_id``. A request without
that value gets 401; a blacklisted value, a value not in a whitelist, or a consumer
whose ``allowed_by_methods`` entry lacks the method gets ``rejected_code``.
"""

from __future__ import annotations

import msgspec

from edge.context import Request, Response
from edge.plugins import _reply, _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

TYPES = ("consumer_name", "consumer_group_id", "service_id", "route_id")
METHODS = frozenset(
    {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}
)


class MethodRule(msgspec.Struct, forbid_unknown_fields=True):
    user: str
    methods: list[str]


class Config(msgspec.Struct, forbid_unknown_fields=True):
    type: str = "consumer_name"
    whitelist: list[str | int] | None = None
    blacklist: list[str | int] | None = None
    allowed_by_methods: list[MethodRule] | None = None
    rejected_code: int = 403
    rejected_msg: str | None = None


class ConsumerRestriction(Plugin):
    name = "consumer-restriction"
    priority = 2400
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.type not in TYPES:
            raise PluginConfigError("type", f"must be one of {', '.join(TYPES)}")
        if not (conf.whitelist or conf.blacklist or conf.allowed_by_methods):
            raise PluginConfigError(
                "", "one of whitelist, blacklist or allowed_by_methods is required"
            )
        if not 200 <= conf.rejected_code <= 599:
            raise PluginConfigError("rejected_code", "must be between 200 and 599")
        self.get = _vars.compile_var(conf.type, "type")
        self.white = frozenset(str(v) for v in conf.whitelist or ())
        self.black = frozenset(str(v) for v in conf.blacklist or ())
        self.methods: dict[str, frozenset[str]] = {}
        for i, rule in enumerate(conf.allowed_by_methods or ()):
            for j, m in enumerate(rule.methods):
                if m not in METHODS:
                    raise PluginConfigError(
                        f"allowed_by_methods[{i}].methods[{j}]", f"unknown method {m!r}"
                    )
            self.methods[rule.user] = self.methods.get(rule.user, frozenset()) | frozenset(
                rule.methods
            )
        self.missing = _reply.encode(
            {"message": f"The request is rejected, please check the {conf.type} for this request"}
        )
        self.denied = _reply.encode(
            {"message": conf.rejected_msg or f"The {conf.type} is forbidden."}
        )

    def access(self, req: Request) -> Response | None:
        value = self.get(req)
        if value is None:
            return _reply.reply(401, self.missing)
        if value in self.black:
            return _reply.reply(self.conf.rejected_code, self.denied)
        whitelisted = value in self.white
        block = bool(self.white) and not whitelisted
        if self.conf.allowed_by_methods and not whitelisted:
            allowed = self.methods.get(value)
            if allowed is None or req.method not in allowed:
                block = True
        if block:
            return _reply.reply(self.conf.rejected_code, self.denied)
        return None
