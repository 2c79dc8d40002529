"""Compile a validated configuration into the immutable snapshot a worker serves.

``compile_snapshot`` does all the work a request must never do: resolving references,
merging plugin sets (route > plugin_config > service, consumer > consumer group >
route), building plugin instances and their chains, balancers and router tables. It
either returns a complete ``Snapshot`` or raises ``ConfigError`` listing every problem.

Order matters in one place: auth plugins index the consumers' credentials
(``index_consumers``) before any route's plugin is built, so an auth plugin instance
can look its index up in ``env`` when it compiles.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from edge import secrets
from edge.config.model import Config, Consumer, Route, Service, UpstreamSpec, obj_id
from edge.config.validate import object_id, validate_config
from edge.errors import ConfigError
from edge.expr import compile_expr
from edge.plugins import registry
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.plugins.chain import PluginChain
from edge.router import Router
from edge.tls import TlsConfigError, TlsTable, compile_tls
from edge.upstream.model import Upstream, UpstreamTlsError, compile_upstream

Problems = list[tuple[str, str]]
# one plugin occurrence: (instance, effective priority)
Instance = tuple[Plugin, int]


# routes without plugins share one chain (chains are never mutated)
EMPTY_CHAIN = PluginChain([])


class CompiledService:
    __slots__ = ("id", "name", "upstream", "hosts")

    def __init__(
        self, sid: str, name: str | None, upstream: Upstream | None, hosts: tuple[str, ...]
    ):
        self.id = sid
        self.name = name or sid
        self.upstream = upstream
        self.hosts = hosts

    def __repr__(self) -> str:
        return f"CompiledService({self.id!r})"


class CompiledConsumer:
    """A consumer as plugins see it (``req.consumer``)."""

    __slots__ = ("username", "custom_id", "group_id", "credentials", "plugins", "instances", "spec")

    def __init__(self, spec: Consumer) -> None:
        self.spec = spec
        self.username = spec.username
        self.custom_id = spec.custom_id
        self.group_id = obj_id(spec.group_id)
        self.plugins: dict[str, Any] = dict(spec.plugins or {})
        # auth plugin name -> decoded ConsumerConfig
        self.credentials: dict[str, Any] = {}
        # non-auth plugins of the consumer group, then the consumer (consumer wins)
        self.instances: dict[str, Instance] = {}

    def __repr__(self) -> str:
        return f"CompiledConsumer({self.username!r})"


class CompiledRoute:
    """A route with everything resolved; the router and the proxy read its slots."""

    __slots__ = (
        "id",
        "name",
        "uris",
        "hosts",
        "methods",
        "vars_match",
        "remote_nets",
        "priority",
        "order",
        "upstream",
        "service",
        "timeout",
        "chain",
        "instances",
        "enable_websocket",
        "spec",
        "_consumer_chains",
    )

    def __init__(self, rid: str, spec: Route, order: int) -> None:
        self.id = rid
        self.spec = spec
        self.name = spec.name or rid
        self.uris: tuple[str, ...] = tuple(spec.uris or ([spec.uri] if spec.uri else []))
        self.hosts: tuple[str, ...] = ()
        self.methods: frozenset[str] | None = (
            frozenset(m.upper() for m in spec.methods) if spec.methods else None
        )
        self.vars_match: Callable[[Any], bool] | None = None
        self.remote_nets: tuple[Any, ...] | None = None
        self.priority = spec.priority
        self.order = order
        self.upstream: Upstream | None = None
        self.service: CompiledService | None = None
        # (connect, send, read) seconds, or None: use the upstream's
        self.timeout: tuple[float, float, float] | None = (
            (spec.timeout.connect, spec.timeout.send, spec.timeout.read) if spec.timeout else None
        )
        self.chain = EMPTY_CHAIN
        self.instances: dict[str, Instance] = {}
        self.enable_websocket = spec.enable_websocket
        self._consumer_chains: dict[str, PluginChain] = {}

    def chain_for_consumer(self, consumer: CompiledConsumer | None) -> PluginChain:
        """The route chain with ``consumer``'s plugins merged in (consumer wins); cached."""
        if consumer is None or not consumer.instances:
            return self.chain
        chain = self._consumer_chains.get(consumer.username)
        if chain is None:
            merged = dict(self.instances)
            merged.update(consumer.instances)
            chain = PluginChain(list(merged.values()))
            had = {p.name for p in self.chain.plugins}
            chain.joined_rewrite = [h for h in chain.rewrite if h[0].name not in had]
            self._consumer_chains[consumer.username] = chain
        return chain

    def __repr__(self) -> str:
        return f"CompiledRoute({self.id!r}, {list(self.uris)})"


