from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.context import Response
from edge.errors import ConfigError
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.snapshot import CompiledConsumer, compile_snapshot, config_version, load_snapshot
from tests.support.config import config, make_request, up

# -- plugins made for these tests, passed per snapshot as extra_plugins ------------------


class AConf(msgspec.Struct, forbid_unknown_fields=True):
    n: int = 0
    tag: str = ""


class PluginA(Plugin):
    name = "t-a"
    priority = 100
    Config = AConf

    def __init__(self, conf: AConf, env: CompileEnv) -> None:
        if conf.n < 0:
            raise PluginConfigError("n", "must be >= 0")
        self.conf = conf

    def rewrite(self, req: Any) -> Response | None:
        return None


class PluginB(Plugin):
    name = "t-b"
    priority = 50

    def access(self, req: Any) -> Response | None:
        return None


class AuthCred(msgspec.Struct, forbid_unknown_fields=True):
    key: str


class AuthConf(msgspec.Struct, forbid_unknown_fields=True):
    header: str = "apikey"


class PluginAuth(Plugin):
    name = "t-auth"
    priority = 2500
    Config = AuthConf
    ConsumerConfig = AuthCred
    is_auth = True

    @classmethod
    def index_consumers(cls, creds: list[tuple[Any, Any]], env: CompileEnv) -> dict[str, Any]:
        index: dict[str, Any] = {}
        for consumer, cred in creds:
            if cred.key in index:
                raise PluginConfigError("key", f"{consumer.username} reuses a key")
            index[cred.key] = consumer
        return index

    def __init__(self, conf: AuthConf, env: CompileEnv) -> None:
        self.conf = conf
        # the index must exist before any instance is built
        self.index = env.consumer_index(self.name)
        assert self.index is not None

    def rewrite(self, req: Any) -> Response | None:
        return None


class WasmLike(Plugin):
    def __init__(self, name: str, conf: Any, env: CompileEnv) -> None:
        self.name = name  # type: ignore[misc]
        self.priority = 7  # type: ignore[misc]
        self.conf = conf

    def access(self, req: Any) -> Response | None:
        return None


def wasm_factory(name: str, conf: Any, env: CompileEnv) -> Plugin:
    if isinstance(conf, dict) and conf.get("bad"):
        raise PluginConfigError("bad", "the guest refused this configuration")
    return WasmLike(name, conf, env)


EXTRA = {"t-a": PluginA, "t-b": PluginB, "t-auth": PluginAuth, "acme/wasm": wasm_factory}


def build(raw: dict[str, Any], **kw: Any):
    return compile_snapshot(config(raw), extra_plugins=EXTRA, **kw)


