"""Cross-object validation of a decoded ``Config``: every problem, each with its path.

The Structs in ``edge.config.model`` guarantee types; this module checks what types
cannot say: references between objects, duplicate ids, ranges, regexes, addresses,
secret references. It is pure (no IO) and never stops at the first problem.

Route conflicts: two enabled routes with the same hosts, URIs, methods, vars,
remote_addrs and priority are an ERROR, because the later one can never match and
that is always a configuration mistake rather than an intent.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from edge import secrets
from edge.config.model import (
    SSL,
    Checks,
    Config,
    Consumer,
    Id,
    Route,
    Timeout,
    UpstreamSpec,
    obj_id,
)
from edge.expr import ExprError, compile_expr
from edge.upstream.balancer import hash_key_getter
from edge.upstream.model import node_specs

Problems = list[tuple[str, str]]

USERNAME_RE = re.compile(r"[a-zA-Z0-9_\-]+")
# RFC 1123 labels; a leading "*." wildcard is handled separately
HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_\-]{0,61}[a-z0-9_])?)*\.?"
)
SHA256_RE = re.compile(r"[0-9a-f]{64}")
METHODS = frozenset(
    {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}
)
SECRET_PREFIXES = secrets.PREFIXES
REF_FORMS = "$env://NAME, $file:///path, $aws-sm://name#key or $gcp-sm://projects/..."
MAX_URI_LEN = 4096  # APISIX's limit on a route uri
HEALTH_COUNTER_MAX = 254  # APISIX: successes/failures counters are 1..254


def auto_id(kind: str, index: int) -> str:
    """The id given to an object the file left without one."""
    return f"{kind}-{index}"


def object_id(value: Id | None, kind: str, index: int) -> str:
    sid = obj_id(value)
    return sid if sid is not None else auto_id(kind, index)


def _dupes(
    problems: Problems, section: str, field: str, values: Iterable[tuple[int, str | None]]
) -> dict[str, int]:
    """Index of first occurrence by value; later duplicates are problems."""
    seen: dict[str, int] = {}
    for i, v in values:
        if v is None:
            continue
        if v in seen:
            problems.append(
                (f"{section}[{i}].{field}", f"duplicate {field} '{v}' (also {section}[{seen[v]}])")
            )
        else:
            seen[v] = i
    return seen


def is_secret_ref(value: str) -> bool:
    return value.startswith(SECRET_PREFIXES) and len(value) > len("$env://")


def looks_like_private_key(value: str) -> bool:
    return "-----BEGIN" in value and "PRIVATE KEY" in value


def check_secret(problems: Problems, path: str, value: str | None, what: str) -> None:
    if value is None or value == "":
        return
    if looks_like_private_key(value):
        problems.append(
            (
                path,
                f"a PEM private key in clear is not allowed in a configuration; give the {what} "
                f"as a secret reference ({REF_FORMS})",
            )
        )
    elif not is_secret_ref(value):
        problems.append((path, f"expected a secret reference ({REF_FORMS}) for the {what}"))


def check_host(problems: Problems, path: str, host: str) -> None:
    h = host.lower()
    name = h[2:] if h.startswith("*.") else h
    if not name or "*" in name or not HOSTNAME_RE.fullmatch(name):
        problems.append((path, f"invalid host '{host}' (a name, or '*.' followed by a name)"))


def check_uri(problems: Problems, path: str, uri: str) -> None:
    if not uri.startswith("/"):
        problems.append((path, f"uri must start with '/', got '{uri}'"))
    elif len(uri) > MAX_URI_LEN:
        problems.append((path, f"uri longer than {MAX_URI_LEN} characters"))
    elif "*" in uri[:-1]:
        problems.append((path, "'*' is only allowed at the end of a uri (a prefix match)"))


def check_cidr(problems: Problems, path: str, value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        problems.append((path, f"invalid IP address or CIDR '{value}'"))


def check_timeout(problems: Problems, path: str, t: Timeout | None) -> None:
    if t is None:
        return
    for field in ("connect", "send", "read"):
        if not getattr(t, field) > 0:
            problems.append((f"{path}.{field}", "must be > 0 seconds"))


def _positive(problems: Problems, path: str, value: float | None, *, zero_ok: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not zero_ok):
        problems.append((path, "must be >= 0" if zero_ok else "must be > 0"))


def check_checks(problems: Problems, path: str, checks: Checks) -> None:
    a = checks.active
    if a is not None:
        p = f"{path}.active"
        _positive(problems, f"{p}.timeout", a.timeout)
        if not 1 <= a.concurrency <= 1000:
            problems.append((f"{p}.concurrency", "must be between 1 and 1000"))
        if not a.http_path.startswith("/"):
            problems.append((f"{p}.http_path", "must start with '/'"))
        if a.port is not None and not 1 <= a.port <= 65535:
            problems.append((f"{p}.port", f"port {a.port} out of range 1-65535"))
        for i, h in enumerate(a.req_headers):
            if ":" not in h:
                problems.append((f"{p}.req_headers[{i}]", "expected 'Name: value'"))
        _positive(problems, f"{p}.healthy.interval", a.healthy.interval)
        _positive(problems, f"{p}.unhealthy.interval", a.unhealthy.interval)
        _counters(problems, f"{p}.healthy", {"successes": a.healthy.successes})
        _counters(
            problems,
            f"{p}.unhealthy",
            {
                "http_failures": a.unhealthy.http_failures,
                "tcp_failures": a.unhealthy.tcp_failures,
                "timeouts": a.unhealthy.timeouts,
            },
        )
        _statuses(problems, f"{p}.healthy.http_statuses", a.healthy.http_statuses)
        _statuses(problems, f"{p}.unhealthy.http_statuses", a.unhealthy.http_statuses)
    ps = checks.passive
    if ps is not None:
        p = f"{path}.passive"
        if a is None:
            problems.append(
                (
                    p,
                    "passive checks need active checks too "
                    "(only an active check brings a node back)",
                )
            )
        _counters(problems, f"{p}.healthy", {"successes": ps.healthy.successes})
        _counters(
            problems,
            f"{p}.unhealthy",
            {
                "http_failures": ps.unhealthy.http_failures,
                "tcp_failures": ps.unhealthy.tcp_failures,
                "timeouts": ps.unhealthy.timeouts,
            },
        )
        _statuses(problems, f"{p}.healthy.http_statuses", ps.healthy.http_statuses)
        _statuses(problems, f"{p}.unhealthy.http_statuses", ps.unhealthy.http_statuses)


def _counters(problems: Problems, path: str, values: dict[str, int]) -> None:
    for field, v in values.items():
        # 0 disables that kind of counting, as in APISIX
        if not 0 <= v <= HEALTH_COUNTER_MAX:
            problems.append((f"{path}.{field}", f"must be between 0 and {HEALTH_COUNTER_MAX}"))


def _statuses(problems: Problems, path: str, statuses: list[int]) -> None:
    for i, s in enumerate(statuses):
        if not 200 <= s <= 599:
            problems.append((f"{path}[{i}]", f"HTTP status {s} out of range 200-599"))


def check_upstream(problems: Problems, path: str, up: UpstreamSpec) -> None:
    try:
        nodes = node_specs(up)
    except ValueError as e:
        problems.append((f"{path}.nodes", str(e)))
        nodes = []
    else:
        if not nodes:
            problems.append((f"{path}.nodes", "an upstream needs at least one node"))
    for i, n in enumerate(nodes):
        np = f"{path}.nodes[{i}]"
        if not n.host:
            problems.append((f"{np}.host", "empty host"))
        if n.port is not None and not 1 <= n.port <= 65535:
            problems.append((f"{np}.port", f"port {n.port} out of range 1-65535"))
        if n.weight < 0:
            problems.append((f"{np}.weight", "weight must be >= 0"))
    if nodes and all(n.weight <= 0 for n in nodes):
        problems.append((f"{path}.nodes", "every node has weight 0: no node could ever be chosen"))
    if up.retries is not None and up.retries < 0:
        problems.append((f"{path}.retries", "must be >= 0"))
    _positive(problems, f"{path}.retry_timeout", up.retry_timeout, zero_ok=True)
    check_timeout(problems, f"{path}.timeout", up.timeout)
    k = up.keepalive_pool
    if k.size < 0:
        problems.append((f"{path}.keepalive_pool.size", "must be >= 0"))
    _positive(problems, f"{path}.keepalive_pool.idle_timeout", k.idle_timeout, zero_ok=True)
    if k.requests < 1:
        problems.append((f"{path}.keepalive_pool.requests", "must be >= 1"))
    if up.pass_host == "rewrite" and not up.upstream_host:
        problems.append((f"{path}.upstream_host", "required when pass_host is 'rewrite'"))
    if up.type == "chash":
        try:
            hash_key_getter(up.hash_on, up.key)
        except ValueError as e:
            problems.append((f"{path}.key", str(e)))
    if up.tls is not None:
        if (up.tls.client_cert is None) != (up.tls.client_key is None):
            problems.append((f"{path}.tls", "client_cert and client_key go together"))
        check_secret(problems, f"{path}.tls.client_key", up.tls.client_key, "client key")
    if up.checks is not None:
        check_checks(problems, f"{path}.checks", up.checks)


def check_plugin_names(
    problems: Problems, path: str, plugins: dict[str, Any] | None, known: frozenset[str] | None
) -> None:
    if not plugins or known is None:
        return
    for name in plugins:
        if name not in known:
            problems.append((f"{path}.{name}", f"unknown plugin '{name}'"))


def _ref(problems: Problems, path: str, value: Id | None, known: dict[str, int], what: str) -> None:
    sid = obj_id(value)
    if sid is not None and sid not in known:
        problems.append((path, f"unknown {what} '{sid}'"))


def _one_or_many(
    problems: Problems,
    p: str,
    name: str,
    one: str | None,
    many: list[str] | None,
    check: Callable[[Problems, str, str], None],
) -> None:
    """APISIX's ``x`` / ``xs`` pairs (uri/uris, host/hosts...): one of them, each checked."""
    if one is not None and many is not None:
        problems.append((p, f"set {name} or {name}s, not both"))
    if one is not None:
        check(problems, f"{p}.{name}", one)
    for j, v in enumerate(many or []):
        check(problems, f"{p}.{name}s[{j}]", v)


