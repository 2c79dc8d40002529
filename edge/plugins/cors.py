"""cors (APISIX priority 4000): answer preflights locally, add CORS headers to responses.

Every ``OPTIONS`` request is answered 200 in ``rewrite`` without proxying (as APISIX);
``header_filter`` adds the ``Access-Control-*`` headers when the request's ``Origin``
is allowed, and nothing when it is not (the browser then refuses the response).
"""

from __future__ import annotations

import re

import msgspec

from edge.context import Request, Response
from edge.plugins import _reply, _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

_ORIGINS_RE = re.compile(r"^(\*|\*\*|null|\w+://[^,]+(,\w+://[^,]+)*)$")
ALL_METHODS = "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS,CONNECT,TRACE"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    allow_origins: str = "*"
    allow_methods: str = "*"
    allow_headers: str = "*"
    expose_headers: str | None = None
    max_age: int = 5
    allow_credential: bool = False
    allow_origins_by_regex: list[str] | None = None
    allow_origins_by_metadata: list[str] | None = None
    timing_allow_origins: str | None = None
    timing_allow_origins_by_regex: list[str] | None = None


def _regexes(field: str, pats: list[str] | None) -> list[re.Pattern[str]]:
    # APISIX anchors the origin regexes (ngx.re.find with "jo" over the whole value)
    return [_vars.regex(p, f"{field}[{i}]") for i, p in enumerate(pats or [])]


class Cors(Plugin):
    name = "cors"
    priority = 4000
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not _ORIGINS_RE.match(conf.allow_origins):
            raise PluginConfigError("allow_origins", f"invalid value {conf.allow_origins!r}")
        if conf.allow_credential:
            for f in (
                "allow_origins",
                "allow_methods",
                "allow_headers",
                "expose_headers",
                "timing_allow_origins",
            ):
                if getattr(conf, f) == "*":
                    raise PluginConfigError(
                        f, "you can not set '*' for other option when 'allow_credential' is true"
                    )
        if conf.allow_origins_by_metadata:
            raise PluginConfigError(
                "allow_origins_by_metadata", "plugin metadata is not supported by edge"
            )
        self.any_origin = conf.allow_origins == "*"
        self.echo_origin = conf.allow_origins == "**"
        self.origins = (
            frozenset(conf.allow_origins.split(","))
            if not (self.any_origin or self.echo_origin)
            else frozenset()
        )
        self.origin_rx = _regexes("allow_origins_by_regex", conf.allow_origins_by_regex)
        self.methods = ALL_METHODS if conf.allow_methods == "**" else conf.allow_methods
        self.echo_headers = conf.allow_headers == "**"
        self.max_age = str(conf.max_age)
        t = conf.timing_allow_origins
        self.timing_any = t == "*"
        self.timing = frozenset(t.split(",")) if t and t not in ("*", "**") else frozenset()
        self.timing_echo = t == "**"
        self.timing_rx = _regexes(
            "timing_allow_origins_by_regex", conf.timing_allow_origins_by_regex
        )

    def rewrite(self, req: Request) -> Response | None:
        if req.method == "OPTIONS":
            # headers come from header_filter, which also runs on local responses
            return _reply.reply(200, None)
        return None

    def _allowed_origin(self, origin: str | None) -> str | None:
        if self.any_origin:
            return "*"
        if self.echo_origin:
            return origin or "*"
        if origin is None:
            return None
        if origin in self.origins:
            return origin
        for rx in self.origin_rx:
            m = rx.match(origin)
            if m and m.end() == len(origin):
                return origin
        return None

    def header_filter(self, req: Request, resp: Response) -> None:
        origin = req.headers.get("origin")
        allow = self._allowed_origin(origin)
        h = resp.headers
        if allow is None:
            return
        c = self.conf
        h.set("Access-Control-Allow-Origin", allow)
        if allow != "*":
            h.add("Vary", "Origin")
        h.set("Access-Control-Allow-Methods", self.methods)
        h.set("Access-Control-Max-Age", self.max_age)
        if c.expose_headers is not None:
            h.set("Access-Control-Expose-Headers", c.expose_headers)
        if self.echo_headers:
            rh = req.headers.get("access-control-request-headers")
            if rh is not None:
                h.set("Access-Control-Allow-Headers", rh)
        else:
            h.set("Access-Control-Allow-Headers", c.allow_headers)
        if c.allow_credential:
            h.set("Access-Control-Allow-Credentials", "true")
        if origin is not None and (
            self.timing_any or self.timing_echo or self.timing or self.timing_rx
        ):
            if self.timing_any:
                h.set("Timing-Allow-Origin", "*")
            elif (
                self.timing_echo
                or origin in self.timing
                or any((m := rx.match(origin)) and m.end() == len(origin) for rx in self.timing_rx)
            ):
                h.set("Timing-Allow-Origin", origin)
