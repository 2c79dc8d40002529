"""The Rust SDK's and the Rust plugins' pure modules (JSON reader, header-map codec,
WAF rules and config, JSON redaction), run as native `cargo test` unit tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CARGO = os.environ.get("CARGO", "/usr/bin/cargo")
RUSTC = os.environ.get("RUSTC", "/usr/bin/rustc")


@pytest.mark.parametrize(
    "crate", ["plugin_sdk/rust", "plugins_wasm/request-guard", "plugins_wasm/json-redact"]
)
def test_cargo_unit_tests(crate: str) -> None:
    env = dict(os.environ, RUSTC=RUSTC, CARGO_TARGET_DIR=str(ROOT / "plugins_wasm" / "target"))
    proc = subprocess.run(
        [
            CARGO,
            "test",
            "--offline",
            "--quiet",
            "--lib",
            "--manifest-path",
            str(ROOT / crate / "Cargo.toml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test result: ok" in proc.stdout