def route_signature(r: Route) -> tuple[Any, ...]:
    """What decides whether a route matches, in canonical form (for conflict checks)."""
    hosts = r.hosts or ([r.host] if r.host else ())
    uris = r.uris or ([r.uri] if r.uri else ())
    remotes = r.remote_addrs or ([r.remote_addr] if r.remote_addr else ())
    return (
        tuple(sorted(h.lower() for h in hosts)),
        tuple(sorted(uris)),
        tuple(sorted({m.upper() for m in r.methods})) if r.methods else (),
        json.dumps(r.vars, sort_keys=True) if r.vars else "",
        tuple(sorted(remotes)),
        r.priority,
    )


def check_route(
    problems: Problems,
    i: int,
    r: Route,
    refs: dict[str, dict[str, int]],
    known: frozenset[str] | None,
) -> None:
    p = f"routes[{i}]"
    if r.uri is None and not r.uris:
        problems.append((f"{p}.uri", "a route needs uri or uris"))
    _one_or_many(problems, p, "uri", r.uri, r.uris, check_uri)
    _one_or_many(problems, p, "host", r.host, r.hosts, check_host)
    _one_or_many(problems, p, "remote_addr", r.remote_addr, r.remote_addrs, check_cidr)
    for j, m in enumerate(r.methods or []):
        if m.upper() not in METHODS:
            problems.append((f"{p}.methods[{j}]", f"unknown method '{m}'"))
    if r.vars is not None:
        try:
            compile_expr(r.vars)
        except ExprError as e:
            problems.append((f"{p}.vars{e.where}", e.message))
    if r.upstream is not None and r.upstream_id is not None:
        problems.append((p, "set upstream or upstream_id, not both"))
    if (
        not r.plugins
        and r.plugin_config_id is None
        and r.upstream is None
        and r.upstream_id is None
        and r.service_id is None
    ):
        problems.append(
            (
                p,
                "a route needs at least one of plugins, plugin_config_id, upstream, "
                "upstream_id, service_id",
            )
        )
    if r.upstream is not None:
        check_upstream(problems, f"{p}.upstream", r.upstream)
    _ref(problems, f"{p}.upstream_id", r.upstream_id, refs["upstreams"], "upstream")
    _ref(problems, f"{p}.service_id", r.service_id, refs["services"], "service")
    _ref(
        problems,
        f"{p}.plugin_config_id",
        r.plugin_config_id,
        refs["plugin_configs"],
        "plugin_config",
    )
    check_timeout(problems, f"{p}.timeout", r.timeout)
    check_plugin_names(problems, f"{p}.plugins", r.plugins, known)


