"""The object-store interface every backend implements, and ``open_store(url)``.

Calls are synchronous on purpose: the node runs them through ``trio.to_thread.run_sync``
(the SDKs block), the publishing CLI calls them directly. Errors are split by what the
caller can do about them: ``ObjectNotFound`` (the key is absent, often a normal answer),
``TooLarge`` (the object exceeds the caller's bound, hostile or broken), ``StoreError``
(transport or permission trouble; the message names the URL and the cause, never a
credential).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from urllib.parse import urlsplit

# A bound every ``get`` needs; callers pass a smaller one when they know better.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
# Per-call network limits shared by the cloud backends.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
MAX_ATTEMPTS = 3


class StoreError(Exception):
    """The store could not be reached or refused the call."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"{url}: {cause}")


class ObjectNotFound(StoreError):
    def __init__(self, url: str) -> None:
        super().__init__(url, "object not found")


class TooLarge(StoreError):
    def __init__(self, url: str, max_size: int) -> None:
        self.max_size = max_size
        super().__init__(url, f"object larger than the {max_size}-byte limit")


@dataclass(frozen=True)
class Object:
    data: bytes
    etag: str


class NotModified:
    """Returned by ``get(..., if_none_match=etag)`` when the object still has that etag."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NotModified"


NOT_MODIFIED = NotModified()


def join_key(prefix: str, key: str) -> str:
    """Validate a relative key and put it under ``prefix``.

    Keys come from metadata an attacker may control, so anything that could climb out of
    the prefix or address something odd is refused here, once, for every backend.
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid object key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise ValueError(f"invalid object key {key!r}")
    return f"{prefix}/{key}" if prefix else key


class ObjectStore(abc.ABC):
    """A flat key space under one URL; keys are ``/``-separated relative paths."""

    url: str

    @abc.abstractmethod
    def get(
        self, key: str, *, max_size: int = DEFAULT_MAX_SIZE, if_none_match: str | None = None
    ) -> Object | NotModified:
        """Read ``key`` whole, refusing more than ``max_size`` bytes."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write ``key`` (replacing it whole, never partially); return the new etag."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""

    def key_url(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


def open_store(url: str) -> ObjectStore:
    """``file:///path`` or a plain path, ``s3://bucket/prefix``, ``gs://bucket/prefix``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        from cloud.local import LocalStore

        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: file URLs must be file:///absolute/path")
        return LocalStore(parts.path if scheme == "file" else url)
    if scheme in ("s3", "gs"):
        if not parts.netloc:
            raise ValueError(f"{url}: missing bucket name")
        prefix = parts.path.strip("/")
        if scheme == "s3":
            from cloud.s3 import S3Store

            return S3Store(parts.netloc, prefix)
        from cloud.gcs import GCSStore

        return GCSStore(parts.netloc, prefix)
    raise ValueError(f"{url}: unsupported store scheme {scheme!r} (use file://, s3://, gs://)")
