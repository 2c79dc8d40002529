"""Where the SDKs and toolchains live, and the messages when one is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# the checkout (editable install) that holds plugin_sdk/ and the npm workspace
REPO = Path(__file__).resolve().parents[2]
RUST_SDK = REPO / "plugin_sdk" / "rust"
AS_SDK = REPO / "plugin_sdk" / "assemblyscript"
AS_SDK_PACKAGE = "@edge/proxy-wasm-sdk"
ASSEMBLYSCRIPT_VERSION = "0.28.9"

# Debian's rustc 1.63 has the wasm32 std; the rustup toolchain often first on PATH has not
DEFAULT_CARGO = "/usr/bin/cargo"
DEFAULT_RUSTC = "/usr/bin/rustc"


class ToolchainMissing(Exception):
    """A build tool is absent; the message names the package that provides it."""


def cargo() -> str:
    path = os.environ.get("CARGO", DEFAULT_CARGO)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ToolchainMissing(
            f"Rust toolchain not found: no cargo at {path}. Install the Debian packages "
            "'cargo', 'rustc' and 'libstd-rust-dev-wasm32' (apt-get install cargo rustc "
            "libstd-rust-dev-wasm32), or set CARGO/RUSTC."
        )
    return path


def rustc() -> str:
    path = os.environ.get("RUSTC", DEFAULT_RUSTC)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ToolchainMissing(
            f"Rust toolchain not found: no rustc at {path}. Install the Debian package "
            "'rustc' (apt-get install rustc libstd-rust-dev-wasm32), or set RUSTC."
        )
    return path


def check_wasm_std(rustc_path: str, sysroot: str) -> None:
    if not (Path(sysroot) / "lib" / "rustlib" / "wasm32-unknown-unknown").is_dir():
        raise ToolchainMissing(
            f"{rustc_path} has no wasm32-unknown-unknown standard library. Install the Debian "
            "package 'libstd-rust-dev-wasm32' (apt-get install libstd-rust-dev-wasm32)."
        )


def asc(project: Path) -> tuple[list[str], list[str]]:
    """The AssemblyScript compiler command and extra arguments for ``project``.

    The project's own ``node_modules`` wins; otherwise the edge checkout's npm workspace
    is used, with its ``node_modules`` added to the module search path so the SDK
    package resolves without an ``npm install``.
    """
    env = os.environ.get("ASC")
    if env:
        if not shutil.which(env):
            raise ToolchainMissing(f"ASC={env} is not an executable")
        return [env], []
    own = project / "node_modules" / ".bin" / "asc"
    if own.exists():
        return [str(own)], []
    shared = REPO / "node_modules" / ".bin" / "asc"
    if shared.exists():
        return [str(shared)], ["--path", str(REPO / "node_modules")]
    if not shutil.which("node") or not shutil.which("npm"):
        raise ToolchainMissing(
            "AssemblyScript toolchain not found: Node.js and npm are missing. Install the "
            "Debian packages 'nodejs' and 'npm' (apt-get install nodejs npm; Node 20 or "
            f"newer), then run 'npm install' in {project} (npm package "
            f"assemblyscript@{ASSEMBLYSCRIPT_VERSION})."
        )
    raise ToolchainMissing(
        f"AssemblyScript compiler not found: run 'npm install' in {project} (it installs the "
        f"npm package assemblyscript@{ASSEMBLYSCRIPT_VERSION} and {AS_SDK_PACKAGE})."
    )