def check_consumer(
    problems: Problems,
    i: int,
    c: Consumer,
    refs: dict[str, dict[str, int]],
    known: frozenset[str] | None,
) -> None:
    p = f"consumers[{i}]"
    if not USERNAME_RE.fullmatch(c.username):
        problems.append(
            (f"{p}.username", f"invalid username '{c.username}' (allowed: a-z A-Z 0-9 _ -)")
        )
    _ref(problems, f"{p}.group_id", c.group_id, refs["consumer_groups"], "consumer group")
    check_plugin_names(problems, f"{p}.plugins", c.plugins, known)


def check_ssl(problems: Problems, i: int, s: SSL) -> None:
    p = f"ssls[{i}]"
    if not s.snis:
        problems.append((f"{p}.snis", "at least one SNI is required"))
    for j, sni in enumerate(s.snis):
        # "*" alone marks the default certificate, served when no other SNI matches
        if sni != "*":
            check_host(problems, f"{p}.snis[{j}]", sni)
    if not s.cert:
        problems.append((f"{p}.cert", "required"))
    if not s.key:
        problems.append((f"{p}.key", f"required (a secret reference: {REF_FORMS})"))
    check_secret(problems, f"{p}.key", s.key, "private key")
    if (s.certs is None) != (s.keys is None) or len(s.certs or []) != len(s.keys or []):
        problems.append((p, "certs and keys must have the same length"))
    for j, k in enumerate(s.keys or []):
        check_secret(problems, f"{p}.keys[{j}]", k, "private key")
    if s.client is not None and not 0 <= s.client.depth <= 16:
        problems.append((f"{p}.client.depth", "must be between 0 and 16"))


