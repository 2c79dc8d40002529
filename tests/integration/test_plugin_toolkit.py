"""`edge plugin new -> build -> test` for both languages, run as a plugin author would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.wasm_build import plugin

ROOT = Path(__file__).resolve().parents[2]


def edge(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "edge", "plugin", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.mark.parametrize("lang", ["rust", "assemblyscript"])
def test_new_build_test(tmp_path: Path, lang: str) -> None:
    name = f"hello-{lang[:2]}"
    made = edge("new", name, "--lang", lang, "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    project = tmp_path / name
    assert (project / "tests" / f"test_{name.replace('-', '_')}.py").is_file()

    built = edge("build", str(project))
    assert built.returncode == 0, built.stderr
    lines = dict(line.split(": ", 1) for line in built.stdout.splitlines())
    wasm = Path(lines["module"])
    assert wasm.is_file() and int(lines["size"].split()[0]) == wasm.stat().st_size
    assert len(lines["sha256"]) == 64

    conf = json.dumps({"header": "x-hello", "value": "world"})
    ran = edge("test", str(wasm), "--config", conf, "--path", "/hi", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout)
    assert report["host"].startswith("edge.wasm")
    assert ["x-hello", "world"] in [[k.lower(), v] for k, v in report["upstream"]["headers"]]
    assert any(f"{name}: set x-hello on /hi" in m for _l, m in report["logs"])
    assert "proxy_on_request_headers" in report["timings_us"]

    rejected = edge("test", str(wasm), "--config", "{}")
    assert rejected.returncode == 2
    assert "CONFIGURATION REJECTED" in rejected.stdout and "'header'" in rejected.stdout

    # the skeleton's own test passes as generated
    own = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert own.returncode == 0, own.stdout + own.stderr


def test_missing_toolchains_name_the_package(tmp_path: Path) -> None:
    edge("new", "nocargo", "--lang", "rust", "--dir", str(tmp_path))
    r = edge("build", str(tmp_path / "nocargo"), env={"CARGO": "/nonexistent/cargo"})
    assert r.returncode == 1
    assert "libstd-rust-dev-wasm32" in r.stderr and "apt-get install cargo" in r.stderr
    edge("new", "noasc", "--lang", "assemblyscript", "--dir", str(tmp_path))
    r = edge("build", str(tmp_path / "noasc"), env={"ASC": "/nonexistent/asc"})
    assert r.returncode == 1 and "ASC=/nonexistent/asc" in r.stderr
    r = edge("build", str(tmp_path))
    assert r.returncode == 1 and "not a plugin project" in r.stderr


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    r = edge("new", "Bad Name", "--lang", "rust", "--dir", str(tmp_path))
    assert r.returncode == 1 and "plugin name" in r.stderr
    guard = plugin("request-guard")
    bad = tmp_path / "req.json"
    bad.write_text('{"method": "GET", "headers": 5}')
    r = edge("test", str(guard), "--request", str(bad))
    assert r.returncode == 3 and "req.json.headers" in r.stderr
    r = edge("test", str(guard), "--header", "no-colon")
    assert r.returncode == 3 and "expected 'Name: value'" in r.stderr
    r = edge("test", str(tmp_path / "missing.wasm"))
    assert r.returncode == 3


def test_request_and_upstream_files(tmp_path: Path) -> None:
    redact = plugin("json-redact")
    req = tmp_path / "req.http"
    req.write_bytes(b"GET /users/1 HTTP/1.1\r\nHost: api\r\n\r\n")
    up = tmp_path / "up.http"
    up.write_bytes(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ssn": "1", "n": 2}')
    conf = tmp_path / "conf.json"
    conf.write_text('{"paths": ["ssn"]}')
    r = edge(
        "test",
        str(redact),
        "--config",
        f"@{conf}",
        "--request",
        str(req),
        "--upstream-response",
        str(up),
    )
    assert r.returncode == 0, r.stderr
    assert '{"ssn": "***", "n": 2}' in r.stdout
    assert "== client would receive (from upstream) ==" in r.stdout
    assert "fields_redacted = 1" in r.stdout


def test_a_trap_exits_1(tmp_path: Path) -> None:
    # a module whose request callback executes `unreachable`, like a Rust panic
    wat = tmp_path / "trap.wat"
    wat.write_text("""(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "malloc") (param i32) (result i32) i32.const 1024)
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable))""")
    import wasmtime

    wasm = tmp_path / "trap.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(wat.read_text()))
    r = edge("test", str(wasm))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "TRAP: proxy_on_request_headers: unreachable" in r.stdout
    report = json.loads(edge("test", str(wasm), "--json").stdout)
    assert report["trap"].startswith("proxy_on_request_headers: unreachable")
    assert report["backtrace"], "the wasm backtrace of the trap"
    assert report["client"]["status"] == 503  # fail_closed, as on a gateway
    gone = edge("test", str(wasm), "--host", "harness")
    assert gone.returncode == 2 and "--host" in gone.stderr  # one host only: production


def test_http_calls_reach_named_upstreams() -> None:
    from tests.support.upstream import Upstream
    from tests.support.wasm_build import rust_sdk_example

    module = rust_sdk_example("api_http_call")
    with Upstream("auth") as up:
        r = edge(
            "test", str(module), "--config", "auth", "--call-upstream", f"auth={up.addr}", "--json"
        )
        assert r.returncode == 0, r.stdout + r.stderr
        report = json.loads(r.stdout)
        headers = dict((k.lower(), v) for k, v in report["upstream"]["headers"])
        assert headers["x-call-status"] == "200"
        assert up.requests and up.requests[-1]["path"] == "/check"
    bad = edge("test", str(module), "--call-upstream", "nohost")
    assert bad.returncode == 3 and "ID=HOST:PORT" in bad.stderr
