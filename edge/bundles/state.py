"""The node's bundle state directory: ngclient's trusted metadata, unpacked bundles, and
the pointer to the last-known-good one.

    <state>/bundle/tuf/                  ngclient's metadata cache (trusted files only)
    <state>/bundle/bundles/<v>-<fp>/     verified, unpacked bundles
    <state>/bundle/current.json          which of them is last-known-good

The pointer is replaced atomically (temp file + ``os.replace``) and only after the
bundle it names was verified and installed, so a crash at any point leaves either the
old or the new pointer, each naming a complete directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The current bundle and the one before it stay on disk; older ones are removed.
KEEP_BUNDLES = 2


@dataclass(frozen=True)
class Active:
    dir: str
    version: int
    sha256: str
    published_at: str
    fingerprint: str
    canary: bool
    installed_at: float


class BundleState:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(state_dir) / "bundle"
        self.metadata_dir = self.root / "tuf"
        self.bundles_dir = self.root / "bundles"
        self.pointer = self.root / "current.json"

    def prepare(self) -> None:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.bundles_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of an interrupted download are never trusted: start them over.
        for p in self.bundles_dir.iterdir():
            if p.name.endswith((".download", ".partial")):
                shutil.rmtree(p, ignore_errors=True)

    def new_dir(self, version: int, fingerprint: str) -> Path:
        """A fresh, not yet existing path for an unpacked bundle."""
        base = f"{version}-{fingerprint[:16]}"
        path = self.bundles_dir / (base + ".partial")
        shutil.rmtree(path, ignore_errors=True)
        return path

    def finish_dir(self, partial: Path) -> Path:
        final = partial.with_name(partial.name.removesuffix(".partial"))
        if final.exists():
            # Same version and fingerprint: the same verified content, possibly in use
            # by the workers right now. Keep it; drop the new copy.
            shutil.rmtree(partial)
            return final
        os.replace(partial, final)
        return final

    def load(self) -> Active | None:
        """The last-known-good bundle, or None when there is none (or it is damaged)."""
        try:
            raw: dict[str, Any] = json.loads(self.pointer.read_text())
            active = Active(**raw)
        except (OSError, ValueError, TypeError):
            return None
        path = Path(active.dir)
        if path.parent != self.bundles_dir or not path.is_dir():
            return None
        return active

    def save(self, active: Active) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".current-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(active), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.pointer)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._prune(Path(active.dir))

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def _prune(self, current: Path) -> None:
        dirs = sorted(
            (p for p in self.bundles_dir.iterdir() if p.is_dir() and p != current),
            key=lambda p: p.stat().st_mtime,
        )
        for p in dirs[: max(0, len(dirs) - (KEEP_BUNDLES - 1))]:
            shutil.rmtree(p, ignore_errors=True)
