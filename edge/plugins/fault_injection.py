"""fault-injection (APISIX priority 11000): delay and/or abort requests on purpose.

``delay`` runs first (``duration`` seconds), then ``abort`` answers ``http_status``
with ``body`` (``$var`` templates) and ``headers``. Each applies to ``percentage`` of
requests (all when unset) and, with ``vars``, only when one of the listed expressions
matches (a list of lua-resty-expr expressions, any of which may match, as APISIX).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from edge.context import Request, Response
from edge.plugins import _reply, _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.plugins.proxy_rewrite import _HEADER_NAME_RE

MAX_DELAY = 3600.0


class Abort(msgspec.Struct, forbid_unknown_fields=True):
    http_status: int
    body: str | None = None
    headers: dict[str, str] | None = None
    percentage: int | None = None
    vars: list[Any] | None = None


class Delay(msgspec.Struct, forbid_unknown_fields=True):
    duration: float
    percentage: int | None = None
    vars: list[Any] | None = None


class Config(msgspec.Struct, forbid_unknown_fields=True):
    abort: Abort | None = None
    delay: Delay | None = None


def _any_of(exprs: list[Any] | None, field: str) -> Callable[[Request], bool] | None:
    if not exprs:
        return None
    preds = [_vars.compile_expr(e, f"{field}[{i}]") for i, e in enumerate(exprs)]
    return lambda r: any(p(r) for p in preds)


def _pct(p: int | None, field: str) -> int | None:
    if p is not None and not 0 <= p <= 100:
        raise PluginConfigError(field, "must be between 0 and 100")
    return p


def _sampled(pct: int | None) -> bool:
    # not security relevant: the standard PRNG is enough
    return pct is None or random.randint(1, 100) <= pct


class FaultInjection(Plugin):
    name = "fault-injection"
    priority = 11000
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.abort is None and conf.delay is None:
            raise PluginConfigError("", "one of abort and delay is required")
        self.abort_vars = self.delay_vars = None
        if conf.abort is not None:
            a = conf.abort
            if not 200 <= a.http_status <= 599:
                raise PluginConfigError("abort.http_status", "must be between 200 and 599")
            _pct(a.percentage, "abort.percentage")
            self.body = _vars.compile_template(a.body, "abort.body") if a.body is not None else None
            self.headers: list[tuple[str, Callable[[Request], str]]] = []
            for name, value in (a.headers or {}).items():
                if not _HEADER_NAME_RE.match(name) or "\r" in value or "\n" in value:
                    raise PluginConfigError(f"abort.headers.{name}", "invalid header")
                self.headers.append((name, _vars.compile_template(value, f"abort.headers.{name}")))
            self.abort_vars = _any_of(a.vars, "abort.vars")
        if conf.delay is not None:
            d = conf.delay
            if not 0 <= d.duration <= MAX_DELAY:
                raise PluginConfigError("delay.duration", f"must be between 0 and {MAX_DELAY:g}")
            _pct(d.percentage, "delay.percentage")
            self.delay_vars = _any_of(d.vars, "delay.vars")

    async def rewrite(self, req: Request) -> Response | None:
        d = self.conf.delay
        if (
            d is not None
            and (self.delay_vars is None or self.delay_vars(req))
            and _sampled(d.percentage)
        ):
            await trio.sleep(d.duration)
        a = self.conf.abort
        if (
            a is not None
            and (self.abort_vars is None or self.abort_vars(req))
            and _sampled(a.percentage)
        ):
            extra = [(n, t(req).replace("\r", "").replace("\n", "")) for n, t in self.headers]
            body = self.body(req).encode() if self.body is not None else None
            return _reply.reply(a.http_status, body, extra, ct="text/plain")
        return None
