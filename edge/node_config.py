"""The node configuration: what is local to one machine rather than to a bundle.

A YAML file given to ``edge run --node FILE``; command-line flags override it field by
field (``merge_flags``). Everything here is decided before any socket is opened, so a
bad file stops the node with ``FILE: FIELD.PATH: message`` lines and exit code 1.

Fields (defaults in brackets):

- ``listeners`` [one plain listener on ``0.0.0.0:9080``]: each ``address`` "HOST:PORT"
  (IPv6 as ``[::1]:9080``), ``tls`` [false], ``proxy_protocol`` v1|v2|off [off],
  ``trusted_proxies`` [[]] CIDRs allowed to send a PROXY header (required when
  ``proxy_protocol`` is on: a header from anyone else is refused),
  ``proxy_protocol_timeout`` seconds [5] to receive the header, ``ip_restriction``
  [none] ``{whitelist: [CIDR], blacklist: [CIDR]}`` applied to the client address the
  PROXY header gives (refuse traffic that did not come through the CDN's ranges).
- ``admin`` ["127.0.0.1:9090"]: the admin listener (/healthz, /readyz, /status, /metrics).
- ``workers`` [CPU count available to this process]: worker processes, 1..256.
- ``state_dir`` [/var/lib/edge as root, else $XDG_STATE_HOME/edge or ~/.local/state/edge]:
  metrics files, last-known-good bundles, compiled WASM cache.
- ``log_level`` [info]: debug|info|warning|error.
- ``config``: a configuration file or a directory holding ``edge.yaml``.
- ``bundle_source`` (URL: file:///dir, s3://bucket/prefix, gs://bucket/prefix),
  ``trusted_root`` (the pinned root.json), ``poll_interval`` [30] seconds, ``node_id``
  [the host name]: take the configuration from signed bundles instead of ``config``.
- ``grace_period`` [30]: seconds SIGTERM waits for in-flight requests.
- ``limits`` [{}]: HTTP limits, the fields of ``edge.http.limits.Limits``.
- ``access_log`` [stderr]: ``stderr``, ``off`` or a file path.

Relative paths in the file are relative to the file's directory (so a node directory
can be moved as a whole); relative paths given as flags are relative to the working
directory, as a shell user expects.

YAML 1.1 reads a bare ``off`` as the boolean false: ``proxy_protocol: off`` is accepted
and means ``"off"``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

from edge.errors import ConfigError

DEFAULT_LISTEN = "0.0.0.0:9080"
DEFAULT_ADMIN = "127.0.0.1:9090"
# a node file is a page of YAML; anything this big is a mistake or an attack
MAX_NODE_FILE = 1024 * 1024
MAX_WORKERS = 256
LOG_LEVELS = ("debug", "info", "warning", "error")


class IpRestriction(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Which client addresses (as the PROXY header gives them) may use a listener."""

    whitelist: list[str] | None = None
    blacklist: list[str] | None = None


