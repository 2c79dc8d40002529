"""limit-conn (APISIX priority 1003): at most ``conn`` concurrent requests per key.

Up to ``conn + burst`` requests are admitted; those above ``conn`` first wait
``default_conn_delay`` times how many ``conn``-sized groups are ahead of them (or
exactly ``default_conn_delay`` with ``only_use_default_delay``). The count is taken
back in the log phase, which runs for every request including local responses.
"""

from __future__ import annotations

import math

import msgspec
import trio

from edge.context import Request, Response
from edge.plugins import _limit, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

CTX_KEY = "limit-conn"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    conn: int
    burst: int
    default_conn_delay: float
    only_use_default_delay: bool = False
    key: str = "remote_addr"
    key_type: str = "var"
    policy: str = "local"
    rejected_code: int = 503
    rejected_msg: str | None = None
    allow_degradation: bool = False


class LimitConn(Plugin):
    name = "limit-conn"
    priority = 1003
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.conn <= 0:
            raise PluginConfigError("conn", "must be > 0")
        if conf.burst < 0:
            raise PluginConfigError("burst", "must be >= 0")
        if conf.default_conn_delay <= 0:
            raise PluginConfigError("default_conn_delay", "must be > 0")
        _limit.check_common(conf)
        self.key_of = _limit.compile_key(conf.key, conf.key_type)
        self.scope = _limit.Scope(self.name, conf)
        self.table = _limit.table(env)
        self.body = _reply.encode({"error_msg": conf.rejected_msg}) if conf.rejected_msg else None
        ceiling = conf.conn + conf.burst

        def enter(_t: float, n: float, now: float) -> tuple[float, float, int]:
            if n + 1 > ceiling:
                return now, n, -1
            return now, n + 1, int(n + 1)

        def leave(_t: float, n: float, now: float) -> tuple[float, float, None]:
            return now, max(n - 1, 0.0), None

        self.enter, self.leave = enter, leave

    async def access(self, req: Request) -> Response | None:
        key = self.scope.key(req, self.key_of(req))
        n = self.table.update(key, self.enter)
        if n < 0:
            return _reply.reply(self.conf.rejected_code, self.body)
        req.plugin_ctx[CTX_KEY] = key
        c = self.conf
        if n > c.conn:
            delay = (
                c.default_conn_delay
                if c.only_use_default_delay
                else c.default_conn_delay * math.floor((n - 1) / c.conn)
            )
            await trio.sleep(delay)
        return None

    def log(self, req: Request, resp: Response | None) -> None:
        key = req.plugin_ctx.pop(CTX_KEY, None)
        if key is not None:
            self.table.update(key, self.leave)
