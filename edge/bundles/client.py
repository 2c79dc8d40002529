"""The node's trust client: what is the verified bundle for this node, and fetch it.

Synchronous (python-tuf and the storage SDKs block); the sync loop runs it in a thread.
All trust decisions are python-tuf's ngclient: root rotation, signature thresholds,
version rollback, snapshot/targets consistency, expiry, target length and hash. This
module adds the edge-specific parts on top: which bundle entry this node runs (canary),
the tenants' modules through their delegated roles, and a safe unpack.

ngclient persists metadata only after verifying it, so the files it leaves in the
metadata directory are trusted; the bundle list and the tenant module lists are read
from there after ``refresh()``.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tuf.api import exceptions
from tuf.api.metadata import Metadata, Snapshot, TargetFile, Targets
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater, UpdaterConfig

from cloud.store import ObjectStore
from edge.bundles import archive
from edge.bundles.fetcher import SCHEME, StoreFetcher
from edge.bundles.model import (
    TENANT_DIR,
    BundleEntry,
    BundleModelError,
    channels,
    parse_entry,
)

# Bigger than any sane configuration with its WASM modules; a signed entry claiming more
# is refused before downloading a byte.
MAX_BUNDLE_SIZE = 64 * 1024 * 1024
MAX_MODULE_SIZE = 16 * 1024 * 1024
MAX_TENANT_MODULES = 256


class BundleRejected(Exception):
    """The repository's content is refused; ``reason`` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Candidate:
    """The verified bundle this node should run, with its tenants' modules."""

    entry: BundleEntry
    canary_member: bool
    modules: tuple[TargetFile, ...] = ()
    fingerprint: str = ""
    metadata: dict[str, int] = field(default_factory=dict)


def reason_for(exc: BaseException) -> str:
    """A bounded label for a failure, for status and metrics."""
    if isinstance(exc, BundleRejected):
        return exc.reason
    if isinstance(exc, exceptions.ExpiredMetadataError):
        return "expired"
    if isinstance(exc, exceptions.BadVersionNumberError | exceptions.EqualVersionNumberError):
        return "rollback"
    if isinstance(exc, exceptions.UnsignedMetadataError):
        return "signature"
    if isinstance(exc, exceptions.LengthOrHashMismatchError):
        return "hash_mismatch"
    if isinstance(exc, exceptions.DownloadLengthMismatchError):
        return "too_large"
    if isinstance(exc, exceptions.DownloadError):
        return "storage"
    if isinstance(exc, exceptions.RepositoryError):
        return "metadata"
    if isinstance(exc, archive.ArchiveError):
        return "archive"
    if isinstance(exc, OSError):
        return "state"  # the node's own disk: state directory full or unwritable
    return "internal"


def fingerprint(entry: BundleEntry, modules: tuple[TargetFile, ...]) -> str:
    h = hashlib.sha256(entry.sha256.encode())
    for m in modules:
        h.update(f"\0{m.path}\0{m.hashes['sha256']}".encode())
    return h.hexdigest()


