"""nginx/APISIX variables, compiled once into getters.

``compile_var("http_x_api_key")`` returns a function of the request that reads the
value with one attribute or dict lookup; the name is parsed at compile time only.
Every getter returns ``str`` or ``None`` (unset). An unknown name raises
``UnknownVar`` so a typo fails ``edge validate`` instead of silently matching nothing.

Variables set at run time (PROXY protocol TLVs, JWT claims...) live in ``req.vars``;
they are accepted for names with a registered prefix (``RUNTIME_PREFIXES``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from edge.context import Request

Getter = Callable[[Request], str | None]


class UnknownVar(ValueError):
    """The variable name is not one edge knows."""


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _route_attr(attr: str) -> Getter:
    def get(req: Request) -> str | None:
        r = req.route
        return None if r is None else _opt_str(getattr(r, attr, None))

    return get


def _service_attr(attr: str) -> Getter:
    def get(req: Request) -> str | None:
        s = req.service
        if s is None and req.route is not None:
            s = getattr(req.route, "service", None)
        return None if s is None else _opt_str(getattr(s, attr, None))

    return get


def _consumer_attr(attr: str) -> Getter:
    def get(req: Request) -> str | None:
        c = req.consumer
        return None if c is None else _opt_str(getattr(c, attr, None))

    return get


# the fixed variables; each getter is written out so the hot path is one lookup
SIMPLE: dict[str, Getter] = {
    "uri": lambda r: r.path,
    "request_uri": lambda r: r.uri,
    "host": lambda r: r.host or None,
    "remote_addr": lambda r: r.client_addr,
    "binary_remote_addr": lambda r: r.client_addr,
    "remote_port": lambda r: str(r.client_port),
    # the TCP peer before PROXY protocol / real-ip replaced the client address
    "realip_remote_addr": lambda r: r.conn.peer_addr,
    "realip_remote_port": lambda r: str(r.conn.peer_port),
    "server_addr": lambda r: r.conn.server_addr,
    "server_port": lambda r: str(r.conn.server_port),
    "scheme": lambda r: r.scheme,
    "https": lambda r: "on" if r.scheme == "https" else "",
    "ssl_server_name": lambda r: r.conn.sni,
    "request_method": lambda r: r.method,
    "method": lambda r: r.method,
    "server_protocol": lambda r: "HTTP/" + r.version,
    "args": lambda r: r.query,
    "query_string": lambda r: r.query,
    "is_args": lambda r: "?" if r.query else "",
    "request_id": lambda r: r.request_id or None,
    "route_id": _route_attr("id"),
    "route_name": _route_attr("name"),
    "service_id": _service_attr("id"),
    "service_name": _service_attr("name"),
    "consumer_name": _consumer_attr("username"),
    "consumer_group_id": _consumer_attr("group_id"),
    "matched_uri": lambda r: r.matched_uri or None,
    "matched_host": lambda r: r.matched_host or None,
    "upstream_addr": lambda r: r.upstream_addr or None,
    "upstream_status": lambda r: str(r.upstream_status) if r.upstream_status else None,
    "status": lambda r: str(r.status) if r.status else None,
    "content_length": lambda r: r.headers.get("content-length"),
    "content_type": lambda r: r.headers.get("content-type"),
}

# names set at run time into ``req.vars`` by other parts of edge (mutable: see register)
RUNTIME_PREFIXES: list[str] = ["proxy_protocol_tlv_", "jwt_claim_", "wasm_"]

# characters allowed in the dynamic part of http_/arg_/cookie_ names
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+")


def register_runtime_prefix(prefix: str) -> None:
    """Allow ``<prefix>...`` names, read from ``req.vars`` (set by a plugin or listener)."""
    if prefix not in RUNTIME_PREFIXES:
        RUNTIME_PREFIXES.append(prefix)


def compile_var(name: str) -> Getter:
    """A getter for variable ``name`` (without ``$``); raises ``UnknownVar``."""
    if not isinstance(name, str) or not name:
        raise UnknownVar(f"variable name must be a non-empty string, got {name!r}")
    simple = SIMPLE.get(name)
    if simple is not None:
        return simple
    for prefix, kind in (("http_", "http"), ("arg_", "arg"), ("cookie_", "cookie")):
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            if not rest or not _NAME_RE.fullmatch(rest):
                raise UnknownVar(f"bad variable name '{name}'")
            return _dynamic(kind, rest)
    if name.startswith("proxy_protocol_tlv_"):
        tlv = name[len("proxy_protocol_tlv_") :]

        def get_tlv(req: Request) -> str | None:
            v = req.vars.get(name)
            if v is None:
                v = req.conn.proxy_tlvs.get(tlv)
            return None if v is None else str(v)

        return get_tlv
    for prefix in RUNTIME_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):

            def get_runtime(req: Request) -> str | None:
                v = req.vars.get(name)
                return None if v is None else v if isinstance(v, str) else str(v)

            return get_runtime
    raise UnknownVar(f"unknown variable '{name}'")


def _dynamic(kind: str, rest: str) -> Getter:
    if kind == "http":
        # nginx: $http_x_api_key reads header X-Api-Key
        hname = rest.lower().replace("_", "-")
        return lambda r: r.headers.get(hname)
    if kind == "arg":
        return lambda r: r.args.get(rest)
    return lambda r: r.cookies.get(rest)


_TEMPLATE_RE = re.compile(r"\$(?:\{([A-Za-z0-9_.\-]+)\}|([A-Za-z0-9_]+))")


def compile_template(template: str) -> Callable[[Request], str]:
    """``"$remote_addr-${http_x_id}"`` -> a function of the request; unset vars give "".

    Used for ``vars_combinations`` hash keys and plugin keys. A template with no
    variable compiles to a constant. Raises ``UnknownVar``.
    """
    parts: list[str | Getter] = []
    pos = 0
    for m in _TEMPLATE_RE.finditer(template):
        if m.start() > pos:
            parts.append(template[pos : m.start()])
        parts.append(compile_var(m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(template):
        parts.append(template[pos:])
    if not any(callable(p) for p in parts):
        const = template
        return lambda _r: const
    if len(parts) == 1:
        only = parts[0]
        assert callable(only)
        return lambda r: only(r) or ""

    def render(req: Request) -> str:
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
            else:
                v = p(req)
                if v:
                    out.append(v)
        return "".join(out)

    return render
