"""The node's bundle sync against real stores: publish then pull, and every attack or
fault rejected with its reason while the previous bundle keeps serving.

The node side runs in-process (BundleSync under trio) with the real compile path as its
``install``; the repository side is the real publisher. Attacks are made the way an
attacker with write access to the bucket would: by replacing objects in the store.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata

from cloud.local import LocalStore
from cloud.store import Object, ObjectStore, StoreError, open_store
from edge import config_source
from edge.bundles.archive import pack
from edge.bundles.keys import Keyring
from edge.bundles.model import BundleEntry, canary_bucket
from edge.bundles.repository import Repository, target_key
from edge.bundles.sync import BundleSync
from tests.support.procs import free_port
from tests.support.storage import store_url

CONFIG = """\
routes:
  - id: r1
    uri: /{marker}
    upstream:
      nodes: {{"127.0.0.1:1": 1}}
"""


class World:
    """A repository in a store, its keys, and one node syncing from it."""

    def __init__(self, url: str, tmp: Path, node_id: str = "node-1", threshold: int = 1) -> None:
        self.url = url
        self.tmp = tmp
        self.keys = tmp / "keys"
        self.store: ObjectStore = open_store(url)
        self.root = Repository(self.store, Keyring(self.keys)).init(root_threshold=threshold)
        self.installed: list[Path] = []
        self.status: dict[str, object] = {}
        self.sync = self.node(node_id)
        self._n = 0

    def node(self, node_id: str, state: str | None = None) -> BundleSync:
        return BundleSync(self.url, self.root, self.tmp / (state or f"state-{node_id}"), node_id)

    def repo(self) -> Repository:
        return Repository(open_store(self.url), Keyring(self.keys)).load()

    def config_dir(self, marker: str, text: str | None = None) -> Path:
        self._n += 1
        d = self.tmp / f"cfg{self._n}"
        d.mkdir()
        (d / "edge.yaml").write_text(text if text is not None else CONFIG.format(marker=marker))
        return d

    def publish(self, marker: str, **kw: object) -> BundleEntry:
        return self.repo().publish_bundle(pack(self.config_dir(marker)), **kw)  # type: ignore[arg-type]

    def install(self, path: Path) -> None:
        config_source.compile_path(path, node_id="test", shared={"role": "test"})
        self.installed.append(path)

    def set_status(self, key: str, value: object) -> None:
        self.status[key] = value

    async def start(self, sync: BundleSync | None = None) -> None:
        await (sync or self.sync).start(self.install, self.set_status)

    async def poll(self, sync: BundleSync | None = None) -> str:
        return await (sync or self.sync).poll_once(self.install)

    def serving(self) -> str:
        """The marker of the route in the bundle installed last."""
        text = (self.installed[-1] / "edge.yaml").read_text()
        return text.split("uri: /")[1].split()[0]

    def get(self, key: str) -> bytes:
        got = self.store.get(key)
        assert isinstance(got, Object)
        return got.data


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    with store_url("file", monkeypatch, tmp_path) as url:
        yield World(url, tmp_path)


async def _serving_v1(world: World) -> None:
    world.publish("v1")
    await world.start()
    assert await world.poll() == "installed"
    assert world.serving() == "v1"


def _assert_kept(world: World, reason: str) -> None:
    assert world.serving() == "v1"
    assert world.sync.active is not None and world.sync.active.version == 1
    assert world.sync.failures.get(reason) == 1, world.sync.failures
    assert world.status["bundle.version"] == 1
    assert world.status["bundle.consecutive_failures"] == {reason: 1}


# -- publish then pull on every store ------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "s3", "gs"])
async def test_publish_then_pull(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with store_url(kind, monkeypatch, tmp_path) as url:
        w = World(url, tmp_path)
        await w.start()
        assert await w.poll() == "empty"
        assert w.installed == []  # nothing verified: nothing installed, node not ready
        w.publish("v1")
        assert await w.poll() == "installed"
        assert w.serving() == "v1"
        fetcher = w.sync.client().fetcher
        fetcher.downloads.clear()
        assert await w.poll() == "unchanged"
        # An unchanged repository costs the timestamp and the next-root probe, no more.
        assert sorted(fetcher.downloads) == ["metadata/2.root.json", "metadata/timestamp.json"]
        w.publish("v2")
        assert await w.poll() == "installed"
        assert w.serving() == "v2"
        assert w.status["bundle.version"] == 2
        assert w.status["bundle.stale"] is False
        assert w.status["bundle.last_check_ok_at"]


async def test_restart_keeps_trusted_state_and_lkg(world: World) -> None:
    await _serving_v1(world)
    again = world.node("node-1")
    world.installed.clear()
    await world.start(again)
    assert world.serving() == "v1"  # last-known-good before any poll
    assert await world.poll(again) == "unchanged"


# -- attacks and faults ---------------------------------------------------------------------


async def test_bundle_modified_after_signing(world: World) -> None:
    await _serving_v1(world)
    e = world.publish("v2")
    key = target_key(e.path, e.sha256)
    data = bytearray(world.get(key))
    data[len(data) // 2] ^= 0x01  # same length: only the hash can tell
    world.store.put(key, bytes(data))
    assert await world.poll() == "hash_mismatch"
    _assert_kept(world, "hash_mismatch")


async def test_truncated_download(world: World) -> None:
    await _serving_v1(world)
    e = world.publish("v2")
    key = target_key(e.path, e.sha256)
    world.store.put(key, world.get(key)[:-10])
    assert await world.poll() == "hash_mismatch"
    _assert_kept(world, "hash_mismatch")


async def test_oversized_download(world: World) -> None:
    await _serving_v1(world)
    e = world.publish("v2")
    key = target_key(e.path, e.sha256)
    world.store.put(key, world.get(key) + b"\0" * 4096)
    assert await world.poll() == "too_large"
    _assert_kept(world, "too_large")


def _resign_timestamp(world: World, signer: Signer) -> None:
    """What an attacker holding ``signer`` does: a newer timestamp, signed by it."""
    md = Metadata.from_bytes(world.get("metadata/timestamp.json"))
    md.signed.version += 1
    md.signatures.clear()
    md.sign(signer)
    world.store.put("metadata/timestamp.json", md.to_bytes())


async def test_timestamp_signed_by_wrong_key(world: World) -> None:
    await _serving_v1(world)
    world.publish("v2")
    _resign_timestamp(world, CryptoSigner.generate_ed25519())
    assert await world.poll() == "signature"
    _assert_kept(world, "signature")


async def test_revoked_key(world: World) -> None:
    await _serving_v1(world)
    repo = world.repo()
    repo.rotate_key("timestamp")
    assert await world.poll() == "unchanged"  # the node followed the root rotation
    world.publish("v2")
    old = Keyring(world.keys)
    (world.keys / "timestamp.pub.json.old").rename(world.keys / "old-ts.pub.json")
    (world.keys / "timestamp.pem.old").rename(world.keys / "old-ts.pem")
    _resign_timestamp(world, old.signer("old-ts"))
    assert await world.poll() == "signature"
    _assert_kept(world, "signature")


async def test_fewer_signatures_than_threshold(tmp_path: Path) -> None:
    w = World(str(tmp_path / "store"), tmp_path, threshold=2)
    keys = Keyring(w.keys)
    store = w.store
    await _serving_v1(w)
    # A new root handing timestamp to an attacker's key, signed by one of two root keys.
    repo = w.repo()
    attacker = CryptoSigner.generate_ed25519()
    for keyid in list(repo.root.signed.roles["timestamp"].keyids):
        repo.root.signed.revoke_key(keyid, "timestamp")
    repo.root.signed.add_key(attacker.public_key, "timestamp")
    repo.root.signed.version += 1
    repo.root.signatures.clear()
    repo.root.sign(keys.signer("root-1"))
    store.put(f"metadata/{repo.root.signed.version}.root.json", repo.root.to_bytes())
    _resign_timestamp(w, attacker)
    assert await w.poll() == "signature"
    _assert_kept(w, "signature")


async def test_replayed_older_timestamp(world: World) -> None:
    await _serving_v1(world)
    old_ts = world.get("metadata/timestamp.json")
    world.publish("v2")
    assert await world.poll() == "installed"
    world.store.put("metadata/timestamp.json", old_ts)
    assert await world.poll() == "rollback"
    assert world.serving() == "v2"
    assert world.sync.failures == {"rollback": 1}


async def test_replayed_older_snapshot(world: World) -> None:
    await _serving_v1(world)
    repo = world.repo()
    old_snapshot = world.get(f"metadata/{repo.snapshot.signed.version}.snapshot.json")
    e = world.publish("v2")
    new_v = world.repo().snapshot.signed.version
    world.store.put(f"metadata/{new_v}.snapshot.json", old_snapshot)
    assert e.version == 2
    assert await world.poll() == "metadata_mismatch"
    _assert_kept(world, "metadata_mismatch")


async def test_mixed_targets_and_snapshot(world: World) -> None:
    await _serving_v1(world)
    old_targets = world.get(f"metadata/{world.repo().targets.signed.version}.targets.json")
    world.publish("v2")
    world.store.put(f"metadata/{world.repo().targets.signed.version}.targets.json", old_targets)
    assert await world.poll() == "metadata_mismatch"
    _assert_kept(world, "metadata_mismatch")


async def test_expired_timestamp_is_never_installed(world: World) -> None:
    await _serving_v1(world)
    repo = world.repo()
    repo.expiry["timestamp"] = timedelta(seconds=-60)
    repo.publish_bundle(pack(world.config_dir("v2")))
    assert await world.poll() == "expired"
    _assert_kept(world, "expired")
    assert world.status["bundle.stale"] is True
    # A refresh from the operator clears it and the bundle goes in.
    world.repo().refresh_timestamp()
    assert await world.poll() == "installed"
    assert world.status["bundle.stale"] is False


def _tar(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        ok = tarfile.TarInfo("edge.yaml")
        body = CONFIG.format(marker="evil").encode()
        ok.size = len(body)
        tar.addfile(ok, io.BytesIO(body))
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd"
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("edge.yaml", CONFIG.format(marker="bomb"))
        zf.writestr("bomb.bin", b"\0" * (40 * 1024 * 1024))
    return buf.getvalue()


@pytest.mark.parametrize(
    "archive",
    [
        pytest.param(lambda: _tar("../../escape"), id="dotdot"),
        pytest.param(lambda: _tar("/etc/cron.d/x"), id="absolute"),
        pytest.param(lambda: _tar("link", tarfile.SYMTYPE), id="symlink"),
        pytest.param(lambda: _tar("hard", tarfile.LNKTYPE), id="hardlink"),
        pytest.param(_zip_bomb, id="zipbomb"),
        pytest.param(lambda: _tar("tenants/acme/x.wasm"), id="reserved-tenants-dir"),
    ],
)
async def test_hostile_archive_signed_by_the_operator(world: World, archive: object) -> None:
    await _serving_v1(world)
    world.repo().publish_bundle(archive())  # type: ignore[operator]
    assert await world.poll() == "archive"
    _assert_kept(world, "archive")
    assert not (world.tmp / "escape").exists()
    leftovers = [p.name for p in world.sync.state.bundles_dir.iterdir()]
    assert len(leftovers) == 1  # only v1's directory: the rejected one was removed


async def test_valid_signature_over_invalid_configuration(world: World) -> None:
    await _serving_v1(world)
    bad = world.config_dir("", "routes:\n  - uri: 42\n    upstream: {}\n")
    world.repo().publish_bundle(pack(bad))
    assert await world.poll() == "config"
    _assert_kept(world, "config")
    assert "routes[0]" in str(world.status["bundle.last_error"])
    # Not downloaded again while the repository stays the same.
    fetcher = world.sync.client().fetcher
    fetcher.downloads.clear()
    assert await world.poll() == "config"
    assert not any(k.startswith("targets/") for k in fetcher.downloads)
    assert world.sync.failures == {"config": 2}


async def test_storage_down_during_pull_and_cold_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with store_url("s3", monkeypatch, tmp_path) as url:
        w = World(url, tmp_path)
        await _serving_v1(w)
        w.publish("v2")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
        down = w.node("node-1")
        w.installed.clear()
        await w.start(down)  # cold start: last-known-good, no storage needed
        assert w.serving() == "v1"
        assert await w.poll(down) == "storage"
        assert w.serving() == "v1"
        assert down.failures == {"storage": 1}
        assert w.status["bundle.consecutive_failures"] == {"storage": 1}
        assert url.split("://")[1].split("/")[0] in str(w.status["bundle.last_error"])
        assert w.status["bundle.stale"] is False


async def test_cold_start_with_nothing_verified(world: World) -> None:
    world.publish("v1")
    store_dir = Path(world.url.removeprefix("file://"))
    store_dir.rename(store_dir.with_name("gone"))
    await world.start()
    assert world.installed == []
    assert await world.poll() == "storage"
    assert world.status["bundle.version"] is None


# -- canary ----------------------------------------------------------------------------------


def _node_ids() -> tuple[str, str]:
    inside = next(f"n{i}" for i in range(1000) if canary_bucket(f"n{i}") < 3000)
    outside = next(f"n{i}" for i in range(1000) if canary_bucket(f"n{i}") >= 7000)
    return inside, outside


async def test_canary_promote_rollback(world: World) -> None:
    inside, outside = _node_ids()
    a, b = world.node(inside), world.node(outside)
    await world.start(a)
    await world.start(b)
    world.publish("v1")
    assert await world.poll(a) == "installed" and await world.poll(b) == "installed"
    world.publish("v2", canary_percent=50)
    assert await world.poll(a) == "installed"
    assert a.active is not None and a.active.version == 2 and a.active.canary
    assert await world.poll(b) == "unchanged"
    assert b.active is not None and b.active.version == 1 and not b.active.canary
    world.repo().promote()
    assert await world.poll(a) == "unchanged"  # same bytes: nothing to reinstall
    assert a.active.version == 2 and not a.active.canary  # type: ignore[union-attr]
    assert await world.poll(b) == "installed"
    assert b.active.version == 2  # type: ignore[union-attr]
    world.repo().rollback(1)
    assert await world.poll(a) == "installed" and await world.poll(b) == "installed"
    assert a.active.version == b.active.version == 3  # type: ignore[union-attr]
    assert world.serving() == "v1"


# -- tenants ---------------------------------------------------------------------------------

WASM = b"\x00asm\x01\x00\x00\x00"


async def test_tenant_modules_and_wrong_tenant_signature(world: World) -> None:
    repo = world.repo()
    tenant_keys = {t: Keyring(world.tmp / f"tenant-{t}") for t in ("a", "b")}
    for t, kr in tenant_keys.items():
        key = kr.generate(f"tenant-{t}")
        repo.add_tenant(t, key, kr.signer(f"tenant-{t}"))
    repo.publish_tenant_module("a", "auth.wasm", WASM, tenant_keys["a"].signer("tenant-a"))
    world.publish("v1")
    await world.start()
    assert await world.poll() == "installed"
    assert (world.installed[-1] / "tenants" / "a" / "auth.wasm").read_bytes() == WASM

    # The publisher refuses to sign a's module with b's key ...
    repo = world.repo()
    with pytest.raises(Exception, match="not tenant a's delegated key"):
        repo.publish_tenant_module(
            "a", "evil.wasm", WASM + b"\x01", tenant_keys["b"].signer("tenant-b")
        )
    # ... and a node refuses it when someone does it anyway.
    md = repo.load_delegated("tenant-a")
    md.signed.targets.pop("tenants/a/auth.wasm")
    md.signed.version += 1
    md.signatures.clear()
    md.sign(tenant_keys["b"].signer("tenant-b"))
    repo.commit(["tenant-a"], sign=False)
    assert await world.poll() == "signature"
    assert world.sync.failures == {"signature": 1}
    assert (world.installed[-1] / "tenants" / "a" / "auth.wasm").read_bytes() == WASM


class FlakyStore(LocalStore):
    """A local store whose writes start failing at a chosen key, like a bucket that
    becomes unreachable half-way through a publish."""

    def __init__(self, root: Path, fail_at: str) -> None:
        super().__init__(root)
        self.fail_at = fail_at

    def put(self, key: str, data: bytes) -> str:
        if key == self.fail_at:
            raise StoreError(self.key_url(key), "connection reset by peer")
        return super().put(key, data)


@pytest.mark.parametrize("fail_at", ["metadata/3.targets.json", "metadata/timestamp.json"])
async def test_storage_fails_mid_publish(world: World, fail_at: str) -> None:
    await _serving_v1(world)
    flaky = FlakyStore(Path(world.url.removeprefix("file://")), fail_at)
    with pytest.raises(StoreError):
        Repository(flaky, Keyring(world.keys)).load().publish_bundle(pack(world.config_dir("half")))
    # The old timestamp still rules: nodes see the repository as it was.
    assert await world.poll() == "unchanged"
    assert world.serving() == "v1"
    world.publish("v3")  # the publisher recovers from the stored state
    assert await world.poll() == "installed"
    assert world.serving() == "v3"
