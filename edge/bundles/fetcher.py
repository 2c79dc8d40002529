"""python-tuf's ngclient fetches through here, from an ObjectStore instead of HTTP.

URLs handed to ngclient are ``edge-store:/<key>``; this class turns them back into keys,
passes ngclient's size bound to the store (so an oversized object is refused while it is
being read, not after), and maps store errors to the ``DownloadError`` family ngclient
expects. A missing object becomes a 404 ``DownloadHTTPError``: ngclient reads that as
"no newer root", which is how root rotation ends its probing.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import deque
from collections.abc import Iterator
from typing import IO

from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from cloud.store import DEFAULT_MAX_SIZE, Object, ObjectNotFound, ObjectStore, StoreError, TooLarge

SCHEME = "edge-store:/"


class StoreFetcher(FetcherInterface):
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        # The last keys fetched (for tests and debugging); bounded, a node polls forever.
        self.downloads: deque[str] = deque(maxlen=64)

    def _key(self, url: str) -> str:
        if not url.startswith(SCHEME):
            raise exceptions.DownloadError(f"{url}: not a store URL")
        return url[len(SCHEME) :]

    def _get(self, url: str, max_length: int) -> bytes:
        key = self._key(url)
        self.downloads.append(key)
        try:
            got = self.store.get(key, max_size=max_length)
        except ObjectNotFound:
            raise exceptions.DownloadHTTPError(
                f"{self.store.key_url(key)}: not found", 404
            ) from None
        except TooLarge as e:
            raise exceptions.DownloadLengthMismatchError(str(e)) from None
        except StoreError as e:
            raise exceptions.DownloadError(str(e)) from None
        assert isinstance(got, Object)
        return got.data

    def _fetch(self, url: str) -> Iterator[bytes]:
        return iter([self._get(url, DEFAULT_MAX_SIZE)])

    @contextlib.contextmanager
    def download_file(self, url: str, max_length: int) -> Iterator[IO[bytes]]:
        data = self._get(url, max_length)
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            yield f

    def download_bytes(self, url: str, max_length: int) -> bytes:
        return self._get(url, max_length)