class BundleClient:
    def __init__(self, store: ObjectStore, metadata_dir: Path, trusted_root: bytes) -> None:
        self.store = store
        self.metadata_dir = Path(metadata_dir)
        self.trusted_root = trusted_root
        self.fetcher = StoreFetcher(store)
        self.config = UpdaterConfig(max_delegations=MAX_TENANT_MODULES)

    def updater(self) -> Updater:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        # Once a root is cached, it may be newer (rotated) than the provisioned one.
        cached = (self.metadata_dir / "root.json").exists()
        return Updater(
            str(self.metadata_dir),
            SCHEME + "metadata/",
            target_base_url=SCHEME + "targets/",
            fetcher=self.fetcher,
            config=self.config,
            bootstrap=None if cached else self.trusted_root,
        )

    def _trusted(self, role: str) -> Metadata[Targets] | Metadata[Snapshot]:
        return Metadata.from_file(str(self.metadata_dir / f"{quote(role, '')}.json"))

    def check(self, node_id: str) -> tuple[Updater, Candidate | None]:
        """Refresh metadata (raises on any trust failure) and pick this node's bundle."""
        updater = self.updater()
        try:
            return updater, self._pick(updater, node_id)
        except exceptions.LengthOrHashMismatchError as e:
            # Metadata that does not match what the signed role above it recorded: a
            # mix-and-match or replay of files, not a damaged bundle.
            raise BundleRejected("metadata_mismatch", str(e)) from None

    def _pick(self, updater: Updater, node_id: str) -> Candidate | None:
        updater.refresh()
        targets = self._trusted("targets").signed
        snapshot = self._trusted("snapshot").signed
        assert isinstance(targets, Targets) and isinstance(snapshot, Snapshot)
        try:
            entries = [
                parse_entry(p, t.length, t.hashes, t.custom)
                for p, t in targets.targets.items()
                if p.startswith("bundles/")
            ]
            entry, member = channels(entries).for_node(node_id)
        except BundleModelError as e:
            raise BundleRejected("metadata", str(e)) from None
        if entry is None:
            return None
        if entry.length > MAX_BUNDLE_SIZE:
            raise BundleRejected("too_large", f"{entry.path}: {entry.length} bytes is over the cap")
        modules = self._tenant_modules(updater, targets, snapshot)
        meta = {
            "timestamp": updater_version(self.metadata_dir, "timestamp"),
            "snapshot": snapshot.version,
            "targets": targets.version,
        }
        return Candidate(entry, member, modules, fingerprint(entry, modules), meta)

    def _tenant_modules(
        self, updater: Updater, targets: Targets, snapshot: Snapshot
    ) -> tuple[TargetFile, ...]:
        roles = targets.delegations.roles if targets.delegations else None
        out: list[TargetFile] = []
        for role in sorted(roles or {}):
            if f"{role}.json" not in snapshot.meta:
                continue  # delegated, nothing published by the tenant yet
            tenant = role.removeprefix("tenant-")
            # Looking up a path under the tenant's pattern makes ngclient load and verify
            # the tenant's role (signed by the tenant's key, or refused).
            updater.get_targetinfo(f"{TENANT_DIR}/{tenant}/.probe")
            listed = self._trusted(role).signed
            assert isinstance(listed, Targets)
            prefix = f"{TENANT_DIR}/{tenant}/"
            for path in sorted(listed.targets):
                if not path.startswith(prefix):
                    continue  # outside its delegation: ngclient never trusts it for that
                if not _plain_name(path[len(prefix) :]):
                    continue  # "..", "x/y": never a file name we write; the publisher refuses
                # Re-resolve through the delegation tree, the one authority on a path.
                info = updater.get_targetinfo(path)
                if info is None:
                    continue
                if info.length > MAX_MODULE_SIZE:
                    raise BundleRejected(
                        "too_large", f"{path}: {info.length} bytes is over the cap"
                    )
                out.append(info)
                if len(out) > MAX_TENANT_MODULES:
                    raise BundleRejected("tenant", f"more than {MAX_TENANT_MODULES} tenant modules")
        return tuple(out)

    def fetch(self, updater: Updater, cand: Candidate, dest: Path) -> None:
        """Download, verify and unpack the candidate into ``dest`` (which must not exist)."""
        info = updater.get_targetinfo(cand.entry.path)
        if info is None:
            raise BundleRejected("metadata", f"{cand.entry.path}: vanished from targets")
        staging = dest.with_name(dest.name + ".download")
        staging.mkdir(parents=True, exist_ok=True)
        try:
            archive_path = updater.download_target(info, str(staging / "bundle"))
            data = Path(archive_path).read_bytes()
            names = archive.unpack(data, dest)
            if any(n == TENANT_DIR or n.startswith(f"{TENANT_DIR}/") for n in names):
                raise archive.ArchiveError(f"{TENANT_DIR}/ is reserved for signed tenant modules")
            for module in cand.modules:
                target = dest / module.path
                target.parent.mkdir(parents=True, exist_ok=True)
                updater.download_target(module, str(target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _plain_name(name: str) -> bool:
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\x00")


def updater_version(metadata_dir: Path, role: str) -> int:
    try:
        return int(Metadata.from_bytes((metadata_dir / f"{role}.json").read_bytes()).signed.version)
    except (OSError, DeserializationError):
        return 0