class Snapshot:
    """One compiled configuration; never mutated after ``compile_snapshot`` returns."""

    __slots__ = (
        "version",
        "loaded_at",
        "config",
        "router",
        "routes",
        "services",
        "upstreams",
        "consumers",
        "global_chain",
        "env",
        "base_dir",
        # the SNI certificate table for TLS listeners (edge.tls), None without ``ssls``
        "tls",
    )

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def summary(self) -> str:
        c = self.config
        return (
            f"{len(c.routes)} routes, {len(c.services)} services, {len(c.upstreams)} upstreams, "
            f"{len(c.consumers)} consumers, {len(c.global_rules)} global rules"
        )

    def __repr__(self) -> str:
        return f"Snapshot({self.version}, {self.summary()})"


def config_version(config: Config) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys), first 16 hex digits."""
    canonical = json.dumps(
        msgspec.to_builtins(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class _Compiler:
    def __init__(
        self,
        config: Config,
        env: CompileEnv,
        extra_plugins: Mapping[str, registry.Entry] | None,
    ) -> None:
        self.config = config
        self.env = env
        self.extra = extra_plugins
        self.problems: Problems = []
        self.skip: set[str] = set()
        # paths validation already complained about, so compile errors are not doubled
        self.reported: list[str] = []

    def build_plugins(self, plugins: dict[str, Any] | None, path: str) -> dict[str, Instance]:
        out: dict[str, Instance] = {}
        for name, raw in (plugins or {}).items():
            if name in self.skip:
                continue
            try:
                # secret references ($env://, $file://, $aws-sm://, $gcp-sm://) are resolved
                # on this node, now; a failure names the field, never the value
                raw = secrets.resolve_tree(raw, f"{path}.{name}")
            except ConfigError as e:
                self.problems.extend(e.problems)
                continue
            try:
                built = registry.build(name, raw, self.env, f"{path}.{name}", self.extra)
            except registry.ConfigProblems as e:
                self.problems.extend(e.problems)
                continue
            if built is not None:
                out[name] = built
        return out

    def upstream(self, spec: UpstreamSpec, uid: str, path: str) -> Upstream | None:
        try:
            return compile_upstream(spec, uid)
        except ValueError as e:
            # validation already explained a problem with this upstream: don't repeat it
            if not any(p == path or p.startswith((path + ".", path + "[")) for p in self.reported):
                if isinstance(e, UpstreamTlsError):
                    self.problems.append((f"{path}.{e.field}", e.message))
                else:
                    self.problems.append((path, str(e)))
            return None


def _merge(*plugin_sets: dict[str, Any] | None) -> dict[str, Any]:
    """Later sets win, per plugin name (APISIX merges whole plugin configs, not fields)."""
    merged: dict[str, Any] = {}
    for s in plugin_sets:
        if s:
            merged.update(s)
    return merged


def compile_snapshot(
    config: Config,
    *,
    base_dir: str | Path | None = None,
    node_id: str = "",
    shared: dict[str, Any] | None = None,
    extra_plugins: Mapping[str, registry.Entry] | None = None,
    file: str = "",
    prior_problems: Problems | None = None,
) -> Snapshot:
    """Validate and compile ``config``; raises ``ConfigError`` with every problem.

    ``extra_plugins`` are plugin entries for this snapshot only (the WASM host's
    factories for the bundle's ``wasm_plugins``); ``file`` names the source in errors;
    ``prior_problems`` (e.g. from loading the WASM modules) are reported with the rest.
    """
    builtin = registry.names()
    extra_names = frozenset(extra_plugins or ())
    known = builtin | extra_names
    problems = list(prior_problems or []) + validate_config(config, builtin, extra_names)
    # a declared WASM plugin nobody loaded: one problem for the declaration, and the
    # routes using it are not reported again plugin by plugin
    unloaded: set[str] = set()
    for i, w in enumerate(config.wasm_plugins):
        if w.name in known:
            continue
        unloaded.add(w.name)
        here = f"wasm_plugins[{i}]"
        # when the WASM host reported problems, they already say why nothing was loaded
        if not prior_problems and not any(
            p == here or p.startswith((here + ".", here + "[")) for p, _ in problems
        ):
            problems.append((here, f"WASM plugin '{w.name}' is not loaded (no WASM host)"))

    env = CompileEnv(
        bundle_dir=str(base_dir) if base_dir is not None else None, node_id=node_id, shared=shared
    )
    c = _Compiler(config, env, extra_plugins)
    c.skip = unloaded
    c.reported = [p for p, _ in problems]

    upstreams: dict[str, Upstream] = {}
    for i, spec in enumerate(config.upstreams):
        uid = object_id(spec.id, "upstream", i)
        up = c.upstream(spec, uid, f"upstreams[{i}]")
        if up is not None and uid not in upstreams:
            upstreams[uid] = up
    env.upstreams = upstreams

    # consumers and their credentials, indexed before any plugin instance is built
    consumers: dict[str, CompiledConsumer] = {}
    creds: dict[str, list[tuple[CompiledConsumer, Any]]] = {}
    for i, spec in enumerate(config.consumers):
        cc = CompiledConsumer(spec)
        for name, raw in (spec.plugins or {}).items():
            if registry.is_credential_plugin(name, extra_plugins):
                path = f"consumers[{i}].plugins.{name}"
                try:
                    raw = secrets.resolve_tree(raw, path)
                    cred = registry.decode_credential(name, raw, path, extra_plugins)
                except ConfigError as e:
                    c.problems.extend(e.problems)
                    continue
                except registry.ConfigProblems as e:
                    c.problems.extend(e.problems)
                    continue
                cc.credentials[name] = cred
                creds.setdefault(name, []).append((cc, cred))
        consumers.setdefault(cc.username, cc)
    env.consumers = consumers
    # every auth plugin gets its index, empty or not, so its instances never see None
    for name in sorted(known):
        if not registry.is_credential_plugin(name, extra_plugins):
            continue
        cls = registry.plugin_class(registry.get(name, extra_plugins))
        assert cls is not None
        try:
            env.consumer_indexes[name] = cls.index_consumers(creds.get(name, []), env)
        except registry.ConfigProblems as e:
            c.problems.extend(e.problems)
        except PluginConfigError as e:
            # the index spans all consumers: the message names the ones at fault
            field = f".{e.field}" if e.field else ""
            c.problems.append((f"consumers.plugins.{name}{field}", e.message))
        except ValueError as e:
            c.problems.append((f"consumers.plugins.{name}", str(e)))

    groups = {
        object_id(g.id, "consumer_group", i): (i, g) for i, g in enumerate(config.consumer_groups)
    }
    group_instances: dict[str, dict[str, Instance]] = {}
    for gid, (i, g) in groups.items():
        group_instances[gid] = c.build_plugins(g.plugins, f"consumer_groups[{i}].plugins")
    for i, spec in enumerate(config.consumers):
        cc = consumers[spec.username]
        if cc.spec is not spec:
            continue  # a duplicate username, already reported
        own = {
            k: v
            for k, v in (spec.plugins or {}).items()
            if not registry.is_credential_plugin(k, extra_plugins)
        }
        merged = dict(group_instances.get(cc.group_id or "", {}))
        merged.update(c.build_plugins(own, f"consumers[{i}].plugins"))
        cc.instances = merged

    global_instances: list[Instance] = []
    for i, g in enumerate(config.global_rules):
        global_instances.extend(c.build_plugins(g.plugins, f"global_rules[{i}].plugins").values())
    global_chain = PluginChain(global_instances)

    plugin_configs = {
        object_id(pc.id, "plugin_config", i): pc.plugins
        for i, pc in enumerate(config.plugin_configs)
    }
    services: dict[str, CompiledService] = {}
    service_specs: dict[str, Service] = {}
    for i, s in enumerate(config.services):
        sid = object_id(s.id, "service", i)
        up: Upstream | None = None
        if s.upstream is not None:
            up = c.upstream(
                s.upstream, obj_id(s.upstream.id) or f"{sid}.upstream", f"services[{i}].upstream"
            )
        elif s.upstream_id is not None:
            up = upstreams.get(str(s.upstream_id))
        services.setdefault(sid, CompiledService(sid, s.name, up, tuple(s.hosts or ())))
        service_specs.setdefault(sid, s)

    # plugin configs of services and plugin_configs are built per route below; build
    # them once here too so an object no route uses is still validated
    for i, s in enumerate(config.services):
        c.build_plugins(s.plugins, f"services[{i}].plugins")
    for i, pc in enumerate(config.plugin_configs):
        c.build_plugins(pc.plugins, f"plugin_configs[{i}].plugins")

    routes: dict[str, CompiledRoute] = {}
    for i, spec in enumerate(config.routes):
        p = f"routes[{i}]"
        rid = object_id(spec.id, "route", i)
        cr = CompiledRoute(rid, spec, i)
        svc = services.get(str(spec.service_id)) if spec.service_id is not None else None
        svc_spec = service_specs.get(str(spec.service_id)) if spec.service_id is not None else None
        cr.service = svc
        if spec.upstream is not None:
            cr.upstream = c.upstream(
                spec.upstream, obj_id(spec.upstream.id) or f"{rid}.upstream", f"{p}.upstream"
            )
        elif spec.upstream_id is not None:
            cr.upstream = upstreams.get(str(spec.upstream_id))
        elif svc is not None:
            cr.upstream = svc.upstream
        hosts = spec.hosts or ([spec.host] if spec.host else None) or (svc.hosts if svc else ())
        cr.hosts = tuple(h.lower() for h in hosts)
        remotes = spec.remote_addrs or ([spec.remote_addr] if spec.remote_addr else None)
        if remotes:
            try:
                cr.remote_nets = tuple(ipaddress.ip_network(a, strict=False) for a in remotes)
            except ValueError:
                pass  # reported by validation
        if spec.vars:
            try:
                cr.vars_match = compile_expr(spec.vars)
            except ValueError:
                pass  # reported by validation
        pc_plugins = (
            plugin_configs.get(str(spec.plugin_config_id))
            if spec.plugin_config_id is not None
            else None
        )
        # one plugin config per name, the most specific object winning; each occurrence
        # is built from the object that supplied it so error paths name the right place
        sources: dict[str, tuple[str, Any]] = {}
        for src_path, plugins in (
            (
                f"services[{_index(config.services, svc_spec)}].plugins",
                svc_spec.plugins if svc_spec else None,
            ),
            (f"plugin_configs[{_pc_index(config, spec.plugin_config_id)}].plugins", pc_plugins),
            (f"{p}.plugins", spec.plugins),
        ):
            for name, raw in (plugins or {}).items():
                sources[name] = (src_path, raw)
        instances: dict[str, Instance] = {}
        for name, (src_path, raw) in sources.items():
            instances.update(c.build_plugins({name: raw}, src_path))
        cr.instances = instances
        cr.chain = PluginChain(list(instances.values())) if instances else EMPTY_CHAIN
        if rid not in routes:
            routes[rid] = cr

    # building contexts for ssls that validation already refused would only repeat it
    refused = any(p.startswith("ssls") for p in c.reported)
    tls = None if refused else _compile_tls(config, c.problems)

    problems.extend(_unique(c.problems, problems))
    if problems:
        raise ConfigError(problems, file)

    router = Router(r for r in routes.values() if r.spec.status == 1)
    return Snapshot(
        version=config_version(config),
        loaded_at=time.time(),
        config=config,
        router=router,
        routes=routes,
        services=services,
        upstreams=upstreams,
        consumers=consumers,
        global_chain=global_chain,
        env=env,
        base_dir=str(base_dir) if base_dir is not None else None,
        tls=tls,
    )


def _compile_tls(config: Config, problems: Problems) -> TlsTable | None:
    """The SNI table of the ``ssls``; keys are secret references resolved here, and an
    unresolvable one is reported by its field, never by its value."""
    try:
        return compile_tls([msgspec.to_builtins(s) for s in config.ssls], secrets.resolve)
    except TlsConfigError as e:
        problems.append((e.field, e.message))
    except ConfigError as e:
        problems.extend(e.problems)
    return None


def _index(items: list[Any], item: Any) -> int:
    for i, x in enumerate(items):
        if x is item:
            return i
    return -1


def _pc_index(config: Config, pcid: Any) -> int:
    if pcid is None:
        return -1
    for i, pc in enumerate(config.plugin_configs):
        if object_id(pc.id, "plugin_config", i) == str(pcid):
            return i
    return -1


def _unique(new: Problems, existing: Problems) -> Problems:
    """Drop compile problems validation already reported (unknown plugins, bad nodes)."""
    seen = set(existing)
    out = []
    for p in new:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def load_snapshot(
    path: str | Path,
    *,
    node_id: str = "",
    shared: dict[str, Any] | None = None,
    extra_plugins: Mapping[str, registry.Entry] | None = None,
    wasm: bool = True,
) -> Snapshot:
    """Load a config file or directory and compile it; raises ``ConfigError``.

    With ``wasm`` (default), the bundle's ``wasm_plugins`` are loaded through the WASM
    host (``edge.wasm.host.plugin_entries``: file, sha256, module checks) when it is
    installed, so ``edge validate`` checks them as ``edge run`` does.
    """
    from edge.config.load import load_config, resolve_config_file

    file = str(resolve_config_file(path))
    config, base_dir = load_config(path)
    extra = dict(extra_plugins or {})
    prior: Problems = []
    if wasm and config.wasm_plugins:
        from edge.wasm.host import plugin_entries  # wasmtime only when a bundle has WASM

        try:
            extra.update(plugin_entries(config, base_dir=base_dir, node_id=node_id, shared=shared))
        except ConfigError as e:
            prior = e.problems
    return compile_snapshot(
        config,
        base_dir=base_dir,
        node_id=node_id,
        shared=shared,
        extra_plugins=extra,
        file=file,
        prior_problems=prior,
    )
