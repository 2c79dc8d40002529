"""The bundle configuration as typed data: APISIX's objects, field names and defaults.

These Structs only say what *shape* a configuration has (types, defaults, unknown
fields rejected). Ranges and cross-references are checked by ``edge.config.validate``
so that every problem of a file is reported at once, and the snapshot compiler
(``edge.snapshot``) turns the result into router tables and balancers.

Ids may be strings or integers in the file (APISIX accepts both); they are compared
as strings everywhere (``obj_id``).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# APISIX ids: string or integer
Id = str | int


class _Obj(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


def obj_id(value: Id | None) -> str | None:
    """The canonical (string) form of an id or id reference."""
    return None if value is None else str(value)


# -- shared pieces ------------------------------------------------------------------


class Timeout(_Obj):
    """Seconds; APISIX's default for each is 60."""

    connect: float = 60.0
    send: float = 60.0
    read: float = 60.0


# -- upstreams ------------------------------------------------------------------------


class NodeSpec(_Obj):
    host: str
    port: int | None = None  # unset: 80 for http, 443 for https
    weight: int = 1
    priority: int = 0
    metadata: dict[str, Any] | None = None


class KeepalivePool(_Obj):
    size: int = 320
    idle_timeout: float = 60.0
    requests: int = 1000


class UpstreamTLS(_Obj):
    verify: bool = True
    sni: str | None = None
    client_cert: str | None = None
    client_key: str | None = None  # a secret reference, like SSL.key


class ActiveHealthy(_Obj):
    interval: float = 1.0
    http_statuses: list[int] = msgspec.field(default_factory=lambda: [200, 302])
    successes: int = 2


class ActiveUnhealthy(_Obj):
    interval: float = 1.0
    http_statuses: list[int] = msgspec.field(
        default_factory=lambda: [429, 404, 500, 501, 502, 503, 504, 505]
    )
    http_failures: int = 5
    tcp_failures: int = 2
    timeouts: int = 3


class ActiveCheck(_Obj):
    type: Literal["http", "https", "tcp"] = "http"
    timeout: float = 1.0
    concurrency: int = 10
    http_path: str = "/"
    host: str | None = None
    port: int | None = None
    https_verify_certificate: bool = True
    req_headers: list[str] = msgspec.field(default_factory=list)
    healthy: ActiveHealthy = msgspec.field(default_factory=ActiveHealthy)
    unhealthy: ActiveUnhealthy = msgspec.field(default_factory=ActiveUnhealthy)


def _passive_healthy_statuses() -> list[int]:
    # APISIX: every 2xx and 3xx
    return list(range(200, 400))


class PassiveHealthy(_Obj):
    http_statuses: list[int] = msgspec.field(default_factory=_passive_healthy_statuses)
    successes: int = 5


class PassiveUnhealthy(_Obj):
    http_statuses: list[int] = msgspec.field(default_factory=lambda: [429, 500, 503])
    http_failures: int = 5
    tcp_failures: int = 2
    timeouts: int = 7


class PassiveCheck(_Obj):
    type: Literal["http", "https", "tcp"] = "http"
    healthy: PassiveHealthy = msgspec.field(default_factory=PassiveHealthy)
    unhealthy: PassiveUnhealthy = msgspec.field(default_factory=PassiveUnhealthy)


class Checks(_Obj):
    active: ActiveCheck | None = None
    passive: PassiveCheck | None = None


BalancerType = Literal["roundrobin", "chash", "least_conn", "ewma"]
HashOn = Literal["vars", "header", "cookie", "consumer", "vars_combinations"]


class UpstreamSpec(_Obj):
    id: Id | None = None
    name: str | None = None
    desc: str | None = None
    labels: dict[str, str] | None = None
    type: BalancerType = "roundrobin"
    # APISIX accepts {"host:port": weight} or a list of node objects
    nodes: dict[str, int] | list[NodeSpec] = msgspec.field(default_factory=list)
    hash_on: HashOn = "vars"
    key: str | None = None
    scheme: Literal["http", "https"] = "http"
    pass_host: Literal["pass", "node", "rewrite"] = "pass"
    upstream_host: str | None = None
    retries: int | None = None  # unset: number of nodes - 1
    retry_timeout: float | None = None  # 0 or unset: no limit
    timeout: Timeout | None = None
    keepalive_pool: KeepalivePool = msgspec.field(default_factory=KeepalivePool)
    tls: UpstreamTLS | None = None
    checks: Checks | None = None


# -- routing objects ------------------------------------------------------------------

Plugins = dict[str, Any]


class Route(_Obj):
    id: Id | None = None
    name: str | None = None
    desc: str | None = None
    labels: dict[str, str] | None = None
    uri: str | None = None
    uris: list[str] | None = None
    host: str | None = None
    hosts: list[str] | None = None
    remote_addr: str | None = None
    remote_addrs: list[str] | None = None
    methods: list[str] | None = None
    vars: list[Any] | None = None
    priority: int = 0
    plugins: Plugins | None = None
    plugin_config_id: Id | None = None
    upstream: UpstreamSpec | None = None
    upstream_id: Id | None = None
    service_id: Id | None = None
    timeout: Timeout | None = None
    enable_websocket: bool = False
    status: Literal[0, 1] = 1


class Service(_Obj):
    id: Id | None = None
    name: str | None = None
    desc: str | None = None
    labels: dict[str, str] | None = None
    upstream: UpstreamSpec | None = None
    upstream_id: Id | None = None
    plugins: Plugins | None = None
    hosts: list[str] | None = None
    enable_websocket: bool = False


class Consumer(_Obj):
    username: str
    desc: str | None = None
    labels: dict[str, str] | None = None
    group_id: Id | None = None
    # edge extension: sent upstream as X-Consumer-Custom-ID by the auth plugins
    custom_id: str | None = None
    plugins: Plugins | None = None


class PluginConfig(_Obj):
    id: Id | None = None
    desc: str | None = None
    labels: dict[str, str] | None = None
    plugins: Plugins = msgspec.field(default_factory=dict)


class GlobalRule(_Obj):
    id: Id | None = None
    plugins: Plugins = msgspec.field(default_factory=dict)


class ConsumerGroup(_Obj):
    id: Id | None = None
    name: str | None = None
    desc: str | None = None
    labels: dict[str, str] | None = None
    plugins: Plugins = msgspec.field(default_factory=dict)


# -- TLS, tenants, WASM (used by later issues) ----------------------------------------


class SSLClient(_Obj):
    ca: str
    depth: int = 1


class SSL(_Obj):
    id: Id | None = None
    labels: dict[str, str] | None = None
    snis: list[str] = msgspec.field(default_factory=list)
    cert: str = ""
    # a secret reference (``$env://NAME``, ``$file:///path``), never a PEM key in clear
    key: str = ""
    certs: list[str] | None = None
    keys: list[str] | None = None
    client: SSLClient | None = None
    ssl_protocols: list[Literal["TLSv1.2", "TLSv1.3"]] | None = None
    status: Literal[0, 1] = 1


class TenantLimits(_Obj):
    memory_mb: int = 64
    cpu_ms_per_call: float = 10.0
    max_body_bytes: int = 1048576


class Tenant(_Obj):
    id: Id
    name: str | None = None
    desc: str | None = None
    limits: TenantLimits = msgspec.field(default_factory=TenantLimits)


class WasmLimits(_Obj):
    """A plugin's override of its tenant's limits; unset fields inherit."""

    memory_mb: int | None = None
    cpu_ms_per_call: float | None = None
    max_body_bytes: int | None = None


class WasmPlugin(_Obj):
    name: str
    file: str
    sha256: str
    tenant: Id | None = None
    priority: int = 0
    failure_policy: Literal["fail_closed", "fail_open"] = "fail_closed"
    vm_config: str | dict[str, Any] | None = None
    limits: WasmLimits | None = None
    allowed_capabilities: list[str] | None = None
    http_call_upstreams: list[Id] = msgspec.field(default_factory=list)


# -- the whole configuration ----------------------------------------------------------


class Config(_Obj):
    version: str | None = None
    routes: list[Route] = msgspec.field(default_factory=list)
    services: list[Service] = msgspec.field(default_factory=list)
    upstreams: list[UpstreamSpec] = msgspec.field(default_factory=list)
    consumers: list[Consumer] = msgspec.field(default_factory=list)
    plugin_configs: list[PluginConfig] = msgspec.field(default_factory=list)
    global_rules: list[GlobalRule] = msgspec.field(default_factory=list)
    ssls: list[SSL] = msgspec.field(default_factory=list)
    tenants: list[Tenant] = msgspec.field(default_factory=list)
    wasm_plugins: list[WasmPlugin] = msgspec.field(default_factory=list)
    consumer_groups: list[ConsumerGroup] = msgspec.field(default_factory=list)


# The element type of every list section, for per-object decoding (see ``decode_config``).
SECTIONS: dict[str, type[msgspec.Struct]] = {
    "routes": Route,
    "services": Service,
    "upstreams": UpstreamSpec,
    "consumers": Consumer,
    "plugin_configs": PluginConfig,
    "global_rules": GlobalRule,
    "ssls": SSL,
    "tenants": Tenant,
    "wasm_plugins": WasmPlugin,
    "consumer_groups": ConsumerGroup,
}


def msgspec_problem(exc: msgspec.ValidationError, prefix: str) -> tuple[str, str]:
    """Turn msgspec's ``"message - at `$.a[1].b`"`` into ``("<prefix>.a[1].b", message)``."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        message, where = text, "$`"
    suffix = where.rstrip("`")[1:]  # drop the leading "$"
    path = prefix + suffix
    # name the offending field in the path rather than in the message
    for head, short in (
        ("Object contains unknown field `", "unknown field"),
        ("Object missing required field `", "required field missing"),
    ):
        if message.startswith(head):
            field = message[len(head) :].rstrip("`")
            path = f"{path}.{field}" if path else field
            message = short
            break
    return path.lstrip("."), message


def decode_config(raw: Any) -> tuple[Config | None, list[tuple[str, str]]]:
    """Decode plain data (from YAML/JSON) into a ``Config``.

    Each object is decoded on its own so that one bad route does not hide the
    problems of the next: the result lists the first problem of every object.
    """
    problems: list[tuple[str, str]] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [("", f"the configuration must be a mapping, got {_kind(raw)}")]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "version":
            if value is not None and not isinstance(value, str | int | float):
                problems.append(("version", f"expected a string, got {_kind(value)}"))
            else:
                out["version"] = None if value is None else str(value)
            continue
        cls = SECTIONS.get(key) if isinstance(key, str) else None
        if cls is None:
            problems.append((str(key), "unknown field"))
            continue
        if value is None:
            continue
        if not isinstance(value, list):
            problems.append((key, f"expected a list, got {_kind(value)}"))
            continue
        items = []
        for i, item in enumerate(value):
            try:
                items.append(msgspec.convert(item, cls))
            except msgspec.ValidationError as e:
                problems.append(msgspec_problem(e, f"{key}[{i}]"))
        out[key] = items
    if problems:
        return None, problems
    return Config(**out), []


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), type(value).__name__)
