"""The publishing side over a local directory store: layout, order, refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api import exceptions
from tuf.api.metadata import Metadata

from cloud.local import LocalStore
from cloud.store import Object
from edge.bundles.fetcher import StoreFetcher
from edge.bundles.keys import KeyFileError, Keyring
from edge.bundles.repository import PublishError, Repository, target_key


class RecordingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put(self, key: str, data: bytes) -> str:
        self.puts.append(key)
        return super().put(key, data)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = Repository(RecordingStore(tmp_path / "store"), Keyring(tmp_path / "keys"))
    r.init()
    return r


def fresh(repo: Repository) -> Repository:
    return Repository(repo.store, repo.keys).load()


def test_init_layout_and_key_files(repo: Repository, tmp_path: Path) -> None:
    assert repo.store.list() == [
        "metadata/1.root.json",
        "metadata/1.snapshot.json",
        "metadata/1.targets.json",
        "metadata/root.json",
        "metadata/timestamp.json",
    ]
    keys = tmp_path / "keys"
    assert (keys / "root.json").read_bytes() == (
        tmp_path / "store/metadata/1.root.json"
    ).read_bytes()
    for name in ("root-1", "targets", "snapshot", "timestamp"):
        assert (keys / f"{name}.pem").stat().st_mode & 0o777 == 0o600
    root = Metadata.from_file(str(keys / "root.json"))
    assert root.signed.consistent_snapshot is True


def test_init_refuses_existing_repository_and_bad_threshold(
    repo: Repository, tmp_path: Path
) -> None:
    with pytest.raises(PublishError, match="already exists"):
        Repository(repo.store, Keyring(tmp_path / "k2")).init()
    with pytest.raises(PublishError, match="cannot meet a threshold"):
        Repository(LocalStore(tmp_path / "s3"), Keyring(tmp_path / "k3")).init(2, root_keys=1)
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        Repository(LocalStore(tmp_path / "s4"), repo.keys).init()


def test_publish_uploads_content_first_and_timestamp_last(repo: Repository) -> None:
    store = repo.store
    assert isinstance(store, RecordingStore)
    store.puts.clear()
    e = fresh(repo).publish_bundle(b"archive-bytes")
    assert store.puts == [
        target_key(e.path, e.sha256),
        "metadata/2.targets.json",
        "metadata/2.snapshot.json",
        "metadata/timestamp.json",
    ]
    assert store.puts[0] == f"targets/bundles/{e.sha256}.1.tar.gz"


def test_root_threshold_needs_enough_keys(tmp_path: Path) -> None:
    keys = Keyring(tmp_path / "keys")
    r = Repository(LocalStore(tmp_path / "store"), keys)
    r.init(root_threshold=2, root_keys=3)
    (tmp_path / "keys" / "root-2.pem").unlink()
    (tmp_path / "keys" / "root-3.pem").unlink()
    r = fresh(r)
    with pytest.raises(KeyFileError, match="no private key for root-2"):
        r.rotate_key("timestamp")


def test_publisher_refuses_tampered_store(repo: Repository) -> None:
    fresh(repo).publish_bundle(b"v1")
    # Someone with bucket access rewrites targets with their own bundle and key.
    evil = Metadata.from_bytes(repo.store.get("metadata/2.targets.json").data)  # type: ignore[union-attr]
    evil.signed.targets.clear()
    evil.signatures.clear()
    evil.sign(CryptoSigner.generate_ed25519())
    repo.store.put("metadata/2.targets.json", evil.to_bytes())
    with pytest.raises(PublishError, match=r"2\.targets\.json: signature check failed"):
        fresh(repo)


def test_refresh_timestamp_refreshes_snapshot_when_close(repo: Repository) -> None:
    r = fresh(repo)
    r.refresh_timestamp()
    assert r.snapshot.signed.version == 1 and r.timestamp.signed.version == 2
    r = fresh(repo)
    r.now = r.snapshot.signed.expires - timedelta(days=3)
    r.refresh_timestamp()
    assert r.snapshot.signed.version == 2 and r.timestamp.signed.version == 3


def test_tenant_delegation_and_refusals(repo: Repository, tmp_path: Path) -> None:
    tk = Keyring(tmp_path / "tenant")
    key = tk.generate("tenant-acme")
    r = fresh(repo)
    r.add_tenant("acme", key, tk.signer("tenant-acme"))
    with pytest.raises(PublishError, match="already exists"):
        fresh(repo).add_tenant("acme", key)
    with pytest.raises(PublishError, match="tenant id"):
        fresh(repo).add_tenant("../x", key)
    r = fresh(repo)
    with pytest.raises(PublishError, match="plain file name"):
        r.publish_tenant_module("acme", "../x.wasm", b"\0asm", tk.signer("tenant-acme"))
    with pytest.raises(PublishError, match="not delegated"):
        r.publish_tenant_module("nobody", "x.wasm", b"\0asm", tk.signer("tenant-acme"))
    path = r.publish_tenant_module("acme", "x.wasm", b"\0asm", tk.signer("tenant-acme"))
    assert path == "tenants/acme/x.wasm"
    doc = fresh(repo).status()
    assert doc["tenants"] == ["acme"]
    delegated = fresh(repo).load_delegated("tenant-acme")
    assert list(delegated.signed.targets) == ["tenants/acme/x.wasm"]


def test_fetcher_maps_store_errors(repo: Repository) -> None:
    f = StoreFetcher(repo.store)
    assert f.download_bytes("edge-store:/metadata/root.json", 100_000).startswith(b"{")
    with pytest.raises(exceptions.DownloadHTTPError) as e:
        f.download_bytes("edge-store:/metadata/9.root.json", 100)
    assert e.value.status_code == 404
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        f.download_bytes("edge-store:/metadata/root.json", 10)
    with pytest.raises(exceptions.DownloadError):
        f.download_bytes("edge-store:/../etc/passwd", 10)
    with pytest.raises(exceptions.DownloadError):
        f.download_bytes("https://example.invalid/x", 10)
    with f.download_file("edge-store:/metadata/root.json", 100_000) as fh:
        assert fh.read(1) == b"{"
    got = repo.store.get("metadata/root.json")
    assert isinstance(got, Object)


def test_concurrent_publisher_is_detected(repo: Repository) -> None:
    first, second = fresh(repo), fresh(repo)
    first.publish_bundle(b"one")
    with pytest.raises(PublishError, match="another publisher"):
        second.publish_bundle(b"two")
    status = fresh(repo).status()
    assert status["stable"]["version"] == 1
    fresh(repo).publish_bundle(b"two")  # a rerun works
    assert fresh(repo).status()["stable"]["version"] == 2
