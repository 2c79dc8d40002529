"""Store URLs, local-directory specifics, and unreachable servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.local import LocalStore
from cloud.store import Object, StoreError, open_store
from tests.support.procs import free_port

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_open_store_dispatch(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert open_store("s3://bucket/a/b").url == "s3://bucket/a/b"  # type: ignore[attr-defined]
    assert open_store("gs://bucket").url == "gs://bucket"  # type: ignore[attr-defined]
    for bad, why in [
        ("ftp://x/y", "unsupported store scheme"),
        ("s3:///nobucket", "missing bucket"),
        ("file://otherhost/x", "file:///absolute/path"),
    ]:
        with pytest.raises(ValueError) as e:
            open_store(bad)
        assert why in str(e.value) and bad in str(e.value)


def test_local_refuses_symlinked_objects(tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"secret")
    store = LocalStore(tmp_path / "s")
    store.put("real", b"ok")
    os.symlink(tmp_path / "outside", tmp_path / "s" / "link")
    with pytest.raises(StoreError):
        store.get("link")


def test_local_put_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for i in range(3):
        store.put("a/b", str(i).encode())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]
    got = store.get("a/b")
    assert isinstance(got, Object) and got.data == b"2"


def test_s3_unreachable_is_store_error_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = open_store("s3://bucket/pre")
    # One call: all share the error mapping, and each waits out the bounded retries.
    with pytest.raises(StoreError) as e:
        store.get("k")
    assert "s3://bucket/pre/k" in str(e.value)
    assert SECRET not in str(e.value) and "AKIAEXAMPLE" not in str(e.value)


def test_gcs_unreachable_is_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    store = open_store("gs://bucket/pre")
    with pytest.raises(StoreError) as e:
        store.put("k", b".")
    assert "gs://bucket/pre/k" in str(e.value)
