"""What limit-count, limit-req and limit-conn share: key resolution and the counter table.

A counter key is ``<plugin>:<scope>:<key value>`` where ``scope`` is ``group`` when
set, else the route id plus a digest of the plugin's config (so two routes, or a
changed config, never share a counter, as APISIX keys by conf type, id and version).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from edge.context import Request
from edge.counters import CounterTable, table_for
from edge.plugins import _vars
from edge.plugins.base import CompileEnv, PluginConfigError

POLICIES = ("local",)  # "redis" and "redis-cluster" come with the cluster-wide issue
MAX_KEY_VALUE = 1024  # a client-supplied key value longer than this is hashed down


def check_common(conf: Any) -> None:
    if conf.policy not in POLICIES:
        raise PluginConfigError("policy", f"policy {conf.policy!r} is not supported (only 'local')")
    if not 200 <= conf.rejected_code <= 599:
        raise PluginConfigError("rejected_code", "must be between 200 and 599")
    if conf.rejected_msg is not None and not conf.rejected_msg:
        raise PluginConfigError("rejected_msg", "must not be empty")


def compile_key(key: str, key_type: str, field: str = "key") -> Callable[[Request], str]:
    """The key value of a request; ``remote_addr`` when the variable is empty (as APISIX)."""
    if key_type == "constant":
        return lambda _r: key
    if key_type == "var":
        if not key or "$" in key:
            raise PluginConfigError(field, f"not a variable name: {key!r}")
        get = _vars.compile_var(key, field)
    elif key_type == "var_combination":
        if "$" not in key:
            raise PluginConfigError(field, "var_combination needs at least one $variable")
        get = _vars.compile_template(key, field)
    else:
        raise PluginConfigError("key_type", f"unknown key_type {key_type!r}")

    def value(req: Request) -> str:
        v = get(req)
        if v is None or v == "":
            return req.client_addr
        s = str(v)
        if len(s) > MAX_KEY_VALUE:
            s = hashlib.sha256(s.encode("utf-8", "surrogateescape")).hexdigest()
        return s

    return value


class Scope:
    """Turns a key value into the table key; computed parts fixed at compile time."""

    __slots__ = ("prefix", "group")

    def __init__(self, plugin: str, conf: msgspec.Struct, group: str | None = None) -> None:
        digest = hashlib.sha256(msgspec.json.encode(conf)).hexdigest()[:12]
        self.group = group
        self.prefix = f"{plugin}:g:{group}:" if group else f"{plugin}:{digest}:"

    def key(self, req: Request, value: str) -> str:
        if self.group:
            return self.prefix + value
        return f"{self.prefix}{getattr(req.route, 'id', '')}:{value}"


def table(env: CompileEnv) -> CounterTable:
    return table_for(env.shared)
