"""The bundle archive: a deterministic tar.gz of a configuration directory, and a safe
unpacker for tar.gz and zip.

Packing is deterministic (sorted entries, fixed mtime/uid/gid/mode, no gzip timestamp) so
the same directory always yields the same bytes and the same target hash: publishing an
unchanged configuration is visible as such.

Unpacking treats the archive as hostile even though its hash was verified, because a
signer's mistake must not become code execution or a full disk on every node: only
regular files and directories, no absolute or climbing paths, no links or devices, and
bounded counts and sizes, counted on the bytes actually produced rather than on what the
headers claim.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# A gateway configuration is YAML plus a few WASM modules; these leave two orders of
# magnitude of room and still keep a hostile archive from filling a node's disk.
MAX_FILES = 2000
MAX_FILE_SIZE = 32 * 1024 * 1024
MAX_TOTAL_SIZE = 128 * 1024 * 1024

_FIXED_MTIME = 0
_CHUNK = 1 << 16


class ArchiveError(Exception):
    """The archive is malformed or unsafe; the message names the entry."""


@dataclass(frozen=True)
class Limits:
    max_files: int = MAX_FILES
    max_file_size: int = MAX_FILE_SIZE
    max_total_size: int = MAX_TOTAL_SIZE


def _walk(src: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            rel = path.relative_to(src).as_posix()
            if path.is_symlink() or not path.is_file():
                raise ArchiveError(f"{rel}: only regular files can be bundled")
            yield rel, path


def pack(src: Path, limits: Limits = Limits()) -> bytes:
    """A deterministic tar.gz of every regular file under ``src``."""
    buf = io.BytesIO()
    # mtime=0 keeps the gzip header free of the packing time.
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=_FIXED_MTIME) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            count = 0
            for rel, path in sorted(_walk(src)):
                data = path.read_bytes()
                count += 1
                if count > limits.max_files or len(data) > limits.max_file_size:
                    raise ArchiveError(f"{rel}: bundle exceeds the archive limits")
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mtime = _FIXED_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def check_name(name: str) -> str:
    """The entry name as a safe relative POSIX path, or ArchiveError."""
    if not name or "\x00" in name or "\\" in name:
        raise ArchiveError(f"{name!r}: invalid entry name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{name}: absolute paths are refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise ArchiveError(f"{name!r}: empty entry name")
    if ".." in parts:
        raise ArchiveError(f"{name}: '..' in an entry path is refused")
    return "/".join(parts)


class _Writer:
    """Writes entries under ``dest`` while keeping the running totals honest."""

    def __init__(self, dest: Path, limits: Limits) -> None:
        self.dest = dest
        self.limits = limits
        self.files = 0
        self.total = 0
        self.seen: set[str] = set()

    def entry(self, raw_name: str) -> str:
        name = check_name(raw_name)
        if name in self.seen:
            raise ArchiveError(f"{name}: duplicate entry")
        self.seen.add(name)
        self.files += 1
        if self.files > self.limits.max_files:
            raise ArchiveError(f"{name}: more than {self.limits.max_files} entries")
        return name

    def mkdir(self, name: str) -> None:
        (self.dest / name).mkdir(parents=True, exist_ok=True)

    def write(self, name: str, stream: IO[bytes]) -> None:
        target = self.dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL|O_NOFOLLOW: never write through something already there.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                self.total += len(chunk)
                if size > self.limits.max_file_size:
                    raise ArchiveError(
                        f"{name}: larger than the {self.limits.max_file_size}-byte file limit"
                    )
                if self.total > self.limits.max_total_size:
                    raise ArchiveError(
                        f"{name}: archive expands past the {self.limits.max_total_size}-byte limit"
                    )
                out.write(chunk)


def unpack(data: bytes, dest: Path, limits: Limits = Limits()) -> list[str]:
    """Unpack a tar.gz or zip into ``dest`` (which must not exist); return the file names.

    On any error ``dest`` may hold a partial tree; the caller unpacks into a fresh
    directory and removes it on failure.
    """
    dest.mkdir(parents=True, exist_ok=False)
    w = _Writer(dest, limits)
    if data[:2] == b"\x1f\x8b":
        _unpack_tar(data, w)
    elif data[:4] == b"PK\x03\x04":
        _unpack_zip(data, w)
    else:
        raise ArchiveError("not a tar.gz or zip archive")
    return sorted(n for n in w.seen if (dest / n).is_file())


def _unpack_tar(data: bytes, w: _Writer) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = w.entry(member.name)
                if member.isdir():
                    w.mkdir(name)
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise ArchiveError(f"{name}: {kind} entries are refused")
                # Refuse on the declared size first (cheap), then count real bytes.
                if member.size > w.limits.max_file_size:
                    raise ArchiveError(
                        f"{name}: larger than the {w.limits.max_file_size}-byte file limit"
                    )
                stream = tar.extractfile(member)
                assert stream is not None  # regular files always have one
                w.write(name, stream)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ArchiveError(f"corrupt tar.gz archive: {e}") from None


def _unpack_zip(data: bytes, w: _Writer) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > w.limits.max_files:
                raise ArchiveError(f"more than {w.limits.max_files} entries")
            for info in infos:
                name = w.entry(info.filename)
                mode = info.external_attr >> 16
                if info.is_dir():
                    w.mkdir(name)
                    continue
                if mode and not stat.S_ISREG(mode):
                    raise ArchiveError(f"{name}: link or special-file entries are refused")
                # file_size is the header's claim; _Writer counts what inflates.
                if info.file_size > w.limits.max_file_size:
                    raise ArchiveError(
                        f"{name}: larger than the {w.limits.max_file_size}-byte file limit"
                    )
                with zf.open(info) as stream:
                    w.write(name, stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise ArchiveError(f"corrupt zip archive: {e}") from None
