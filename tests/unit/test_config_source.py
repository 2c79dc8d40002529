from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge.config_source import compile_path, content_hash, fingerprint
from edge.errors import ConfigError

GOOD = """
upstreams: [{id: u, nodes: [{host: 127.0.0.1, port: 8080}]}]
routes: [{id: r, uri: /a, upstream_id: u}]
"""


def test_fingerprint_sees_atomic_replace_and_edits(tmp_path: Path) -> None:
    f = tmp_path / "edge.yaml"
    f.write_text(GOOD)
    first = fingerprint(f)
    assert fingerprint(f) == first
    tmp = tmp_path / "edge.tmp"
    tmp.write_text(GOOD)
    os.replace(tmp, f)  # same bytes, new inode: the watcher looks again
    assert fingerprint(f) != first
    assert content_hash(f) == content_hash(f)


def test_directory_covers_every_file(tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text(GOOD)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "a.wasm").write_bytes(b"\0asm")
    fp, h = fingerprint(tmp_path), content_hash(tmp_path)
    (tmp_path / "plugins" / "a.wasm").write_bytes(b"\0asm\1")
    assert fingerprint(tmp_path) != fp and content_hash(tmp_path) != h


def test_missing_file_is_a_fingerprint_not_an_error(tmp_path: Path) -> None:
    assert fingerprint(tmp_path / "gone.yaml") == ((str(tmp_path / "gone.yaml"), -1, -1, -1),)


def test_compile_path(tmp_path: Path) -> None:
    f = tmp_path / "edge.yaml"
    f.write_text(GOOD)
    snap = compile_path(f, node_id="n1", shared={})
    assert set(snap.routes) == {"r"}
    f.write_text("routes: [{id: r, uri: /a, upstream_id: nope}]")
    with pytest.raises(ConfigError) as info:
        compile_path(f, node_id="n1", shared={})
    assert any("routes[0].upstream_id" in line for line in info.value.lines())
