"""The hot-path modules compiled to C with mypyc, used only when built for this source.

Every request runs through a few thousand lines of Python (the reactor, the parsers,
the request context, the router, the forwarded head, the upstream pools, the counters,
the access log, the WASM host's request path); compiled by mypyc from the same typed
source they cost about a third less CPU, with the same behaviour (mypyc also checks
the annotations at run time). The compiled modules are optional:

    edge native build     # needs mypy (mypyc), a C compiler and Python's headers
    edge native status

``build`` also compiles the hand-written C of ``C_MODULES`` (``edge/wasm/_wasmcall.c``:
the guest-call and host-function crossings ``edge/wasm/fastcall.py`` uses when they
are there). It writes the extension modules, and a stamp with a hash of every ``.py``
and ``.c`` file of the package, under ``build/native/<python tag>/`` beside the
package. At import, ``install`` (called by ``edge/__init__.py``) compares that stamp
with the source: only when every file is unchanged does a finder on ``sys.meta_path``
load the compiled modules; after any edit the package runs as plain Python until the
next ``build``, so a stale build can never run instead of the code being read.
``EDGE_NATIVE=0`` turns the compiled modules off (to compare both, or to rule them out).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# the modules every request runs through, and what they import on the way (a compiled
# module calls the others faster when they are compiled too)
MODULES = (
    "edge.accesslog",
    "edge.context",
    "edge.counters",
    "edge.http.events",
    "edge.http.framing",
    "edge.http.grammar",
    "edge.http.headers",
    "edge.http.parser",
    "edge.http.response_parser",
    "edge.http.writer",
    "edge.plugins.chain",
    "edge.proxy",
    "edge.reactor",
    "edge.router",
    "edge.upstream.client",
    "edge.upstream.forwarding",
    "edge.wasm.abi",
    "edge.wasm.context",
    "edge.wasm.driver",
    "edge.wasm.hostcalls",
    "edge.wasm.plugin",
    "edge.wasm.properties",
    "edge.wasm.runtime",
    "edge.wasm.vm",
)
# hand-written C beside them: (module, source under the package)
C_MODULES = (("edge.wasm._wasmcall", "wasm/_wasmcall.c"),)
GROUP = "edge_native"  # the name of the shared library the compiled modules use

PACKAGE = Path(__file__).resolve().parent
TAG = sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag
BUILD_DIR = PACKAGE.parent / "build" / "native" / TAG
STAMP = "stamp.json"

# what install() found, for ``status`` and the startup log line
state = "not built"


def source_digest(package: Path = PACKAGE) -> str:
    """One hash over the path and bytes of every .py and .c file of the package."""
    h = hashlib.sha256()
    for p in sorted([*package.rglob("*.py"), *package.rglob("*.c")]):
        h.update(str(p.relative_to(package)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


class _Finder(importlib.abc.MetaPathFinder):
    """Loads the modules of a valid build from their extension files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        f = self.files.get(fullname)
        if f is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(f))
        return importlib.util.spec_from_file_location(fullname, f, loader=loader)


def install(build_dir: Path = BUILD_DIR, package: Path = PACKAGE) -> bool:
    """Use the compiled modules when ``build_dir`` holds a build of this exact source."""
    global state
    if os.environ.get("EDGE_NATIVE") == "0":
        state = "off (EDGE_NATIVE=0)"
        return False
    try:
        stamp = json.loads((build_dir / STAMP).read_text())
        files = {m: build_dir / rel for m, rel in stamp["files"].items()}
    except FileNotFoundError:
        state = "not built"
        return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        state = f"unreadable build in {build_dir}"
        return False
    if stamp.get("source") != source_digest(package):
        state = f"stale (the source changed since the build in {build_dir})"
        return False
    if not all(f.is_file() for f in files.values()):
        state = f"incomplete build in {build_dir}"
        return False
    sys.meta_path.insert(0, _Finder(files))
    state = f"on ({len(stamp['modules'])} modules)"
    return True


def active() -> bool:
    return state.startswith("on")


def build(build_dir: Path = BUILD_DIR) -> Path:
    """Compile MODULES with mypyc into ``build_dir`` (replaced whole on success)."""
    root = PACKAGE.parent
    digest = source_digest()
    paths = [str(root.joinpath(*m.split(".")).with_suffix(".py")) for m in MODULES]
    work = Path(tempfile.mkdtemp(prefix="edge-native-"))
    try:
        return _build(paths, work, digest, build_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build(paths: list[str], work: Path, digest: str, build_dir: Path) -> Path:
    from mypyc.build import mypycify
    from setuptools import Extension, setup

    out = work / "lib"
    cwd = os.getcwd()
    # setup() reads the configuration files of the current directory: not the project's
    os.chdir(work)
    try:
        exts = mypycify(
            ["--ignore-missing-imports", "--follow-imports=silent", *paths],
            opt_level="3",
            group_name=GROUP,
            target_dir=str(work / "c"),
        )
        setup(
            name=GROUP,
            ext_modules=[
                *exts,
                *(
                    Extension(m, [str(PACKAGE / src)], extra_compile_args=["-O2"])
                    for m, src in C_MODULES
                ),
            ],
            script_args=[
                "--quiet",
                "build_ext",
                "--build-lib",
                str(out),
                "--build-temp",
                str(work / "tmp"),
            ],
        )
    finally:
        os.chdir(cwd)
    files: dict[str, str] = {}
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in (*MODULES, *(m for m, _ in C_MODULES), f"{GROUP}__mypyc"):
        rel = Path(*name.split(".")).with_suffix(suffix)
        if not (out / rel).is_file():
            raise RuntimeError(f"mypyc produced no {rel}")
        files[name] = str(rel)
    (out / STAMP).write_text(
        json.dumps(
            {"source": digest, "modules": [*MODULES, *(m for m, _ in C_MODULES)], "files": files},
            indent=1,
        )
    )
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(out), str(build_dir))
    return build_dir
