"""Which plugin names exist, and how one configured occurrence becomes an instance.

An entry is either a ``Plugin`` subclass (the built-ins: the raw config is decoded
into ``cls.Config`` and passed to ``cls(conf, env)``) or a factory callable
``(name, raw_conf, env) -> Plugin`` (WASM plugins: the host validates the raw
config itself). Built-ins are found by importing every module of
``BUILTIN_MODULES``.

Per-snapshot entries (a WASM host compiling the modules of one bundle) are passed
to ``build`` as ``extra`` instead of being registered globally, so two snapshots
never see each other's plugins. ``register`` is for process-wide additions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from edge.config.model import msgspec_problem
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError

# one module per built-in plugin, as APISIX lays out apisix/plugins/*.lua
BUILTIN_MODULES: tuple[str, ...] = (
    "edge.plugins.real_ip",
    "edge.plugins.request_id",
    "edge.plugins.fault_injection",
    "edge.plugins.cors",
    "edge.plugins.ip_restriction",
    "edge.plugins.csrf",
    "edge.plugins.uri_blocker",
    "edge.plugins.hmac_auth",
    "edge.plugins.jwt_auth",
    "edge.plugins.key_auth",
    "edge.plugins.consumer_restriction",
    "edge.plugins.proxy_rewrite",
    "edge.plugins.limit_conn",
    "edge.plugins.limit_count",
    "edge.plugins.limit_req",
    "edge.plugins.response_rewrite",
    "edge.plugins.prometheus",
)

Factory = Callable[[str, Any, CompileEnv], Plugin]
Entry = type[Plugin] | Factory

_registry: dict[str, Entry] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for modname in BUILTIN_MODULES:
        mod = importlib.import_module(modname)
        for value in vars(mod).values():
            if (
                isinstance(value, type)
                and issubclass(value, Plugin)
                and value is not Plugin
                and value.__module__ == mod.__name__
                and value.name
            ):
                _registry.setdefault(value.name, value)
    # only after every module imported: a broken plugin keeps failing loudly, it is
    # never silently missing from a registry that looks complete
    _loaded = True


def register(entry: Entry, name: str | None = None) -> None:
    """Add a plugin class (``name`` defaults to ``entry.name``) or a named factory."""
    _load_builtins()
    if name is None:
        name = getattr(entry, "name", "")
    if not name:
        raise ValueError("a plugin needs a name")
    _registry[name] = entry


def unregister(name: str) -> None:
    _registry.pop(name, None)


def get(name: str, extra: Mapping[str, Entry] | None = None) -> Entry | None:
    _load_builtins()
    if extra and name in extra:
        return extra[name]
    return _registry.get(name)


def names() -> frozenset[str]:
    _load_builtins()
    return frozenset(_registry)


def plugin_class(entry: Entry | None) -> type[Plugin] | None:
    if isinstance(entry, type) and issubclass(entry, Plugin):
        return entry
    return None


class _Meta(msgspec.Struct, forbid_unknown_fields=True):
    """APISIX's per-instance ``_meta``."""

    disable: bool = False
    priority: int | None = None


def build(
    name: str,
    raw: Any,
    env: CompileEnv,
    path: str,
    extra: Mapping[str, Entry] | None = None,
) -> tuple[Plugin, int] | None:
    """Build one occurrence of plugin ``name`` configured as ``raw``.

    Returns ``(instance, effective priority)``, or ``None`` when ``_meta.disable``
    drops it. Raises ``ConfigProblems`` naming fields below ``path`` (e.g.
    ``routes[2].plugins.cors``).
    """
    entry = get(name, extra)
    if entry is None:
        raise ConfigProblems([(path, f"unknown plugin '{name}'")])
    if raw is None:
        raw = {}
    meta = _Meta()
    if isinstance(raw, dict) and "_meta" in raw:
        raw = dict(raw)
        try:
            meta = msgspec.convert(raw.pop("_meta") or {}, _Meta)
        except msgspec.ValidationError as e:
            raise ConfigProblems([msgspec_problem(e, f"{path}._meta")]) from None
    if meta.disable:
        return None
    cls = plugin_class(entry)
    try:
        if cls is None:
            instance = entry(name, raw, env)  # type: ignore[call-arg]
            default_priority = int(getattr(instance, "priority", 0))
        else:
            conf: Any
            if cls.Config is None:
                if raw not in ({}, None):
                    raise ConfigProblems([(path, f"plugin '{name}' takes no configuration")])
                conf = None
            else:
                try:
                    conf = msgspec.convert(raw, cls.Config)
                except msgspec.ValidationError as e:
                    raise ConfigProblems([msgspec_problem(e, path)]) from None
            instance = cls(conf, env)
            default_priority = cls.priority
    except PluginConfigError as e:
        raise ConfigProblems([(_join(path, e.field), e.message)]) from None
    except ValueError as e:
        # a plugin that let a ValueError escape still gets a precise location
        raise ConfigProblems([(path, str(e))]) from None
    priority = meta.priority if meta.priority is not None else default_priority
    return instance, priority


def decode_credential(
    name: str, raw: Any, path: str, extra: Mapping[str, Entry] | None = None
) -> Any:
    """Decode a consumer's credential for auth plugin ``name`` (its ``ConsumerConfig``)."""
    cls = plugin_class(get(name, extra))
    if cls is None or cls.ConsumerConfig is None:
        raise ConfigProblems([(path, f"plugin '{name}' takes no consumer credential")])
    try:
        return msgspec.convert({} if raw is None else raw, cls.ConsumerConfig)
    except msgspec.ValidationError as e:
        raise ConfigProblems([msgspec_problem(e, path)]) from None


def is_credential_plugin(name: str, extra: Mapping[str, Entry] | None = None) -> bool:
    """True when a consumer's ``plugins.<name>`` is a credential rather than a plugin."""
    cls = plugin_class(get(name, extra))
    return cls is not None and cls.ConsumerConfig is not None


def _join(path: str, field: str) -> str:
    if not field:
        return path
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


class ConfigProblems(Exception):
    """Problems found while building plugins, as ``(field_path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems
