"""`edge validate` as a user runs it: a real subprocess, real files, exit codes, lines."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import ROOT, SHARED


def run_validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "validate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


GOOD = """\
upstreams:
  - id: web
    nodes: {"127.0.0.1:9081": 1}
routes:
  - id: root
    uri: /
    upstream_id: web
  - id: api
    uris: [/api/*]
    hosts: ["*.example.com"]
    vars: [["http_x_beta", "==", "1"]]
    upstream:
      type: chash
      key: remote_addr
      nodes: [{host: 127.0.0.1, port: 9082}]
"""

BAD = """\
upstreams:
  - id: web
    nodes: {"127.0.0.1:70000": 1}
routes:
  - id: root
    uri: /
    upstream_id: payments
  - uri: /x
    vars: [["arg_x", "~~", "("]]
    upstream_id: web
  - uri: /y
    upstream_id: web
    plugins: {no-such-plugin: {}}
ssls:
  - snis: [a.example.com]
    cert: CERT
    key: |
      -----BEGIN PRIVATE KEY-----
      MIIB
      -----END PRIVATE KEY-----
"""


def test_valid_file_exits_0(tmp_path: Path) -> None:
    f = tmp_path / "edge.yaml"
    f.write_text(GOOD)
    r = run_validate(str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"OK: {f} (2 routes, 0 services, 1 upstreams")


def test_directory_and_json(tmp_path: Path) -> None:
    (tmp_path / "edge.json").write_text(
        json.dumps({"routes": [{"uri": "/", "upstream": {"nodes": {"127.0.0.1:1": 1}}}]})
    )
    r = run_validate(str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"OK: {tmp_path} (1 routes")


def test_quickstart_example_is_valid() -> None:
    r = run_validate("examples/quickstart")
    assert r.returncode == 0, r.stdout + r.stderr


def test_invalid_file_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text(BAD)
    r = subprocess.run(
        [sys.executable, "-m", "edge", "validate", "edge.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "edge.yaml: upstreams[0].nodes[0].port: port 70000 out of range 1-65535",
        "edge.yaml: routes[0].upstream_id: unknown upstream 'payments'",
        "edge.yaml: routes[1].vars[0]: bad regex '(': missing ), unterminated subpattern "
        "at position 0",
        "edge.yaml: routes[2].plugins.no-such-plugin: unknown plugin 'no-such-plugin'",
        "edge.yaml: ssls[0].key: a PEM private key in clear is not allowed in a configuration; "
        "give the private key as a secret reference ($env://NAME, $file:///path, "
        "$aws-sm://name#key or $gcp-sm://projects/...)",
    ]
    assert "MIIB" not in r.stdout + r.stderr  # the secret itself is never echoed


def test_type_errors_and_yaml_errors_exit_1(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("routes:\n  - uri: /\n    priority: high\n  - uri: /b\n    colour: red\n")
    r = run_validate(str(f))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{f}: routes[0].priority: Expected `int`, got `str`",
        f"{f}: routes[1].colour: unknown field",
    ]
    f.write_text("routes: [\n")
    r = run_validate(str(f))
    assert r.returncode == 1
    assert r.stdout.startswith(f"{f}: YAML error at line 2 column 1")


def test_unreadable_exits_2(tmp_path: Path) -> None:
    r = run_validate(str(tmp_path / "missing.yaml"))
    assert r.returncode == 2
    assert r.stdout == ""
    assert "missing.yaml: no such file" in r.stderr


def test_help() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "edge", "validate", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0
    assert "Exit status: 0 valid" in r.stdout


def test_wasm_plugins_are_loaded_and_checked(tmp_path: Path) -> None:
    pytest.importorskip("edge.wasm.host")
    corpus = SHARED / "wasm-corpus" / "go_http_headers.wasm"
    if not corpus.exists():
        pytest.skip("wasm corpus not present")
    data = corpus.read_bytes()
    (tmp_path / "h.wasm").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    cfg = {
        "tenants": [{"id": "acme"}],
        "wasm_plugins": [
            {"name": "acme/headers", "file": "h.wasm", "sha256": digest, "tenant": "acme"}
        ],
        "routes": [
            {
                "uri": "/",
                "upstream": {"nodes": {"127.0.0.1:1": 1}},
                "plugins": {"acme/headers": {}},
            }
        ],
    }
    (tmp_path / "edge.json").write_text(json.dumps(cfg))
    r = run_validate(str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    cfg["wasm_plugins"].append({"name": "acme/gone", "file": "gone.wasm", "sha256": digest})
    (tmp_path / "edge.json").write_text(json.dumps(cfg))
    r = run_validate(str(tmp_path))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{tmp_path / 'edge.json'}: wasm_plugins[1].file: cannot read gone.wasm: "
        "No such file or directory"
    ]
