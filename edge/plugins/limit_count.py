"""limit-count (APISIX priority 1002): at most ``count`` requests per ``time_window``.

A fixed window per key in the node-wide counter table (``edge.counters``), shared by
all workers. ``X-RateLimit-Limit/Remaining/Reset`` are added to the response (also
to the rejection, with Remaining 0) when ``show_limit_quota_header`` is on.
"""

from __future__ import annotations

import msgspec

from edge.context import Request, Response
from edge.plugins import _limit, _reply
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError


class Config(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    time_window: int
    key: str = "remote_addr"
    key_type: str = "var"
    group: str | None = None
    policy: str = "local"
    rejected_code: int = 503
    rejected_msg: str | None = None
    allow_degradation: bool = False
    show_limit_quota_header: bool = True


class LimitCount(Plugin):
    name = "limit-count"
    priority = 1002
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.count <= 0:
            raise PluginConfigError("count", "must be > 0")
        if conf.time_window <= 0:
            raise PluginConfigError("time_window", "must be > 0")
        _limit.check_common(conf)
        self.key_of = _limit.compile_key(conf.key, conf.key_type)
        self.scope = _limit.Scope(self.name, conf, conf.group)
        self.table = _limit.table(env)
        self.limit = str(conf.count)
        self.show = conf.show_limit_quota_header
        self.body = _reply.encode({"error_msg": conf.rejected_msg}) if conf.rejected_msg else None
        window = float(conf.time_window)
        count = conf.count

        def step(start: float, used: float, now: float) -> tuple[float, float, tuple[int, float]]:
            if used == 0 or now >= start + window:
                start, used = now, 0.0
            if used >= count:
                return start, used, (-1, start + window - now)
            used += 1
            return start, used, (int(count - used), start + window - now)

        self.step = step

    def access(self, req: Request) -> Response | None:
        remaining, reset_in = self.table.update(self.scope.key(req, self.key_of(req)), self.step)
        if remaining < 0:
            extra = None
            if self.show:
                extra = [
                    ("X-RateLimit-Limit", self.limit),
                    ("X-RateLimit-Remaining", "0"),
                    ("X-RateLimit-Reset", _reset(reset_in)),
                ]
            return _reply.reply(self.conf.rejected_code, self.body, extra)
        if self.show:
            req.plugin_ctx["limit-count"] = (remaining, reset_in)
        return None

    def header_filter(self, req: Request, resp: Response) -> None:
        q = req.plugin_ctx.get("limit-count")
        if q is None:
            return
        h = resp.headers
        remaining, reset = str(q[0]), _reset(q[1])
        entries = h.raw()
        for e in entries:
            if e[0] in _QUOTA_NAMES:
                h.set("X-RateLimit-Limit", self.limit)
                h.set("X-RateLimit-Remaining", remaining)
                h.set("X-RateLimit-Reset", reset)
                return
        # an upstream rarely sends these itself: then appending is what ``set`` would do,
        # without its three scans of the header list
        entries.append(["x-ratelimit-limit", "X-RateLimit-Limit", self.limit])
        entries.append(["x-ratelimit-remaining", "X-RateLimit-Remaining", remaining])
        entries.append(["x-ratelimit-reset", "X-RateLimit-Reset", reset])


_QUOTA_NAMES = frozenset(("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"))


def _reset(reset_in: float) -> str:
    """Whole seconds until the window resets, rounded up (as APISIX)."""
    s = int(reset_in)
    return str(s + 1 if s < reset_in else s if s > 0 else 0)
