"""The corpus and hostile guests through the real gateway (``edge run``), observed at the
client and at the upstream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.procs import wait_until
from tests.support.wasm import CORPUS, sha, wat

MODULES = {
    "go_http_headers": CORPUS / "go_http_headers.wasm",
    "go_http_body": CORPUS / "go_http_body.wasm",
    "cpp_on_request_headers": CORPUS / "cpp_on_request_headers.wasm",
    "rust_hello_world": CORPUS / "rust_hello_world.wasm",
    "tinygo_add_req_header": CORPUS / "tinygo_add_req_header.wasm",
}


def _plugin(name: str, file: str, digest: str, tenant: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "file": file, "sha256": digest, "tenant": tenant, **kw}


@pytest.fixture(scope="module")
def gw() -> Iterator[Any]:
    from tests.support.plugins import Gateway, gateway_config
    from tests.support.procs import EdgeProcess
    from tests.support.upstream import Upstream

    with Upstream() as up:
        wasm_plugins = []
        for name, path in MODULES.items():
            wasm_plugins.append(
                _plugin(f"corpus/{name}", f"{name}.wasm", sha(path.read_bytes()), "corpus")
            )
        hostile = wat("hostile")
        # one plugin per mode: the module keeps its mode in a VM global, and the root
        # contexts of one plugin share its VM
        wasm_plugins.append(_plugin("evil/hostile", "hostile.wasm", sha(hostile), "evil"))
        wasm_plugins.append(
            _plugin("evil/bomb", "hostile.wasm", sha(hostile), "evil", limits={"memory_mb": 16})
        )
        wasm_plugins.append(
            _plugin(
                "evil/open", "hostile.wasm", sha(hostile), "evil-open", failure_policy="fail_open"
            )
        )
        wasm_plugins.append(_plugin("good/healthy", "hostile.wasm", sha(hostile), "good"))
        alternate = wat("alternate")
        wasm_plugins.append(_plugin("good/alternate", "alternate.wasm", sha(alternate), "good"))
        routes = [
            {
                "id": "hdr",
                "uri": "/hdr",
                "plugins": {"corpus/go_http_headers": {"conf": {"header": "x-conf", "value": "v"}}},
            },
            {"id": "tiny", "uri": "/tiny", "plugins": {"corpus/tinygo_add_req_header": {}}},
            {"id": "cpp", "uri": "/cpp", "plugins": {"corpus/cpp_on_request_headers": {}}},
            {"id": "rust", "uri": "/rust", "plugins": {"corpus/rust_hello_world": {}}},
            {"id": "echo", "uri": "/echo", "plugins": {"corpus/go_http_body": {"conf": "echo"}}},
            {"id": "body", "uri": "/body", "plugins": {"corpus/go_http_body": {}}},
            {"id": "loop", "uri": "/loop", "plugins": {"evil/hostile": {"conf": "a"}}},
            {"id": "bomb", "uri": "/bomb", "plugins": {"evil/bomb": {"conf": "m"}}},
            {"id": "open", "uri": "/open", "plugins": {"evil/open": {"conf": "u"}}},
            {"id": "good", "uri": "/good", "plugins": {"good/healthy": {"conf": "0"}}},
            {"id": "alt", "uri": "/alt", "plugins": {"good/alternate": {}}},
        ]
        cfg = gateway_config(
            routes,
            up.addr,
            tenants=[{"id": "corpus"}, {"id": "evil"}, {"id": "evil-open"}, {"id": "good"}],
            wasm_plugins=wasm_plugins,
        )
        # compiled artifacts from this test process: the gateway deserializes them
        from edge.wasm.engine import default_cache_dir, load_module

        for path in MODULES.values():
            load_module(path.read_bytes(), None, default_cache_dir())
        proc = EdgeProcess(cfg, workers=1, env={"EDGE_WASM_CACHE": default_cache_dir()})
        for name, path in MODULES.items():
            shutil.copy(path, proc.tmp / f"{name}.wasm")
        (proc.tmp / "hostile.wasm").write_bytes(hostile)
        (proc.tmp / "alternate.wasm").write_bytes(alternate)
        with proc:
            g = Gateway(proc, up)
            try:
                yield g
            finally:
                g.http.close()


def test_go_http_headers(gw: Any) -> None:
    for n in (1, 2):
        r = gw.get("/hdr")
        assert r.status_code == 200
        assert r.headers["x-proxy-wasm-go-sdk-example"] == "http_headers"
        assert r.headers["x-conf"] == "v"
        assert r.headers["x-proxy-wasm-counter"] == str(n)
        assert gw.upstream_headers(r)["test"] == ["best"]


def test_tinygo_and_cpp_and_rust(gw: Any) -> None:
    r = gw.get("/tiny")
    assert r.status_code == 200 and gw.upstream_headers(r)["wasm-context"][0].isdigit()
    assert gw.get("/cpp").status_code == 200
    for _ in range(2):
        assert gw.get("/rust").status_code == 200


def test_an_edit_on_one_request_never_reaches_the_next(gw: Any) -> None:
    # identical requests on one connection: the forwarded head of an untouched one is
    # reused, so a head a plugin edited must not be, nor may an edit be missed
    seen = []
    for _ in range(4):
        r = gw.get("/alt", headers={"x-same": "1"})
        assert r.status_code == 200
        seen.append(gw.upstream_headers(r).get("x-alternate"))
    assert seen == [["odd"], None, ["odd"], None]


def test_go_http_body(gw: Any) -> None:
    r = gw.request("POST", "/echo", content=b"ping")
    assert r.status_code == 200 and r.content == b"ping"
    r = gw.request("POST", "/body", content=b"body", headers={"buffer-operation": "append"})
    assert r.status_code == 200
    assert r.json()["body"] == "body[this is appended body]"
    assert gw.get("/body").status_code == 400


def test_go_http_body_large_and_chunked(gw: Any) -> None:
    big = bytes(range(256)) * 400  # 100 KiB: past the size the proxy buffers anyway

    def chunks() -> Any:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    # echo pauses on request headers, so the body is held for it and the local answer
    # goes back even for a chunked upload that never reaches the upstream
    r = gw.request("POST", "/echo", content=chunks())
    assert r.status_code == 200 and r.content == big
    r = gw.request("POST", "/body", content=big, headers={"buffer-operation": "prepend"})
    assert r.status_code == 200
    assert r.json()["body"].encode("latin-1") == b"[this is prepended body]" + big


def test_hostile_guests_beside_a_healthy_one(gw: Any) -> None:
    r = gw.get("/loop")
    assert r.status_code == 503 and r.json() == {"error_msg": "wasm plugin evil/hostile failed"}
    r = gw.get("/good")
    assert r.status_code == 200 and gw.upstream_headers(r)["x-healthy"] == ["yes"]
    r = gw.get("/bomb")
    assert r.status_code == 200 and gw.upstream_headers(r)["x-grow-failed"] == ["yes"]
    r = gw.get("/open")  # fail_open: served without the plugin
    assert r.status_code == 200
    assert gw.get("/good").status_code == 200
    trap = 'edge_wasm_traps_total{kind="interrupt",plugin="evil/hostile",tenant="evil"}'
    wait_until(lambda: trap in gw.metrics_text(), 10, "the trap counted")
