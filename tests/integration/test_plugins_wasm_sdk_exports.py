"""Which proxy_on_* callbacks SDK-built modules export.

The host skips a phase whose callback a module does not export (edge/wasm/plugin.py
``unchained_phases``), so the SDKs let a plugin export only what it implements: Rust
``main! { hooks: [...]; ... }``, AssemblyScript ``exports_base`` plus named callbacks.
Without a list every callback is exported, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from edge.wasm.plugin import unchained_phases
from tests.support.wasm_build import as_sdk_example, header, plugin, run, rust_sdk_example

BASE = {
    "proxy_on_context_create",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_delete",
}
ALL = BASE | {
    "proxy_on_done",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_http_call_response",
    "proxy_on_log",
    "proxy_on_tick",
    "proxy_on_queue_ready",
}
REQUEST = BASE | {"proxy_on_request_headers", "proxy_on_request_body"}
RESPONSE = BASE | {"proxy_on_response_headers", "proxy_on_response_body"}


def exports(path: Path) -> set[str]:
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(path))
    return {e.name for e in module.exports}


def callbacks(path: Path) -> set[str]:
    return {n for n in exports(path) if n.startswith("proxy_on_")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("request-guard", REQUEST),
        ("signed-request", REQUEST),
        ("form-to-json", REQUEST),
        ("json-redact", RESPONSE),
    ],
)
def test_plugins_export_only_the_callbacks_they_implement(name: str, expected: set[str]) -> None:
    got = exports(plugin(name))
    assert {n for n in got if n.startswith("proxy_on_")} == expected
    assert {"proxy_abi_version_0_2_1", "malloc", "_initialize", "memory"} <= got


def test_request_only_plugins_stay_out_of_the_response_phases() -> None:
    # the chain never calls an unchained phase
    assert unchained_phases(exports(plugin("request-guard"))) == {"header_filter", "body_filter"}


@pytest.mark.parametrize("build", [rust_sdk_example, as_sdk_example], ids=["rust", "as"])
def test_a_list_selects_the_exports(build: Callable[[str], Path]) -> None:
    module = build("header_filter")
    assert callbacks(module) == BASE | {"proxy_on_response_headers"}
    r = run(module, "")
    assert r["trap"] is None and r["upstream"] is not None
    assert header(r["client"], "x-edge-filter") in ("rust", "assemblyscript")


@pytest.mark.parametrize("build", [rust_sdk_example, as_sdk_example], ids=["rust", "as"])
def test_the_minimal_header_filter_is_well_under_100_kb(build: Callable[[str], Path]) -> None:
    # release builds, as the SDKs' profiles make them (Rust at opt-level 3 for speed)
    assert build("header_filter").stat().st_size < 50 * 1024


@pytest.mark.parametrize("build", [rust_sdk_example, as_sdk_example], ids=["rust", "as"])
def test_without_a_list_every_callback_is_exported(build: Callable[[str], Path]) -> None:
    assert callbacks(build("api_headers")) == ALL
