"""The bundle archive: deterministic packing and a hostile-input unpacker."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from edge.bundles.archive import ArchiveError, Limits, check_name, pack, unpack


def _config(root: Path) -> Path:
    (root / "plugins").mkdir(parents=True)
    (root / "edge.yaml").write_text("routes: []\n")
    (root / "plugins" / "a.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00")
    return root


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_pack_is_deterministic_and_roundtrips(tmp_path: Path) -> None:
    src = _config(tmp_path / "a")
    first = pack(src)
    os.utime(src / "edge.yaml", (1, 1))
    (src / "edge.yaml").chmod(0o600)
    assert pack(src) == first
    names = unpack(first, tmp_path / "out")
    assert names == ["edge.yaml", "plugins/a.wasm"]
    assert (tmp_path / "out" / "plugins" / "a.wasm").read_bytes() == b"\x00asm\x01\x00\x00\x00"


def test_pack_refuses_symlinks(tmp_path: Path) -> None:
    src = _config(tmp_path / "a")
    os.symlink("/etc/passwd", src / "passwd")
    with pytest.raises(ArchiveError, match="passwd"):
        pack(src)


@pytest.mark.parametrize(
    "name,ok",
    [
        ("a/b.yaml", "a/b.yaml"),
        ("./a//b", "a/b"),
        ("../x", None),
        ("a/../../x", None),
        ("/etc/passwd", None),
        ("C:/x", None),
        ("a\\b", None),
        ("", None),
        ("a\x00b", None),
    ],
)
def test_check_name(name: str, ok: str | None) -> None:
    if ok is None:
        with pytest.raises(ArchiveError):
            check_name(name)
    else:
        assert check_name(name) == ok


def test_unpack_refuses_traversal(tmp_path: Path) -> None:
    data = _tar([_file("ok.yaml", b"x"), _file("../../evil", b"boom")])
    with pytest.raises(ArchiveError, match=r"'\.\.'"):
        unpack(data, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_unpack_refuses_links_and_devices(tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("link")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(ArchiveError, match=r"link: .*refused"):
        unpack(_tar([(info, None)]), tmp_path / "out")


def test_unpack_refuses_duplicates_and_too_many_files(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="duplicate"):
        unpack(_tar([_file("a", b"1"), _file("a", b"2")]), tmp_path / "o1")
    many = _tar([_file(f"f{i}", b".") for i in range(5)])
    with pytest.raises(ArchiveError, match="more than 4 entries"):
        unpack(many, tmp_path / "o2", Limits(max_files=4))


def test_unpack_caps_file_and_total_size(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="big: larger than"):
        unpack(_tar([_file("big", b"x" * 100)]), tmp_path / "o1", Limits(max_file_size=99))
    two = _tar([_file("a", b"x" * 60), _file("b", b"x" * 60)])
    with pytest.raises(ArchiveError, match="b: archive expands past"):
        unpack(two, tmp_path / "o2", Limits(max_total_size=100))


def _zip_bomb(size: int, lie: bool) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.yaml", b"\x00" * size)
    data = bytearray(buf.getvalue())
    if lie:
        # Rewrite the declared uncompressed size in the central directory to 1 byte, so
        # only counting the inflated bytes catches it.
        cd = data.rfind(b"PK\x01\x02")
        data[cd + 24 : cd + 28] = (1).to_bytes(4, "little")
        lh = data.find(b"PK\x03\x04")
        data[lh + 22 : lh + 26] = (1).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize("lie", [False, True])
def test_zip_bomb(tmp_path: Path, lie: bool) -> None:
    bomb = _zip_bomb(10 * 1024 * 1024, lie)
    assert len(bomb) < 20_000
    with pytest.raises(ArchiveError):
        unpack(bomb, tmp_path / "out", Limits(max_file_size=1024 * 1024))
    leftover = tmp_path / "out" / "bomb.yaml"
    assert not leftover.exists() or leftover.stat().st_size <= 1024 * 1024


def test_zip_with_symlink_entry_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="link"):
        unpack(buf.getvalue(), tmp_path / "out")


def test_gzip_bomb_tar(tmp_path: Path) -> None:
    data = _tar([_file("huge", b"\x00" * (5 * 1024 * 1024))])
    with pytest.raises(ArchiveError, match="huge"):
        unpack(data, tmp_path / "out", Limits(max_total_size=1024 * 1024))


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x1f\x8bnot gzip", b"PK\x03\x04broken"])
def test_corrupt_archives(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ArchiveError):
        unpack(data, tmp_path / "out")


def test_truncated_archive(tmp_path: Path) -> None:
    data = pack(_config(tmp_path / "a"))
    with pytest.raises(ArchiveError):
        unpack(data[: len(data) // 2], tmp_path / "out")