def problems_of(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        build(raw)
    return dict(e.value.problems)


def names(chain: Any) -> list[str]:
    return [p.name for p in chain.plugins]


# -- tests ------------------------------------------------------------------------


def test_version_is_a_stable_content_hash() -> None:
    a = config({"routes": [{"uri": "/", "upstream": up()}]})
    b = config({"routes": [{"uri": "/", "upstream": up()}]})
    c = config({"routes": [{"uri": "/x", "upstream": up()}]})
    assert config_version(a) == config_version(b) != config_version(c)
    s = compile_snapshot(a)
    assert len(s.version) == 16 and int(s.version, 16) >= 0
    assert s.loaded_at > 0


def test_upstream_resolution_and_timeouts() -> None:
    s = build(
        {
            "upstreams": [{"id": "named", "nodes": {"10.0.0.1:80": 1}}],
            "services": [{"id": "svc", "name": "Svc", "upstream": up("10.0.0.2:80")}],
            "routes": [
                {
                    "id": "inline",
                    "uri": "/i",
                    "upstream": up("10.0.0.3:80"),
                    "timeout": {"read": 3},
                },
                {"id": "byid", "uri": "/n", "upstream_id": "named", "service_id": "svc"},
                {"id": "bysvc", "uri": "/s", "service_id": "svc"},
                {"id": "none", "uri": "/p", "plugins": {"t-b": {}}},
            ],
        }
    )
    r = s.routes
    assert [n.key for n in r["inline"].upstream.nodes] == ["10.0.0.3:80"]
    assert r["inline"].timeout == (60.0, 60.0, 3.0)
    assert r["byid"].upstream is s.upstreams["named"]
    assert r["byid"].service.id == "svc" and r["byid"].service.name == "Svc"
    assert [n.key for n in r["bysvc"].upstream.nodes] == ["10.0.0.2:80"]
    assert r["bysvc"].timeout is None
    assert r["none"].upstream is None and r["none"].service is None
    assert s.env.upstreams is s.upstreams


def test_auto_ids_and_names() -> None:
    s = build(
        {
            "routes": [
                {"uri": "/a", "upstream": up()},
                {"uri": "/b", "name": "bee", "upstream": up()},
            ]
        }
    )
    assert list(s.routes) == ["route-0", "route-1"]
    assert s.routes["route-1"].name == "bee"
    assert s.routes["route-0"].name == "route-0"


def test_plugin_merge_route_over_plugin_config_over_service() -> None:
    s = build(
        {
            "services": [
                {"id": "s", "upstream": up(), "plugins": {"t-a": {"tag": "service"}, "t-b": {}}}
            ],
            "plugin_configs": [{"id": "pc", "plugins": {"t-a": {"tag": "pc"}, "t-auth": {}}}],
            "routes": [
                {"id": "1", "uri": "/1", "service_id": "s"},
                {"id": "2", "uri": "/2", "service_id": "s", "plugin_config_id": "pc"},
                {
                    "id": "3",
                    "uri": "/3",
                    "service_id": "s",
                    "plugin_config_id": "pc",
                    "plugins": {"t-a": {"tag": "route"}},
                },
            ],
        }
    )

    def tag(rid: str) -> str:
        return s.routes[rid].instances["t-a"][0].conf.tag

    assert (tag("1"), tag("2"), tag("3")) == ("service", "pc", "route")
    assert names(s.routes["3"].chain) == ["t-auth", "t-a", "t-b"]  # descending priority
    # every route gets its own instances
    assert s.routes["1"].instances["t-b"][0] is not s.routes["2"].instances["t-b"][0]


def test_meta_disable_and_priority() -> None:
    s = build(
        {
            "routes": [
                {
                    "id": "r",
                    "uri": "/",
                    "upstream": up(),
                    "plugins": {
                        "t-a": {"_meta": {"disable": True}},
                        "t-b": {"_meta": {"priority": 999}},
                        "t-auth": {},
                    },
                },
            ],
            "consumers": [{"username": "u", "plugins": {"t-auth": {"key": "k"}}}],
        }
    )
    chain = s.routes["r"].chain
    assert names(chain) == ["t-auth", "t-b"]
    assert [p.name for p, _, _ in chain.access] == ["t-b"]
    assert s.routes["r"].instances["t-b"][1] == 999
    assert s.routes["r"].instances["t-auth"][1] == 2500


def test_plugin_config_errors_carry_field_paths() -> None:
    p = problems_of(
        {
            "services": [{"id": "s", "upstream": up(), "plugins": {"t-a": {"n": -1}}}],
            "routes": [
                {"uri": "/a", "upstream": up(), "plugins": {"t-a": {"n": "x"}}},
                {"uri": "/b", "upstream": up(), "plugins": {"t-a": {"n": -5}}},
                {"uri": "/c", "upstream": up(), "plugins": {"t-a": {"zzz": 1}}},
                {"uri": "/d", "upstream": up(), "plugins": {"t-b": {"x": 1}}},
                {"uri": "/e", "upstream": up(), "plugins": {"t-a": {"_meta": {"filter": []}}}},
                {"uri": "/f", "upstream_id": "missing", "plugins": {"acme/wasm": {"bad": True}}},
                {"uri": "/g", "upstream": up(), "plugins": {"t-a": 5}},
            ],
            "global_rules": [{"plugins": {"t-a": {"n": -2}}}],
        }
    )
    assert p == {
        "services[0].plugins.t-a.n": "must be >= 0",
        "routes[0].plugins.t-a.n": "Expected `int`, got `str`",
        "routes[1].plugins.t-a.n": "must be >= 0",
        "routes[2].plugins.t-a.zzz": "unknown field",
        "routes[3].plugins.t-b": "plugin 't-b' takes no configuration",
        "routes[4].plugins.t-a._meta.filter": "unknown field",
        "routes[5].upstream_id": "unknown upstream 'missing'",
        "routes[5].plugins.acme/wasm.bad": "the guest refused this configuration",
        "routes[6].plugins.t-a": "Expected `object`, got `int`",
        "global_rules[0].plugins.t-a.n": "must be >= 0",
    }


def test_unknown_plugin_reported_once() -> None:
    with pytest.raises(ConfigError) as e:
        build({"routes": [{"uri": "/", "upstream": up(), "plugins": {"nope": {}}}]})
    assert e.value.problems == [("routes[0].plugins.nope", "unknown plugin 'nope'")]


def test_factory_entries() -> None:
    s = build(
        {"routes": [{"id": "r", "uri": "/", "upstream": up(), "plugins": {"acme/wasm": {"k": 1}}}]}
    )
    inst, prio = s.routes["r"].instances["acme/wasm"]
    assert isinstance(inst, WasmLike) and inst.conf == {"k": 1} and prio == 7


def test_consumers_credentials_groups_and_chain_for_consumer() -> None:
    s = build(
        {
            "consumer_groups": [{"id": "gold", "plugins": {"t-a": {"tag": "group"}, "t-b": {}}}],
            "consumers": [
                {
                    "username": "alice",
                    "custom_id": "c-1",
                    "group_id": "gold",
                    "plugins": {"t-auth": {"key": "ka"}, "t-a": {"tag": "alice"}},
                },
                {"username": "bob", "group_id": "gold", "plugins": {"t-auth": {"key": "kb"}}},
                {"username": "carol", "plugins": {"t-auth": {"key": "kc"}}},
            ],
            "routes": [
                {
                    "id": "r",
                    "uri": "/",
                    "upstream": up(),
                    "plugins": {"t-auth": {}, "t-a": {"tag": "route"}},
                },
                {"id": "r2", "uri": "/2", "upstream": up(), "plugins": {"t-auth": {}}},
            ],
        }
    )
    alice, bob, carol = (s.consumers[n] for n in ("alice", "bob", "carol"))
    assert isinstance(alice, CompiledConsumer)
    assert (alice.custom_id, alice.group_id) == ("c-1", "gold")
    assert alice.credentials["t-auth"].key == "ka"
    assert "t-auth" not in alice.instances  # credentials are not plugins
    assert s.env.consumers is s.consumers
    assert s.env.consumer_index("t-auth") == {"ka": alice, "kb": bob, "kc": carol}

    route = s.routes["r"]
    assert route.chain_for_consumer(None) is route.chain
    assert route.chain_for_consumer(carol) is route.chain  # nothing to merge

    def tag(chain: Any) -> str:
        return next(p for p in chain.plugins if p.name == "t-a").conf.tag

    ca = route.chain_for_consumer(alice)
    assert tag(ca) == "alice"  # consumer > group > route
    assert names(ca) == ["t-auth", "t-a", "t-b"]
    assert route.chain_for_consumer(alice) is ca  # cached per consumer
    assert tag(route.chain_for_consumer(bob)) == "group"
    assert tag(route.chain) == "route"
    # rewrite handlers still to run once the consumer is known: only of plugins that
    # joined with it (t-a was already in r's chain; t-b has no rewrite phase)
    assert ca.joined_rewrite == []
    joined = s.routes["r2"].chain_for_consumer(alice).joined_rewrite
    assert [(h[0].name, h[0].conf.tag) for h in joined] == [("t-a", "alice")]


def test_credential_problems() -> None:
    p = problems_of(
        {
            "consumers": [
                {"username": "a", "plugins": {"t-auth": {"key": "same"}}},
                {"username": "b", "plugins": {"t-auth": {"key": "same"}}},
                {"username": "c", "plugins": {"t-auth": {}}},
                {"username": "d", "plugins": {"t-a": {"n": -1}}},
            ],
        }
    )
    assert p == {
        "consumers.plugins.t-auth.key": "b reuses a key",
        "consumers[2].plugins.t-auth.key": "required field missing",
        "consumers[3].plugins.t-a.n": "must be >= 0",
    }


def test_global_rules_merge_into_one_chain() -> None:
    s = build(
        {"global_rules": [{"id": 1, "plugins": {"t-b": {}}}, {"id": 2, "plugins": {"t-a": {}}}]}
    )
    assert names(s.global_chain) == ["t-a", "t-b"]


def test_router_only_has_enabled_routes_and_env_fields(tmp_path: Path) -> None:
    s = build(
        {
            "routes": [
                {"id": "on", "uri": "/*", "upstream": up()},
                {"id": "off", "uri": "/off", "status": 0, "upstream": up()},
            ]
        },
        base_dir=tmp_path,
        node_id="node-1",
        shared={"k": 1},
    )
    assert s.router.match(make_request("GET", "/off")).id == "on"  # "/off" is disabled
    assert s.router.count == 1
    assert (s.env.bundle_dir, s.env.node_id, s.env.shared) == (str(tmp_path), "node-1", {"k": 1})


def test_validation_and_compile_problems_come_together() -> None:
    p = problems_of(
        {
            "routes": [
                {"uri": "/a", "upstream_id": "x"},
                {"uri": "/b", "upstream": up(), "plugins": {"t-a": {"n": -1}}},
            ]
        }
    )
    assert set(p) == {"routes[0].upstream_id", "routes[1].plugins.t-a.n"}


def test_load_snapshot_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text("routes:\n  - uri: /\n    upstream_id: nope\n")
    with pytest.raises(ConfigError) as e:
        load_snapshot(tmp_path)
    assert e.value.lines() == [
        f"{tmp_path / 'edge.yaml'}: routes[0].upstream_id: unknown upstream 'nope'"
    ]
    (tmp_path / "edge.yaml").write_text("routes:\n  - uri: /\n    upstream: {nodes: {'a:1': 1}}\n")
    s = load_snapshot(tmp_path)
    assert s.base_dir == str(tmp_path) and s.env.bundle_dir == str(tmp_path)


def test_builtin_plugins_compile_through_the_registry() -> None:
    s = compile_snapshot(
        config(
            {
                "consumers": [{"username": "k", "plugins": {"key-auth": {"key": "secret"}}}],
                "routes": [{"id": "r", "uri": "/", "upstream": up(), "plugins": {"key-auth": {}}}],
            }
        )
    )
    assert names(s.routes["r"].chain) == ["key-auth"]
    assert s.env.consumer_index("key-auth") == {"secret": s.consumers["k"]}


def test_bad_upstreams_are_reported_once() -> None:
    p = problems_of(
        {
            "upstreams": [{"id": "u", "type": "chash", "hash_on": "header", "nodes": {"a:1": 1}}],
            "routes": [{"uri": "/", "upstream": {"nodes": {"a:x": 1}}}],
        }
    )
    assert p == {
        "upstreams[0].key": "hash_on 'header' needs a key",
        "routes[0].upstream.nodes": "bad port in node address 'a:x'",
    }


WASM_DECL = {"name": "acme/wasm", "file": "w.wasm", "sha256": "d" * 64}


def test_declared_wasm_plugins_use_the_snapshot_factories() -> None:
    s = build(
        {
            "wasm_plugins": [WASM_DECL],
            "routes": [{"id": "r", "uri": "/", "upstream": up(), "plugins": {"acme/wasm": {}}}],
        }
    )
    assert isinstance(s.routes["r"].instances["acme/wasm"][0], WasmLike)


def test_declared_wasm_plugin_without_a_host_is_one_problem() -> None:
    with pytest.raises(ConfigError) as e:
        compile_snapshot(
            config(
                {
                    "wasm_plugins": [{**WASM_DECL, "name": "acme/other"}],
                    "routes": [
                        {"uri": "/a", "upstream": up(), "plugins": {"acme/other": {}}},
                        {"uri": "/b", "upstream": up(), "plugins": {"acme/other": {}}},
                    ],
                }
            )
        )
    assert e.value.problems == [
        ("wasm_plugins[0]", "WASM plugin 'acme/other' is not loaded (no WASM host)")
    ]
    # the WASM host's own problems replace that generic one
    with pytest.raises(ConfigError) as e:
        compile_snapshot(
            config({"wasm_plugins": [{**WASM_DECL, "name": "acme/other"}]}),
            prior_problems=[("wasm_plugins[0].file", "cannot read w.wasm")],
        )
    assert e.value.problems == [("wasm_plugins[0].file", "cannot read w.wasm")]