def index_ids(objs: Sequence[Any], kind: str) -> list[tuple[int, str]]:
    return [(i, object_id(o.id, kind, i)) for i, o in enumerate(objs)]


def validate_config(
    config: Config,
    plugin_names: frozenset[str] | None = None,
    extra_names: frozenset[str] = frozenset(),
) -> Problems:
    """Every cross-object problem of ``config``. ``plugin_names`` are the built-in
    plugin names, ``extra_names`` those supplied for this snapshot only (the WASM
    host's); declared WASM plugin names are added here. ``None`` skips the check."""
    problems: Problems = []
    refs = {
        "upstreams": _dupes(problems, "upstreams", "id", index_ids(config.upstreams, "upstream")),
        "services": _dupes(problems, "services", "id", index_ids(config.services, "service")),
        "plugin_configs": _dupes(
            problems, "plugin_configs", "id", index_ids(config.plugin_configs, "plugin_config")
        ),
        "consumer_groups": _dupes(
            problems, "consumer_groups", "id", index_ids(config.consumer_groups, "consumer_group")
        ),
        "tenants": _dupes(
            problems, "tenants", "id", [(i, obj_id(t.id)) for i, t in enumerate(config.tenants)]
        ),
    }
    _dupes(problems, "routes", "id", index_ids(config.routes, "route"))
    _dupes(problems, "global_rules", "id", index_ids(config.global_rules, "global_rule"))
    _dupes(problems, "ssls", "id", index_ids(config.ssls, "ssl"))
    _dupes(
        problems, "consumers", "username", [(i, c.username) for i, c in enumerate(config.consumers)]
    )
    wasm_names = _dupes(
        problems, "wasm_plugins", "name", [(i, w.name) for i, w in enumerate(config.wasm_plugins)]
    )

    known: frozenset[str] | None = None
    if plugin_names is not None:
        for name, i in wasm_names.items():
            if name in plugin_names:
                problems.append(
                    (f"wasm_plugins[{i}].name", f"'{name}' is the name of a built-in plugin")
                )
        known = plugin_names | extra_names | frozenset(wasm_names)

    for i, u in enumerate(config.upstreams):
        check_upstream(problems, f"upstreams[{i}]", u)

    for i, s in enumerate(config.services):
        p = f"services[{i}]"
        if s.upstream is not None and s.upstream_id is not None:
            problems.append((p, "set upstream or upstream_id, not both"))
        if s.upstream is not None:
            check_upstream(problems, f"{p}.upstream", s.upstream)
        _ref(problems, f"{p}.upstream_id", s.upstream_id, refs["upstreams"], "upstream")
        for j, h in enumerate(s.hosts or []):
            check_host(problems, f"{p}.hosts[{j}]", h)
        check_plugin_names(problems, f"{p}.plugins", s.plugins, known)

    signatures: dict[tuple[Any, ...], int] = {}
    for i, r in enumerate(config.routes):
        check_route(problems, i, r, refs, known)
        if r.status == 1:
            sig = route_signature(r)
            if sig in signatures:
                problems.append(
                    (
                        f"routes[{i}]",
                        f"same hosts, uris, methods, vars, remote_addrs and priority as "
                        f"routes[{signatures[sig]}]: it could never match",
                    )
                )
            else:
                signatures[sig] = i

    for i, c in enumerate(config.consumers):
        check_consumer(problems, i, c, refs, known)
    for section in ("plugin_configs", "global_rules", "consumer_groups"):
        for i, obj in enumerate(getattr(config, section)):
            check_plugin_names(problems, f"{section}[{i}].plugins", obj.plugins, known)
    for i, s in enumerate(config.ssls):
        check_ssl(problems, i, s)
    for i, t in enumerate(config.tenants):
        lim = t.limits
        p = f"tenants[{i}].limits"
        _positive(problems, f"{p}.memory_mb", lim.memory_mb)
        _positive(problems, f"{p}.cpu_ms_per_call", lim.cpu_ms_per_call)
        _positive(problems, f"{p}.max_body_bytes", lim.max_body_bytes)
    for i, w in enumerate(config.wasm_plugins):
        p = f"wasm_plugins[{i}]"
        if not w.name or any(ch.isspace() for ch in w.name):
            problems.append((f"{p}.name", "a non-empty name without spaces is required"))
        if not w.file or w.file.startswith("/") or ".." in w.file.split("/"):
            problems.append((f"{p}.file", "must be a relative path inside the bundle"))
        if not SHA256_RE.fullmatch(w.sha256.lower()):
            problems.append((f"{p}.sha256", "must be 64 hex digits"))
        _ref(problems, f"{p}.tenant", w.tenant, refs["tenants"], "tenant")
        for j, u in enumerate(w.http_call_upstreams):
            _ref(problems, f"{p}.http_call_upstreams[{j}]", u, refs["upstreams"], "upstream")
        if w.limits is not None:
            _positive(problems, f"{p}.limits.memory_mb", w.limits.memory_mb)
            _positive(problems, f"{p}.limits.cpu_ms_per_call", w.limits.cpu_ms_per_call)
            _positive(problems, f"{p}.limits.max_body_bytes", w.limits.max_body_bytes)
    return problems
