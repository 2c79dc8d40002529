"""``edge plugin build``: compile a plugin project with the right toolchain."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge.plugin_toolkit import paths


class BuildError(Exception):
    """The project is not buildable or the compiler failed (message says which)."""


@dataclass(frozen=True)
class Built:
    path: Path
    size: int
    sha256: str
    lang: str


def detect(project: Path) -> str:
    if (project / "Cargo.toml").is_file():
        return "rust"
    if (project / "asconfig.json").is_file() or (project / "assembly" / "index.ts").is_file():
        return "assemblyscript"
    raise BuildError(
        f"{project}: not a plugin project (no Cargo.toml, asconfig.json or assembly/index.ts)"
    )


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        out = (proc.stderr or "") + (proc.stdout or "")
        raise BuildError(f"{' '.join(cmd[:2])} failed in {cwd}:\n{out.strip()}")


def _crate_name(project: Path) -> str:
    for line in (project / "Cargo.toml").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "name":
            return value.strip().strip('"').replace("-", "_")
    raise BuildError(f"{project / 'Cargo.toml'}: no package name")


def build_rust(project: Path) -> Path:
    cargo = paths.cargo()
    rustc = paths.rustc()
    sysroot = subprocess.run(
        [rustc, "--print", "sysroot"], capture_output=True, text=True, check=False
    ).stdout.strip()
    paths.check_wasm_std(rustc, sysroot)
    env = dict(os.environ, RUSTC=rustc)
    env.setdefault("CARGO_TARGET_DIR", str(project / "target"))
    _run(
        [cargo, "build", "--offline", "--release", "--target", "wasm32-unknown-unknown"],
        project,
        env,
    )
    name = _crate_name(project)
    built = Path(env["CARGO_TARGET_DIR"]) / "wasm32-unknown-unknown" / "release" / f"{name}.wasm"
    if not built.is_file():
        raise BuildError(f"cargo finished but {built} is missing (is crate-type cdylib?)")
    out = project / "dist" / f"{project.resolve().name}.wasm"
    out.parent.mkdir(exist_ok=True)
    shutil.copyfile(built, out)
    return out


def build_assemblyscript(project: Path) -> Path:
    cmd, extra = paths.asc(project)
    out = project / "dist" / f"{project.resolve().name}.wasm"
    out.parent.mkdir(exist_ok=True)
    args = [*cmd, "assembly/index.ts", "-o", str(out), *extra]
    conf = project / "asconfig.json"
    if conf.is_file():
        try:
            json.loads(conf.read_text())
        except ValueError as e:
            raise BuildError(f"{conf}: not valid JSON ({e})") from e
        args += ["--config", "asconfig.json", "--target", "release"]
    _run(args, project)
    return out


def build(project: Path) -> Built:
    project = project.resolve()
    lang = detect(project)
    wasm = build_rust(project) if lang == "rust" else build_assemblyscript(project)
    data = wasm.read_bytes()
    return Built(wasm, len(data), hashlib.sha256(data).hexdigest(), lang)
