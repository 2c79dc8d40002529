"""The node's last-known-good pointer and bundle directories; failure classification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tuf.api import exceptions

from edge.bundles.archive import ArchiveError
from edge.bundles.client import BundleRejected, reason_for
from edge.bundles.state import Active, BundleState


def _active(state: BundleState, version: int) -> Active:
    partial = state.new_dir(version, f"{version:02d}" * 8)
    partial.mkdir()
    (partial / "edge.yaml").write_text("routes: []\n")
    path = state.finish_dir(partial)
    return Active(str(path), version, "ab", "t", f"{version:02d}" * 8, False, 0.0)


def test_save_load_and_prune(tmp_path: Path) -> None:
    state = BundleState(tmp_path)
    state.prepare()
    assert state.load() is None
    dirs = []
    for v in (1, 2, 3):
        a = _active(state, v)
        os.utime(a.dir, (v, v))  # creation order, without waiting for the clock
        state.save(a)
        dirs.append(Path(a.dir))
        assert state.load() == a
    # current and previous stay; older ones go
    assert sorted(p.name for p in state.bundles_dir.iterdir()) == [d.name for d in dirs[1:]]
    assert not list(state.root.glob(".current-*"))


def test_damaged_pointer_is_no_pointer(tmp_path: Path) -> None:
    state = BundleState(tmp_path)
    state.prepare()
    a = _active(state, 1)
    state.save(a)
    state.pointer.write_text("{not json")
    assert state.load() is None
    state.pointer.write_text(json.dumps({**a.__dict__, "dir": "/etc"}))
    assert state.load() is None  # outside the bundles directory: never trusted
    state.pointer.write_text(json.dumps({**a.__dict__, "extra": 1}))
    assert state.load() is None


def test_prepare_removes_interrupted_downloads(tmp_path: Path) -> None:
    state = BundleState(tmp_path)
    state.prepare()
    (state.bundles_dir / "5-x.partial").mkdir()
    (state.bundles_dir / "5-x.download").mkdir()
    state.prepare()
    assert list(state.bundles_dir.iterdir()) == []


@pytest.mark.parametrize(
    "exc,reason",
    [
        (exceptions.ExpiredMetadataError("x"), "expired"),
        (exceptions.BadVersionNumberError("x"), "rollback"),
        (exceptions.UnsignedMetadataError("x"), "signature"),
        (exceptions.LengthOrHashMismatchError("x"), "hash_mismatch"),
        (exceptions.DownloadLengthMismatchError("x"), "too_large"),
        (exceptions.DownloadHTTPError("x", 500), "storage"),
        (exceptions.DownloadError("x"), "storage"),
        (exceptions.RepositoryError("x"), "metadata"),
        (ArchiveError("x"), "archive"),
        (BundleRejected("tenant", "x"), "tenant"),
        (OSError(28, "No space left on device"), "state"),
        (RuntimeError("x"), "internal"),
    ],
)
def test_reason_for(exc: BaseException, reason: str) -> None:
    assert reason_for(exc) == reason