class ListenerConf(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    address: str
    tls: bool = False
    proxy_protocol: Literal["v1", "v2", "off"] = "off"
    trusted_proxies: list[str] = []
    # an LB sends the header with the connection's first bytes; 5 s covers a slow path
    # without letting a silent peer hold a slot for long
    proxy_protocol_timeout: float = 5.0
    ip_restriction: IpRestriction | None = None

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    listeners: list[ListenerConf] = []
    admin: str = DEFAULT_ADMIN
    workers: int | None = None
    state_dir: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    config: str | None = None
    bundle_source: str | None = None
    trusted_root: str | None = None
    poll_interval: float = 30.0
    node_id: str | None = None
    grace_period: float = 30.0
    limits: dict[str, Any] = {}
    access_log: str = "stderr"

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else default_workers()

    def effective_state_dir(self) -> str:
        return self.state_dir or default_state_dir()

    def effective_node_id(self) -> str:
        return self.node_id or socket.gethostname()

    def effective_listeners(self) -> list[ListenerConf]:
        return self.listeners or [ListenerConf(address=DEFAULT_LISTEN)]


def default_workers() -> int:
    # the CPUs this process may run on (taskset, cgroup cpusets), not the host's count
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_state_dir() -> str:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/edge"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return os.path.join(base, "edge")


_ADDR_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$")


def split_address(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"[V6]:PORT"`` -> (host, port); ValueError says what is wrong."""
    m = _ADDR_RE.match(address)
    if m is None:
        raise ValueError(f"expected HOST:PORT (IPv6 as [ADDR]:PORT), got {address!r}")
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1-65535")
    host = m["v6"] or m["host"]
    if m["v6"] is not None:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad IPv6 address {host!r}") from None
    return host, port


# -- loading ---------------------------------------------------------------------------

_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_ENUMS = {"proxy_protocol": ("v1", "v2", "off"), "log_level": LOG_LEVELS}
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")


def msgspec_problem(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """Turn msgspec's ``"... - at `$.a[0].b`"`` into ``("a[0].b", "...")``."""
    m = _MSGSPEC_PATH.match(str(exc))
    msg, path = (m["msg"], m["path"] or "") if m else (str(exc), "")
    path = path.lstrip(".")
    unknown = _UNKNOWN_FIELD.match(msg)
    field = path.rsplit(".", 1)[-1]
    if msg.startswith("Invalid enum value") and field in _ENUMS:
        msg = f"{msg[len('Invalid enum value ') :]} is not one of {', '.join(_ENUMS[field])}"
    if unknown:
        path = f"{path}.{unknown['field']}" if path else unknown["field"]
        msg = "unknown field"
    if prefix:
        path = f"{prefix}.{path}" if path and not path.startswith("[") else f"{prefix}{path}"
    return path, msg


def _normalize_yaml_off(raw: Any) -> Any:
    # YAML 1.1 turns `proxy_protocol: off` into False before we ever see it
    if isinstance(raw, dict):
        for lst in raw.get("listeners") or []:
            if isinstance(lst, dict) and lst.get("proxy_protocol") is False:
                lst["proxy_protocol"] = "off"
    return raw


def parse_node_config(text: str | bytes, file: str = "") -> NodeConfig:
    """Decode and validate node configuration text; ``ConfigError`` lists every problem."""
    if len(text) > MAX_NODE_FILE:
        raise ConfigError([("", f"file larger than {MAX_NODE_FILE} bytes")], file)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f"line {where.line + 1}: " if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([("", f"{at}invalid YAML: {problem}")], file) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([("", "expected a mapping of node settings")], file)
    try:
        node = msgspec.convert(_normalize_yaml_off(raw), NodeConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError([msgspec_problem(exc)], file) from None
    problems = check(node, require_source=False)
    if problems:
        raise ConfigError(problems, file)
    return node


def load_node_config(path: str | Path) -> NodeConfig:
    """Read the node file at ``path``; relative paths in it become relative to its folder."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_NODE_FILE + 1)
    except OSError as exc:
        raise ConfigError([("", f"cannot read: {exc.strerror}")], str(p)) from None
    node = parse_node_config(data, str(p))
    return _anchor_paths(node, p.resolve().parent)


def _anchor_paths(node: NodeConfig, base: Path) -> NodeConfig:
    def anchor(value: str | None) -> str | None:
        if value is None or os.path.isabs(value):
            return value
        return str(base / value)

    node.config = anchor(node.config)
    node.state_dir = anchor(node.state_dir)
    node.trusted_root = anchor(node.trusted_root)
    if node.bundle_source and "://" not in node.bundle_source:
        node.bundle_source = anchor(node.bundle_source)
    if node.access_log not in ("stderr", "off"):
        node.access_log = anchor(node.access_log) or node.access_log
    return node


def check(node: NodeConfig, *, require_source: bool = True) -> list[tuple[str, str]]:
    """Every semantic problem with ``node`` as (field path, message), all at once."""
    problems: list[tuple[str, str]] = []
    seen: dict[tuple[str, int], int] = {}
    for i, lst in enumerate(node.listeners):
        where = f"listeners[{i}]"
        try:
            hp = split_address(lst.address)
        except ValueError as exc:
            problems.append((f"{where}.address", str(exc)))
        else:
            if hp in seen:
                problems.append((f"{where}.address", f"same address as listeners[{seen[hp]}]"))
            seen[hp] = i
        for j, cidr in enumerate(lst.trusted_proxies):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append((f"{where}.trusted_proxies[{j}]", f"not an IP or CIDR: {cidr!r}"))
        if lst.proxy_protocol != "off" and not lst.trusted_proxies:
            problems.append(
                (
                    f"{where}.trusted_proxies",
                    f"proxy_protocol {lst.proxy_protocol} needs the load balancers' CIDRs here "
                    "(a PROXY header is only accepted from trusted peers)",
                )
            )
        if not 0 < lst.proxy_protocol_timeout <= 60:
            problems.append((f"{where}.proxy_protocol_timeout", "must be > 0 and <= 60 seconds"))
        ipr = lst.ip_restriction
        if ipr is not None:
            if not ipr.whitelist and not ipr.blacklist:
                problems.append((f"{where}.ip_restriction", "give a whitelist or a blacklist"))
            for kind in ("whitelist", "blacklist"):
                for j, cidr in enumerate(getattr(ipr, kind) or []):
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        problems.append(
                            (f"{where}.ip_restriction.{kind}[{j}]", f"not an IP or CIDR: {cidr!r}")
                        )
    try:
        admin = split_address(node.admin)
    except ValueError as exc:
        problems.append(("admin", str(exc)))
    else:
        if admin in seen:
            problems.append(("admin", f"same address as listeners[{seen[admin]}]"))
    if node.workers is not None and not 1 <= node.workers <= MAX_WORKERS:
        problems.append(("workers", f"must be between 1 and {MAX_WORKERS}"))
    if not node.poll_interval > 0:
        problems.append(("poll_interval", "must be > 0 seconds"))
    if not node.grace_period >= 0:
        problems.append(("grace_period", "must be >= 0 seconds"))
    if node.node_id is not None and not re.fullmatch(r"[A-Za-z0-9._:-]{1,253}", node.node_id):
        problems.append(("node_id", "1-253 characters of letters, digits, '.', '_', ':', '-'"))
    if not node.access_log:
        problems.append(("access_log", "stderr, off or a file path"))
    problems.extend(_check_limits(node.limits))
    if node.config and node.bundle_source:
        problems.append(("bundle_source", "config and bundle_source are mutually exclusive"))
    if node.bundle_source and not node.trusted_root:
        problems.append(("trusted_root", "bundle_source needs the pinned root.json"))
    if require_source and not node.config and not node.bundle_source:
        problems.append(("config", "a configuration (--config) or a bundle source is required"))
    return problems


def _check_limits(raw: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        build_limits(raw)
    except msgspec.ValidationError as exc:
        path, msg = msgspec_problem(exc, "limits")
        # Limits.__post_init__ says "field: message" about the struct as a whole
        m = re.match(r"^([a-z_]+(?:/[a-z_]+)*): (.+)$", msg, re.S)
        if path == "limits" and m:
            return [(f"limits.{m[1]}", m[2])]
        return [(path, msg)]
    return []


def build_limits(raw: dict[str, Any]) -> Any:
    """The proxy's ``Limits`` from the node file's ``limits`` mapping."""
    from edge.http.limits import Limits

    return msgspec.convert(raw, Limits)


# -- flags -----------------------------------------------------------------------------


def merge_flags(node: NodeConfig, **flags: Any) -> NodeConfig:
    """A copy of ``node`` with every flag that was given (not None) replacing its field.

    ``listen`` (a list of "HOST:PORT") replaces ``listeners`` with plain listeners.
    """
    merged = msgspec.structs.replace(node)
    listen = flags.pop("listen", None)
    if listen:
        merged.listeners = [ListenerConf(address=a) for a in listen]
    for name, value in flags.items():
        if value is None:
            continue
        if name not in NodeConfig.__struct_fields__:
            raise TypeError(f"unknown node field {name}")
        setattr(merged, name, value)
    return merged


def to_builtins(node: NodeConfig) -> dict[str, Any]:
    return msgspec.to_builtins(node)
