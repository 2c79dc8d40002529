"""A directory as an object store: the embedded default and the test double of choice."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cloud.store import (
    DEFAULT_MAX_SIZE,
    NOT_MODIFIED,
    NotModified,
    Object,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    TooLarge,
    join_key,
)

_CHUNK = 1 << 16


class LocalStore(ObjectStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        try:
            rel = join_key("", key)
        except ValueError as e:
            raise StoreError(self.url, str(e)) from None
        return self.root / rel

    def get(
        self, key: str, *, max_size: int = DEFAULT_MAX_SIZE, if_none_match: str | None = None
    ) -> Object | NotModified:
        path = self._path(key)
        url = self.key_url(key)
        try:
            # Refuse symlinks: a key must name a plain file inside the root.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise ObjectNotFound(url) from None
        except OSError as e:
            raise StoreError(url, e.strerror or type(e).__name__) from None
        with os.fdopen(fd, "rb") as f:
            chunks: list[bytes] = []
            size = 0
            # Read with a bound rather than trusting st_size: the file may grow meanwhile.
            while chunk := f.read(_CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(url, max_size)
                chunks.append(chunk)
        data = b"".join(chunks)
        etag = hashlib.sha256(data).hexdigest()
        if if_none_match is not None and if_none_match == etag:
            return NOT_MODIFIED
        return Object(data, etag)

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        url = self.key_url(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as e:
            raise StoreError(url, e.strerror or type(e).__name__) from None
        return hashlib.sha256(data).hexdigest()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".tmp-")]
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(self.key_url(key), e.strerror or type(e).__name__) from None
