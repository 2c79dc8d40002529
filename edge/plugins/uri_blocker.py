"""uri-blocker (APISIX priority 2900): refuse requests whose URI matches a rule.

The rules are joined into one alternation at compile time and matched (search, not
anchored, as PCRE ``ngx.re.find``) against the request URI including the query string.
"""

from __future__ import annotations

import re

import msgspec

from edge.context import Request, Response
from edge.plugins import _reply, _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError


class Config(msgspec.Struct, forbid_unknown_fields=True):
    block_rules: list[str]
    rejected_code: int = 403
    rejected_msg: str | None = None
    case_insensitive: bool = False


class UriBlocker(Plugin):
    name = "uri-blocker"
    priority = 2900
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not conf.block_rules:
            raise PluginConfigError("block_rules", "expected at least one rule")
        if not 200 <= conf.rejected_code <= 599:
            raise PluginConfigError("rejected_code", "must be between 200 and 599")
        if conf.rejected_msg is not None and not conf.rejected_msg:
            raise PluginConfigError("rejected_msg", "must not be empty")
        flags = re.IGNORECASE if conf.case_insensitive else 0
        for i, rule in enumerate(conf.block_rules):
            _vars.regex(rule, f"block_rules[{i}]", flags)
        self.rx = re.compile("|".join(f"(?:{r})" for r in conf.block_rules), flags)
        self.body = _reply.encode({"error_msg": conf.rejected_msg}) if conf.rejected_msg else None

    def rewrite(self, req: Request) -> Response | None:
        if self.rx.search(req.uri) is None:
            return None
        return _reply.reply(self.conf.rejected_code, self.body)
