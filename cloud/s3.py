"""S3 (and S3-compatible) object store through boto3.

Region and credentials come from boto3's standard chain; an S3-compatible endpoint comes
from ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, which boto3 reads itself.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

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

_CHUNK = 1 << 16
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store(ObjectStore):
    def __init__(self, bucket: str, prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            # "standard" retries throttling and transient errors with jittered backoff.
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        )
        self._client: Any = boto3.session.Session().client("s3", config=config)

    def _key(self, key: str) -> str:
        try:
            return join_key(self.prefix, key)
        except ValueError as e:
            raise StoreError(self.url, str(e)) from None

    def _error(self, url: str, e: Exception) -> StoreError:
        if isinstance(e, botocore.exceptions.ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            if code in _MISSING:
                return ObjectNotFound(url)
            return StoreError(url, f"{code}: {err.get('Message', '')}".rstrip(": "))
        # botocore's messages name the endpoint and the failure, not the credentials.
        return StoreError(url, f"{type(e).__name__}: {e}")

    def get(
        self, key: str, *, max_size: int = DEFAULT_MAX_SIZE, if_none_match: str | None = None
    ) -> Object | NotModified:
        url = self.key_url(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if if_none_match is not None:
            kwargs["IfNoneMatch"] = if_none_match
        try:
            resp = self._client.get_object(**kwargs)
        except botocore.exceptions.ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 304 or e.response.get("Error", {}).get("Code") == "304":
                return NOT_MODIFIED
            raise self._error(url, e) from None
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._error(url, e) from None
        body = resp["Body"]
        try:
            if int(resp.get("ContentLength") or 0) > max_size:
                raise TooLarge(url, max_size)
            chunks: list[bytes] = []
            size = 0
            # Count what actually arrives: Content-Length is only a hint from the peer.
            while chunk := body.read(_CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise TooLarge(url, max_size)
                chunks.append(chunk)
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._error(url, e) from None
        finally:
            body.close()
        return Object(b"".join(chunks), str(resp.get("ETag", "")))

    def put(self, key: str, data: bytes) -> str:
        url = self.key_url(key)
        try:
            resp = self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._error(url, e) from None
        return str(resp.get("ETag", ""))

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        out: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            )
            for page in pages:
                out.extend(o["Key"][len(base) :] for o in page.get("Contents", []))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._error(self.url, e) from None
        return sorted(out)

    def delete(self, key: str) -> None:
        url = self.key_url(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, OSError) as e:
            err = self._error(url, e)
            if not isinstance(err, ObjectNotFound):
                raise err from None
