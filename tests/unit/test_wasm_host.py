"""edge.wasm.host: a bundle's wasm_plugins -> registry factories -> a compiled snapshot."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from edge.config.model import Config
from edge.errors import ConfigError
from edge.snapshot import compile_snapshot
from edge.wasm.host import SHARED_KEY, plugin_entries
from edge.wasm.plugin import WasmPlugin
from tests.support.wasm import CORPUS, sha, wat


def bundle(tmp_path: Path, plugins: list[dict[str, Any]], routes: list[dict[str, Any]]) -> Config:
    raw = {
        "tenants": [{"id": "acme", "limits": {"memory_mb": 32, "cpu_ms_per_call": 5}}],
        "upstreams": [{"id": "u1", "nodes": {"127.0.0.1:9": 1}}],
        "wasm_plugins": plugins,
        "routes": routes,
    }
    return msgspec.convert(raw, Config)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    shutil.copy(CORPUS / "go_http_headers.wasm", tmp_path / "hdr.wasm")
    (tmp_path / "hostile.wasm").write_bytes(wat("hostile"))
    return tmp_path


def hdr_plugin(**kw: Any) -> dict[str, Any]:
    d = {
        "name": "acme/hdr",
        "file": "hdr.wasm",
        "sha256": sha((CORPUS / "go_http_headers.wasm").read_bytes()),
        "tenant": "acme",
        "priority": 500,
    }
    d.update(kw)
    return d


def route(conf: Any, name: str = "acme/hdr") -> dict[str, Any]:
    return {"id": "r1", "uri": "/x", "upstream_id": "u1", "plugins": {name: {"conf": conf}}}


def compile_with(tmp: Path, config: Config, shared: dict[str, Any]) -> Any:
    entries = plugin_entries(config, base_dir=tmp, shared=shared, cache_dir=None)
    return compile_snapshot(config, base_dir=tmp, shared=shared, extra_plugins=entries)


def test_snapshot_with_a_wasm_plugin(files: Path) -> None:
    shared: dict[str, Any] = {}
    cfg = bundle(files, [hdr_plugin()], [route({"header": "x-a", "value": "1"})])
    compile_with(files, cfg, shared)
    (rt,) = shared[SHARED_KEY].values()
    assert rt.spec.tenant == "acme" and rt.spec.memory_bytes == 32 << 20 and rt.spec.cpu_ms == 5
    assert rt.vm is not None and len(rt.vm.roots) == 1
    # the same plugin in the next bundle keeps its runtime (and VM)
    vm = rt.vm
    compile_with(files, cfg, shared)
    assert list(shared[SHARED_KEY].values()) == [rt] and rt.vm is vm


def test_factory_builds_wasm_plugin_instances(files: Path) -> None:
    cfg = bundle(files, [hdr_plugin(failure_policy="fail_open")], [route(None)])
    entries = plugin_entries(cfg, base_dir=files, cache_dir=None)
    from edge.plugins.base import CompileEnv

    p = entries["acme/hdr"]("acme/hdr", {"conf": None}, CompileEnv())
    assert isinstance(p, WasmPlugin) and p.priority == 500 and p.fail_open


def test_bad_plugin_configuration_names_route_plugin_and_module_log(files: Path) -> None:
    from edge.plugins import registry
    from edge.plugins.base import CompileEnv

    cfg = bundle(files, [hdr_plugin()], [])
    entries = plugin_entries(cfg, base_dir=files, cache_dir=None)
    with pytest.raises(registry.ConfigProblems) as ei:
        registry.build(
            "acme/hdr", {"conf": "{not json"}, CompileEnv(), "routes[0].plugins.acme/hdr", entries
        )
    ((field, message),) = ei.value.problems
    assert field == "routes[0].plugins.acme/hdr.conf"
    assert "proxy_on_configure returned false" in message and "module log:" in message


def test_bad_plugin_configuration_fails_the_snapshot(files: Path) -> None:
    cfg = bundle(files, [hdr_plugin()], [route("{not json")])
    with pytest.raises(ConfigError) as ei:
        compile_with(files, cfg, {})
    text = "\n".join(ei.value.lines())
    assert "routes[0].plugins.acme/hdr.conf" in text
    assert "proxy_on_configure returned false" in text
    assert "built-in" not in text


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"sha256": "0" * 64}, "wasm_plugins[0].sha256", "pins"),
        ({"file": "missing.wasm"}, "wasm_plugins[0].file", "cannot read"),
        ({"file": "junk.wasm"}, "wasm_plugins[0].file", "does not compile"),
        ({"file": "noabi.wasm"}, "wasm_plugins[0].file", "proxy_abi_version"),
    ],
)
def test_module_problems_name_the_field(
    files: Path, change: dict[str, Any], field: str, needle: str
) -> None:
    import wasmtime

    (files / "junk.wasm").write_bytes(b"\0asm\1\0\0\0garbage")
    (files / "noabi.wasm").write_bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))
    p = hdr_plugin(**change)
    if change.get("file") in ("junk.wasm", "noabi.wasm"):
        p["sha256"] = sha((files / change["file"]).read_bytes())
    with pytest.raises(ConfigError) as ei:
        plugin_entries(bundle(files, [p], []), base_dir=files, cache_dir=None)
    (problem,) = ei.value.problems
    assert problem[0] == field and needle in problem[1]


def test_tenant_limits_and_plugin_overrides(files: Path) -> None:
    shared: dict[str, Any] = {}
    p = hdr_plugin(
        limits={"memory_mb": 8},
        allowed_capabilities=["proxy_log"],
        http_call_upstreams=["u1"],
        vm_config={"k": "v"},
    )
    plugin_entries(bundle(files, [p], []), base_dir=files, shared=shared, cache_dir=None)
    (rt,) = shared[SHARED_KEY].values()
    assert rt.spec.memory_bytes == 8 << 20 and rt.spec.cpu_ms == 5  # cpu from the tenant
    assert rt.spec.allowed == frozenset({"proxy_log"})
    assert rt.spec.vm_config == b'{"k":"v"}'
    assert set(rt.upstreams) == {"u1"}
