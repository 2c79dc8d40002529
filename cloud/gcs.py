"""Google Cloud Storage object store through google-cloud-storage.

Credentials come from Application Default Credentials. When ``STORAGE_EMULATOR_HOST`` is
set the library talks to the emulator; it needs anonymous credentials and an explicit
project there, because there is no ADC to find one.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import google.api_core.exceptions as gexc
import google.auth.exceptions
import requests.exceptions
from google.api_core.retry import Retry
from google.cloud import storage

from cloud.store import (
    CONNECT_TIMEOUT,
    DEFAULT_MAX_SIZE,
    MAX_ATTEMPTS,
    NOT_MODIFIED,
    READ_TIMEOUT,
    NotModified,
    Object,
    ObjectNotFound,
    ObjectStore,
    StoreError,
    TooLarge,
    join_key,
)

_TIMEOUT = (CONNECT_TIMEOUT, READ_TIMEOUT)
_TRANSIENT = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
)


def _retry() -> Retry:
    # api_core retries until a deadline rather than a count: 0.2 + 0.4 + 0.8 s of backoff
    # fits MAX_ATTEMPTS tries of a refused connection. Our puts replace whole objects, so
    # retrying them is safe without a generation precondition.
    return Retry(
        predicate=lambda e: isinstance(e, _TRANSIENT),
        initial=0.2,
        maximum=2.0,
        multiplier=2.0,
        timeout=0.2 * (2**MAX_ATTEMPTS - 1),
    )


_TRANSPORT = (
    gexc.GoogleAPIError,
    google.auth.exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    OSError,
)


def _etag(blob: Any, data: bytes) -> str:
    """The object generation (what GCS preconditions use) when the server reports it on
    download; otherwise (the emulator) a digest of the content, compared locally."""
    if blob.generation:
        return str(blob.generation)
    return "sha256:" + hashlib.sha256(data).hexdigest()


class GCSStore(ObjectStore):
    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket_name = bucket
        self.prefix = prefix
        self.url = f"gs://{bucket}/{prefix}" if prefix else f"gs://{bucket}"
        self._bucket: Any = None

    def _get_bucket(self) -> Any:
        # Built lazily: creating a client looks up credentials, which may fail or be slow,
        # and that must surface as a StoreError from a call, not from open_store().
        if self._bucket is None:
            try:
                if os.environ.get("STORAGE_EMULATOR_HOST"):
                    from google.auth.credentials import AnonymousCredentials

                    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "edge-local")
                    client = storage.Client(project=project, credentials=AnonymousCredentials())
                else:
                    client = storage.Client()
            except _TRANSPORT as e:
                raise StoreError(self.url, f"{type(e).__name__}: {e}") from None
            self._bucket = client.bucket(self.bucket_name)
        return self._bucket

    def _key(self, key: str) -> str:
        try:
            return join_key(self.prefix, key)
        except ValueError as e:
            raise StoreError(self.url, str(e)) from None

    def _error(self, url: str, e: Exception) -> StoreError:
        if isinstance(e, gexc.NotFound):
            return ObjectNotFound(url)
        if isinstance(e, gexc.GoogleAPICallError):
            return StoreError(url, f"{e.code}: {e.message}")
        if isinstance(e, gexc.RetryError):
            return StoreError(url, f"gave up after retries: {type(e.cause).__name__}")
        return StoreError(url, f"{type(e).__name__}: {e}")

    def get(
        self, key: str, *, max_size: int = DEFAULT_MAX_SIZE, if_none_match: str | None = None
    ) -> Object | NotModified:
        url = self.key_url(key)
        blob = self._get_bucket().blob(self._key(key))
        kwargs: dict[str, Any] = {}
        if if_none_match is not None and if_none_match.isdigit():
            kwargs["if_generation_not_match"] = int(if_none_match)
        try:
            # A range of max_size + 1 bytes bounds what we read whatever the object's
            # metadata claims; one byte more than the limit tells us it is too large.
            data = blob.download_as_bytes(
                start=0, end=max_size, timeout=_TIMEOUT, retry=_retry(), **kwargs
            )
        except gexc.NotModified:
            return NOT_MODIFIED
        except _TRANSPORT as e:
            raise self._error(url, e) from None
        if len(data) > max_size:
            raise TooLarge(url, max_size)
        etag = _etag(blob, data)
        # Servers that ignore the precondition (the emulator does) still get the contract.
        if if_none_match is not None and etag == if_none_match:
            return NOT_MODIFIED
        return Object(data, etag)

    def put(self, key: str, data: bytes) -> str:
        url = self.key_url(key)
        blob = self._get_bucket().blob(self._key(key))
        try:
            blob.upload_from_string(data, timeout=_TIMEOUT, retry=_retry())
        except _TRANSPORT as e:
            raise self._error(url, e) from None
        return _etag(blob, data)

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        try:
            blobs = self._get_bucket().client.list_blobs(
                self.bucket_name, prefix=base + prefix, timeout=_TIMEOUT, retry=_retry()
            )
            return sorted(b.name[len(base) :] for b in blobs)
        except _TRANSPORT as e:
            raise self._error(self.url, e) from None

    def delete(self, key: str) -> None:
        url = self.key_url(key)
        try:
            self._get_bucket().blob(self._key(key)).delete(timeout=_TIMEOUT, retry=_retry())
        except gexc.NotFound:
            pass
        except _TRANSPORT as e:
            raise self._error(url, e) from None
