"""One contract, three backends: local directory, S3 (moto_server), GCS (emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.store import (
    NOT_MODIFIED,
    Object,
    ObjectNotFound,
    StoreError,
    TooLarge,
    open_store,
)
from tests.support.storage import store_url


@pytest.fixture(params=["file", "s3", "gs"])
def any_store_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    with store_url(request.param, monkeypatch, tmp_path) as url:
        yield url


def test_put_get_roundtrip(any_store_url: str) -> None:
    store = open_store(any_store_url)
    store.put("metadata/1.root.json", b'{"a": 1}')
    got = store.get("metadata/1.root.json")
    assert isinstance(got, Object)
    assert got.data == b'{"a": 1}'


def test_put_replaces_whole_object(any_store_url: str) -> None:
    store = open_store(any_store_url)
    store.put("k", b"x" * 1000)
    store.put("k", b"short")
    got = store.get("k")
    assert isinstance(got, Object) and got.data == b"short"


def test_missing_key_is_object_not_found_naming_the_url(any_store_url: str) -> None:
    store = open_store(any_store_url)
    with pytest.raises(ObjectNotFound) as e:
        store.get("nope/missing.json")
    assert "nope/missing.json" in str(e.value)
    assert any_store_url.split("://")[1].split("/")[0] in str(e.value)


@pytest.mark.parametrize("size,limit", [(11, 10), (100_000, 65_536), (1, 0)])
def test_max_size_is_enforced(any_store_url: str, size: int, limit: int) -> None:
    store = open_store(any_store_url)
    store.put("big", b"z" * size)
    with pytest.raises(TooLarge):
        store.get("big", max_size=limit)
    got = store.get("big", max_size=size)
    assert isinstance(got, Object) and len(got.data) == size


def test_conditional_get(any_store_url: str) -> None:
    store = open_store(any_store_url)
    store.put("ts", b"v1")
    first = store.get("ts")
    assert isinstance(first, Object)
    assert store.get("ts", if_none_match=first.etag) is NOT_MODIFIED
    store.put("ts", b"v2")
    second = store.get("ts", if_none_match=first.etag)
    assert isinstance(second, Object) and second.data == b"v2"


def test_list_is_sorted_and_prefix_scoped(any_store_url: str) -> None:
    store = open_store(any_store_url)
    for key in ["targets/b", "metadata/2.root.json", "metadata/1.root.json", "targets/a"]:
        store.put(key, b".")
    assert store.list("metadata/") == ["metadata/1.root.json", "metadata/2.root.json"]
    assert store.list() == [
        "metadata/1.root.json",
        "metadata/2.root.json",
        "targets/a",
        "targets/b",
    ]
    assert store.list("zzz") == []


def test_delete_is_idempotent(any_store_url: str) -> None:
    store = open_store(any_store_url)
    store.put("gone", b".")
    store.delete("gone")
    store.delete("gone")
    with pytest.raises(ObjectNotFound):
        store.get("gone")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "a//b", "", "a/./b", "a\\b"])
def test_hostile_keys_are_refused(any_store_url: str, key: str) -> None:
    store = open_store(any_store_url)
    with pytest.raises(StoreError):
        store.get(key)
    with pytest.raises(StoreError):
        store.put(key, b".")
