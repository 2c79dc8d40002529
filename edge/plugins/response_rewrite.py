"""response-rewrite (APISIX priority 899): change the response going to the client.

``status_code``, ``headers`` ({add: ["Name: value"], set: {Name: value}, remove: [..]}
or, deprecated, a flat {Name: value}) with ``$var`` values, and either ``body``
(optionally ``body_base64``) or ``filters`` (regex replacements over the whole body).
``vars`` limits all of it to matching requests. Rewriting the body drops
``Content-Length`` (and ``ETag``/``Content-MD5``), so the server re-frames it.
Filters buffer the body up to ``MAX_FILTER_BODY``; past that the body passes unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

import msgspec

from edge.context import Request, Response
from edge.plugins import _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.plugins.proxy_rewrite import _HEADER_NAME_RE, lua_replacement

MAX_FILTER_BODY = 8 * 1024 * 1024
BODY_HEADERS = frozenset({"content-length", "etag", "content-md5"})
CTX = "response-rewrite"


class Filter(msgspec.Struct, forbid_unknown_fields=True):
    regex: str
    replace: str
    scope: str = "once"
    options: str = "jo"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    status_code: int | None = None
    body: str | None = None
    body_base64: bool = False
    headers: dict[str, Any] | None = None
    filters: list[Filter] | None = None
    vars: list[Any] | None = None


Tmpl = Callable[[Request], str]


class _Buf:
    __slots__ = ("parts", "size", "overflow")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.overflow = False


class ResponseRewrite(Plugin):
    name = "response-rewrite"
    priority = 899
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if conf.status_code is not None and not 200 <= conf.status_code <= 598:
            raise PluginConfigError("status_code", "must be between 200 and 598")
        if conf.body is not None and conf.filters:
            raise PluginConfigError("filters", "body and filters cannot be used together")
        self.body: bytes | None = None
        if conf.body is not None:
            if conf.body_base64:
                try:
                    self.body = base64.b64decode(conf.body, validate=True)
                except (binascii.Error, ValueError):
                    raise PluginConfigError(
                        "body", "body_base64 is set but body is not base64"
                    ) from None
            else:
                self.body = conf.body.encode()
        self.filters: list[tuple[re.Pattern[bytes], bytes, int]] = []
        for i, f in enumerate(conf.filters or ()):
            if f.scope not in ("once", "global"):
                raise PluginConfigError(f"filters[{i}].scope", "must be once or global")
            if not f.regex:
                raise PluginConfigError(f"filters[{i}].regex", "must not be empty")
            flags = re.IGNORECASE if "i" in f.options else 0
            if "m" in f.options:
                flags |= re.MULTILINE
            if "s" in f.options:
                flags |= re.DOTALL
            rx = _vars.regex(f.regex.encode(), f"filters[{i}].regex", flags)
            rep = lua_replacement(f.replace).encode()
            try:
                rx.sub(rep, b"")
            except (re.error, IndexError) as e:
                raise PluginConfigError(
                    f"filters[{i}].replace", f"invalid replacement: {e}"
                ) from None
            self.filters.append((rx, rep, 1 if f.scope == "once" else 0))
        self.match = _vars.compile_expr(conf.vars, "vars") if conf.vars else None
        self.add: list[tuple[str, Tmpl]] = []
        self.set: list[tuple[str, Tmpl]] = []
        self.remove: frozenset[str] = frozenset()
        h = conf.headers or {}
        if h and set(h) <= {"add", "set", "remove"}:
            for i, item in enumerate(h.get("add") or []):
                name, sep, value = str(item).partition(":")
                if not sep or not _HEADER_NAME_RE.match(name.strip()):
                    raise PluginConfigError(f"headers.add[{i}]", "expected 'Name: value'")
                self.add.append((name.strip(), self._tmpl(value.strip(), f"headers.add[{i}]")))
            for name, value in (h.get("set") or {}).items():
                self.set.append(
                    (
                        self._name(name, f"headers.set.{name}"),
                        self._tmpl(str(value), f"headers.set.{name}"),
                    )
                )
            self.remove = frozenset(
                self._name(n, f"headers.remove[{i}]").lower()
                for i, n in enumerate(h.get("remove") or [])
            )
        else:
            for name, value in h.items():
                self.set.append(
                    (self._name(name, f"headers.{name}"), self._tmpl(str(value), f"headers.{name}"))
                )
        self.rewrites_body = self.body is not None or bool(self.filters)

    @staticmethod
    def _name(name: str, field: str) -> str:
        if not _HEADER_NAME_RE.match(name):
            raise PluginConfigError(field, "invalid header name")
        return name

    @staticmethod
    def _tmpl(value: str, field: str) -> Tmpl:
        if "\r" in value or "\n" in value:
            raise PluginConfigError(field, "header value must not contain CR or LF")
        return _vars.compile_template(value, field)

    def header_filter(self, req: Request, resp: Response) -> None:
        if self.match is not None and not self.match(req):
            return
        req.plugin_ctx[CTX] = _Buf() if self.filters else True
        if self.conf.status_code is not None:
            resp.status = self.conf.status_code
        h = resp.headers
        for name, t in self.add:
            h.add(name, t(req).replace("\r", "").replace("\n", ""))
        for name, t in self.set:
            h.set(name, t(req).replace("\r", "").replace("\n", ""))
        if self.remove:
            h.remove_many(self.remove)
        if self.rewrites_body:
            h.remove_many(BODY_HEADERS)
            if resp.local and resp.body is not None:
                resp.body = self._rewrite_whole(resp.body)

    def _rewrite_whole(self, body: bytes) -> bytes:
        if self.body is not None:
            return self.body
        for rx, rep, count in self.filters:
            body = rx.sub(rep, body, count=count)
        return body

    def body_filter(self, req: Request, resp: Response, chunk: bytes, eof: bool) -> bytes:
        state = req.plugin_ctx.get(CTX)
        if state is None or not self.rewrites_body or (resp.local and resp.body is not None):
            return chunk
        if self.body is not None:
            # the replacement body goes out once, in place of the first chunk
            if state is True:
                req.plugin_ctx[CTX] = False
                return self.body
            return b""
        buf: _Buf = state
        if buf.overflow:
            return chunk
        buf.parts.append(chunk)
        buf.size += len(chunk)
        if buf.size > MAX_FILTER_BODY:
            buf.overflow = True
            out = b"".join(buf.parts)
            buf.parts = []
            return out
        if not eof:
            return b""
        whole = b"".join(buf.parts)
        buf.parts = []
        return self._rewrite_whole(whole)
