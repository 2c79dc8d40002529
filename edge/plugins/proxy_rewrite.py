"""proxy-rewrite (APISIX priority 1008): change what is sent upstream.

``uri`` (a ``$var`` template) wins over ``regex_uri`` (pattern/replacement pairs; the
first pattern that matches the path applies, ``$1``/``${1}`` name its groups). The
original query string is appended as APISIX does. Rendered paths are percent-encoded
(except reserved characters and existing escapes), so a client value substituted
into the path can never inject a space, CR or LF into the request line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import msgspec

from edge.context import Request, Response
from edge.plugins import _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

METHODS = ("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE",
           "PROPFIND", "LOCK", "UNLOCK", "PATCH", "TRACE")  # fmt: skip
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_GROUP_RE = re.compile(r"\$(\d+)|\$\{(\d+)\}")


class HeaderOps(msgspec.Struct, forbid_unknown_fields=True):
    add: dict[str, str] | None = None
    set: dict[str, str] | None = None
    remove: list[str] | None = None


class Config(msgspec.Struct, forbid_unknown_fields=True):
    uri: str | None = None
    method: str | None = None
    regex_uri: list[str] | None = None
    host: str | None = None
    # APISIX accepts {add, set, remove} or, deprecated, a flat {name: value} (set)
    headers: dict[str, Any] | None = None
    use_real_request_uri_unsafe: bool = False


def lua_replacement(rep: str) -> str:
    """``$1`` / ``${1}`` (nginx) -> ``\\g<1>`` (Python); a literal backslash stays one."""
    rep = rep.replace("\\", "\\\\")
    return _GROUP_RE.sub(lambda m: f"\\g<{m.group(1) or m.group(2)}>", rep)


def compile_header_ops(
    raw: dict[str, Any] | None, field: str
) -> tuple[
    list[tuple[str, Callable[[Request], str]]],
    list[tuple[str, Callable[[Request], str]]],
    list[str],
]:
    if not raw:
        return [], [], []
    if set(raw) <= {"add", "set", "remove"}:
        try:
            ops = msgspec.convert(raw, HeaderOps)
        except msgspec.ValidationError as e:
            raise PluginConfigError(field, str(e)) from None
        add, set_, remove = ops.add or {}, ops.set or {}, ops.remove or []
    else:
        add, set_, remove = {}, raw, []
    out: list[list[tuple[str, Callable[[Request], str]]]] = [[], []]
    for i, (kind, table) in enumerate((("add", add), ("set", set_))):
        for name, value in table.items():
            if not _HEADER_NAME_RE.match(name):
                raise PluginConfigError(f"{field}.{kind}.{name}", "invalid header name")
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise PluginConfigError(
                    f"{field}.{kind}.{name}", "value must be a string without CR/LF"
                )
            out[i].append((name, _vars.compile_template(value, f"{field}.{kind}.{name}")))
    for i, name in enumerate(remove):
        if not _HEADER_NAME_RE.match(name):
            raise PluginConfigError(f"{field}.remove[{i}]", "invalid header name")
    return out[0], out[1], [n.lower() for n in remove]


def _clean(value: str) -> str:
    # a substituted client value must not split the header
    return value.replace("\r", "").replace("\n", "") if ("\r" in value or "\n" in value) else value


class ProxyRewrite(Plugin):
    name = "proxy-rewrite"
    priority = 1008
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.method is not None and conf.method not in METHODS:
            raise PluginConfigError("method", f"unknown method {conf.method!r}")
        if conf.uri is not None and not conf.uri.startswith(("/", "$")):
            raise PluginConfigError("uri", "must start with / or a $variable")
        self.uri = _vars.compile_template(conf.uri, "uri") if conf.uri is not None else None
        self.regex: list[tuple[re.Pattern[str], str]] = []
        if conf.regex_uri is not None:
            if len(conf.regex_uri) < 2 or len(conf.regex_uri) % 2:
                raise PluginConfigError("regex_uri", "expected [pattern, replacement, ...] pairs")
            for i in range(0, len(conf.regex_uri), 2):
                rx = _vars.regex(conf.regex_uri[i], f"regex_uri[{i}]")
                rep = lua_replacement(conf.regex_uri[i + 1])
                if max((int(g) for g in re.findall(r"\\g<(\d+)>", rep)), default=0) > rx.groups:
                    raise PluginConfigError(
                        f"regex_uri[{i + 1}]", "refers to a group the pattern does not have"
                    )
                self.regex.append((rx, rep))
        if conf.host is not None and (not conf.host or any(c in conf.host for c in "\r\n /")):
            raise PluginConfigError("host", "invalid host")
        self.add, self.set, self.remove = compile_header_ops(conf.headers, "headers")
        self.remove_set = frozenset(self.remove)

    def rewrite(self, req: Request) -> Response | None:
        c = self.conf
        if not c.use_real_request_uri_unsafe and (self.uri is not None or self.regex):
            path = req.path
            if self.uri is not None:
                path = self.uri(req)
            else:
                for rx, rep in self.regex:
                    if rx.search(path):
                        path = rx.sub(rep, path, count=1)
                        break
            base, q, extra = path.partition("?")
            new = quote(base, safe=_PATH_SAFE) or "/"
            if q:
                new += "?" + quote(extra, safe=_PATH_SAFE + "?=&")
            if req.query:
                new += ("&" if q else "?") + req.query
            req.set_uri(new)
        if c.method is not None:
            req.method = c.method
        if c.host is not None:
            req.headers.set("Host", c.host)
            req.host = c.host
        h = req.headers
        # APISIX's order: add, then set, then remove
        for name, tmpl in self.add:
            h.add(name, _clean(tmpl(req)))
        for name, tmpl in self.set:
            h.set(name, _clean(tmpl(req)))
        if self.remove_set:
            h.remove_many(self.remove_set)
        return None
