"""Where a running node's configuration comes from: a file or a directory on disk.

The supervisor and every worker turn the same path into a snapshot with
``compile_path``; the supervisor first, so a bad file never reaches a worker.
``fingerprint`` is the cheap change detector polled every second (stat only);
``content_hash`` is what /status reports and what decides whether a change is real.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

# a configuration directory holds a YAML file and some WASM modules; thousands of files
# there is a mistake, and polling them every second would cost real I/O
MAX_FILES = 2000


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    out: list[Path] = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            out.append(Path(root) / name)
            if len(out) >= MAX_FILES:
                return out
    return out


def fingerprint(path: str | os.PathLike[str]) -> tuple[tuple[str, int, int, int], ...]:
    """(name, inode, size, mtime) of every file; any edit or atomic replace changes it."""
    out = []
    for f in _files(Path(path)):
        try:
            st = f.stat()
        except OSError:
            out.append((str(f), -1, -1, -1))
            continue
        out.append((str(f), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def content_hash(path: str | os.PathLike[str]) -> str:
    """sha256 over the names and bytes of every file (first 16 hex digits)."""
    base = Path(path)
    h = hashlib.sha256()
    for f in _files(base):
        name = f.relative_to(base).as_posix() if base.is_dir() else f.name
        h.update(name.encode() + b"\0")
        try:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 16), b""):
                    h.update(block)
        except OSError:
            h.update(b"\xff")
        h.update(b"\0")
    return h.hexdigest()[:16]


def compile_path(path: str | os.PathLike[str], *, node_id: str, shared: dict[str, Any]) -> Any:
    """Load, validate and compile the configuration at ``path`` into a Snapshot.

    Raises ``edge.errors.ConfigError`` naming the file and every problem.
    """
    # load + validate + compile, with the bundle's wasm_plugins built by the WASM host
    from edge.snapshot import load_snapshot

    return load_snapshot(path, node_id=node_id, shared=shared)


def route_count(snapshot: Any) -> int:
    routes = getattr(snapshot, "routes", None)
    try:
        return len(routes) if routes is not None else 0
    except TypeError:
        return 0
