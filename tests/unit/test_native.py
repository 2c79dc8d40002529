"""edge/native.py: compiled modules are used only for the exact source they came from."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import edge.reactor
from edge import native
from edge.wasm import fastcall
from edge.wasm.abi import Status


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text("X = 1\n")
    return pkg


def _build(tmp_path: Path, pkg: Path, digest: str | None = None) -> Path:
    d = tmp_path / "build"
    d.mkdir()
    (d / "mod.so").write_bytes(b"")
    stamp = {
        "source": digest or native.source_digest(pkg),
        "modules": ["pkg.sub.mod"],
        "files": {"pkg.sub.mod": "mod.so"},
    }
    (d / native.STAMP).write_text(json.dumps(stamp))
    return d


@pytest.fixture
def restore(monkeypatch: pytest.MonkeyPatch):
    """install() edits sys.meta_path and the module state: put both back."""
    monkeypatch.delenv("EDGE_NATIVE", raising=False)
    meta = list(sys.meta_path)
    state = native.state
    yield
    sys.meta_path[:] = meta
    native.state = state


def test_digest_covers_every_file_and_its_path(tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    d0 = native.source_digest(pkg)
    (pkg / "sub" / "mod.py").write_text("X = 2\n")
    d1 = native.source_digest(pkg)
    (pkg / "sub" / "mod.py").rename(pkg / "sub" / "other.py")
    d2 = native.source_digest(pkg)
    (pkg / "new.py").write_text("")
    d3 = native.source_digest(pkg)
    assert len({d0, d1, d2, d3}) == 4


def test_a_build_of_this_source_installs_a_finder_for_its_modules(
    tmp_path: Path, restore: None
) -> None:
    pkg = _package(tmp_path)
    d = _build(tmp_path, pkg)
    assert native.install(d, pkg)
    assert native.state == "on (1 modules)" and native.active()
    finder = sys.meta_path[0]
    spec = finder.find_spec("pkg.sub.mod", None)
    assert spec is not None and spec.origin == str(d / "mod.so")
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    # any other module is left to the normal finders
    assert finder.find_spec("pkg.sub", None) is None


@pytest.mark.parametrize(
    ("spoil", "state"),
    [
        ("edit", "stale (the source changed"),
        ("missing", "not built"),
        ("garbage", "unreadable build in"),
        ("no_so", "incomplete build in"),
        ("off", "off (EDGE_NATIVE=0)"),
    ],
)
def test_no_finder_unless_the_build_matches(
    tmp_path: Path, restore: None, monkeypatch: pytest.MonkeyPatch, spoil: str, state: str
) -> None:
    pkg = _package(tmp_path)
    d = _build(tmp_path, pkg)
    if spoil == "edit":
        (pkg / "sub" / "mod.py").write_text("X = 3\n")
    elif spoil == "missing":
        (d / native.STAMP).unlink()
    elif spoil == "garbage":
        (d / native.STAMP).write_text("{not json")
    elif spoil == "no_so":
        (d / "mod.so").unlink()
    else:
        monkeypatch.setenv("EDGE_NATIVE", "0")
    meta = list(sys.meta_path)
    assert not native.install(d, pkg)
    assert native.state.startswith(state)
    assert not native.active()
    assert sys.meta_path == meta


def test_the_running_package_is_compiled_exactly_when_native_says_so() -> None:
    compiled = edge.reactor.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert compiled == native.active()
    # the C crossings of the WASM host come with the same build
    assert (fastcall._wasmcall is not None) == compiled
    if fastcall._wasmcall is not None:
        # the C deadline callback stops a call at the same wall-time factor
        assert fastcall._wasmcall.WALL_FACTOR == fastcall.WALL_FACTOR
        # and answers a result it cannot give as the Python crossing does
        assert fastcall._wasmcall.GIVE_FAILED == fastcall.GIVE_FAILED
        assert fastcall.GIVE_FAILED == Status.INVALID_MEMORY_ACCESS
    if os.environ.get("EDGE_EXPECT_NATIVE") == "1":
        # scripts/test.sh built it: the suite must be running the compiled hot path
        assert compiled, native.state
    # and so does a new process (an `edge run` worker imports edge the same way)
    r = subprocess.run(
        [sys.executable, "-m", "edge", "native", "status"],
        capture_output=True,
        text=True,
        cwd=Path(native.PACKAGE).parent,
    )
    assert (r.returncode == 0) == compiled, r.stdout + r.stderr
    assert r.stdout.startswith("edge native: on" if compiled else "edge native: ")


def test_the_ctypes_crossings_still_pass_the_fastcall_tests() -> None:
    """With the build on, the suite runs the C crossings (edge/wasm/_wasmcall.c); the
    ctypes path of edge/wasm/fastcall.py, used without it, must keep working too."""
    if not native.active():
        pytest.skip("the suite itself runs the ctypes path")
    root = Path(native.PACKAGE).parent
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/unit/test_wasm_fastcall.py",
            "tests/unit/test_wasm_hostcalls.py",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "EDGE_NATIVE": "0", "EDGE_EXPECT_NATIVE": "0"},
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout
