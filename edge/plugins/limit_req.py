"""limit-req (APISIX priority 1001): leaky bucket of ``rate`` requests per second.

Per key the table keeps ``(last time, excess)``; each request leaks ``rate * elapsed``
and adds one. Above ``burst`` the request is rejected; otherwise it waits
``excess / rate`` seconds (not with ``nodelay``), which smooths bursts into the rate.
"""

from __future__ import annotations

import msgspec
import trio

from edge.context import Request, Response
from edge.plugins import _limit, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError


class Config(msgspec.Struct, forbid_unknown_fields=True):
    rate: float
    burst: float
    key: str = "remote_addr"
    key_type: str = "var"
    policy: str = "local"
    rejected_code: int = 503
    rejected_msg: str | None = None
    nodelay: bool = False
    allow_degradation: bool = False


class LimitReq(Plugin):
    name = "limit-req"
    priority = 1001
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.rate <= 0:
            raise PluginConfigError("rate", "must be > 0")
        if conf.burst < 0:
            raise PluginConfigError("burst", "must be >= 0")
        _limit.check_common(conf)
        self.key_of = _limit.compile_key(conf.key, conf.key_type)
        self.scope = _limit.Scope(self.name, conf)
        self.table = _limit.table(env)
        self.body = _reply.encode({"error_msg": conf.rejected_msg}) if conf.rejected_msg else None
        rate, burst = float(conf.rate), float(conf.burst)

        def step(last: float, excess: float, now: float) -> tuple[float, float, float]:
            if last == 0.0:
                new = 0.0
            else:
                new = max(excess - rate * abs(now - last) + 1.0, 0.0)
            if new > burst:
                return last, excess, -1.0  # rejected requests are not committed
            return now, new, new / rate

        self.step = step

    def decide(self, req: Request) -> float:
        """Seconds to wait, or -1 to reject."""
        return self.table.update(self.scope.key(req, self.key_of(req)), self.step)  # type: ignore[no-any-return]

    async def access(self, req: Request) -> Response | None:
        delay = self.decide(req)
        if delay < 0:
            return _reply.reply(self.conf.rejected_code, self.body)
        if delay > 0 and not self.conf.nodelay:
            await trio.sleep(delay)
        return None
