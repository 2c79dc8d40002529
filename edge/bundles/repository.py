"""The publishing side of the TUF repository that carries edge bundles.

Layout under the store URL (consistent snapshots, so nothing a node may be reading is
ever overwritten, except ``timestamp.json`` which is the one entry point)::

    metadata/<N>.root.json, metadata/root.json      every root version, and the latest
    metadata/<N>.targets.json, <N>.snapshot.json    versioned, immutable
    metadata/<N>.tenant-<id>.json                   a tenant's delegated targets role
    metadata/timestamp.json                         rewritten on every change
    targets/bundles/<sha256>.<version>.tar.gz       configuration bundles
    targets/tenants/<id>/<sha256>.<name>            tenants' WASM modules

Every change uploads new content first, then metadata bottom-up - targets files,
delegated targets, targets, snapshot, timestamp last - so a node that reads the new
timestamp finds everything it points to, and a crash mid-way leaves the old timestamp,
and so the old repository state, intact.

What the publisher loads from the store is verified before it re-signs anything: the root
chain from the operator's pinned ``root.json``, and each role against it. A store that was
tampered with cannot get its content signed by the next publish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Key, Signer
from tuf.api.exceptions import (
    LengthOrHashMismatchError,
    RepositoryError,
    UnsignedMetadataError,
)
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError

from cloud.store import ObjectNotFound, ObjectStore
from edge.bundles.keys import Keyring
from edge.bundles.model import (
    CANARY,
    KEEP_HISTORY,
    STABLE,
    TENANT_DIR,
    BundleEntry,
    Channels,
    bundle_path,
    channels,
    parse_entry,
    tenant_pattern,
    tenant_role,
    valid_tenant_id,
)

METADATA = "metadata"
TARGETS = "targets"
TOP_ROLES = ("root", "targets", "snapshot", "timestamp")
MAX_METADATA = 5 * 1024 * 1024
MAX_ROOT_ROTATIONS = 256

# Expiry policy. The timestamp is short-lived so that a frozen (withheld) repository is
# noticed within a day; snapshot is refreshed with it when it gets close.
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=365),
    "snapshot": timedelta(days=30),
    "timestamp": timedelta(days=1),
    "delegated": timedelta(days=365),
}
SNAPSHOT_REFRESH_MARGIN = timedelta(days=7)


class PublishError(Exception):
    """Publishing cannot go on; the message says what and where."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _meta_key(role: str, version: int | None) -> str:
    return f"{METADATA}/{role}.json" if version is None else f"{METADATA}/{version}.{role}.json"


def target_key(path: str, sha256: str) -> str:
    """Where a target's bytes live: the hash-prefixed name ngclient asks for."""
    dirname, _, base = path.rpartition("/")
    return f"{TARGETS}/{dirname}/{sha256}.{base}" if dirname else f"{TARGETS}/{sha256}.{base}"


class Repository:
    """The repository state as last published, with operations that publish a change."""

    def __init__(self, store: ObjectStore, keys: Keyring, *, now: datetime | None = None) -> None:
        self.store = store
        self.keys = keys
        self.now = now or _now()
        self.expiry = dict(EXPIRY)
        self.root: Metadata[Root]
        self.targets: Metadata[Targets]
        self.snapshot: Metadata[Snapshot]
        self.timestamp: Metadata[Timestamp]
        self.delegated: dict[str, Metadata[Targets]] = {}
        self.root_pinned = True
        self._ts_seen: int | None = None  # timestamp version last read or written

    # -- creating ----------------------------------------------------------------------

    def init(self, root_threshold: int = 1, root_keys: int | None = None) -> Path:
        """Create keys and version 1 of every role; return the root file nodes pin."""
        if root_threshold < 1:
            raise PublishError("--threshold must be at least 1")
        n_root = root_keys or root_threshold
        if n_root < root_threshold:
            raise PublishError(f"{n_root} root keys cannot meet a threshold of {root_threshold}")
        if self.store.list(f"{METADATA}/"):
            raise PublishError(f"{self.store.url}: a repository already exists here")
        root = Root(expires=self.now + self.expiry["root"], consistent_snapshot=True)
        for i in range(1, n_root + 1):
            root.add_key(self.keys.generate(f"root-{i}"), "root")
        root.roles["root"].threshold = root_threshold
        for role in ("targets", "snapshot", "timestamp"):
            root.add_key(self.keys.generate(role), role)
        self.root = Metadata(root)
        self._sign(self.root, "root")
        self.targets = Metadata(Targets(expires=self.now + self.expiry["targets"]))
        self.snapshot = Metadata(Snapshot(expires=self.now + self.expiry["snapshot"]))
        self.timestamp = Metadata(Timestamp(expires=self.now + self.expiry["timestamp"]))
        self.targets.signed.version = 0
        self.snapshot.signed.version = 0
        self.timestamp.signed.version = 0
        data = self.root.to_bytes()
        self.store.put(_meta_key("root", 1), data)
        self.store.put(_meta_key("root", None), data)
        self.commit(["targets"])
        pinned = self.keys.dir / "root.json"
        pinned.write_bytes(data)
        return pinned

    # -- loading -----------------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        obj = self.store.get(key, max_size=MAX_METADATA)
        return obj.data  # type: ignore[union-attr]

    def _parse(self, key: str, data: bytes) -> Metadata[Any]:
        try:
            return Metadata.from_bytes(data)
        except DeserializationError as e:
            raise PublishError(f"{self.store.key_url(key)}: invalid metadata: {e}") from None

    def load(self, trusted_root: Path | None = None, *, tofu: bool = False) -> Repository:
        """Read the published state, verified from ``trusted_root`` (default: the keys
        directory's ``root.json``). ``tofu`` starts from the repository's own first root
        instead: trust on first use, only good enough for ``status``."""
        pinned = trusted_root or self.keys.dir / "root.json"
        try:
            if tofu:
                raw = self._get(_meta_key("root", 1))
                self.root_pinned = False
            else:
                raw = pinned.read_bytes()
            root: Metadata[Root] = Metadata.from_bytes(raw)
        except ObjectNotFound:
            raise PublishError(
                f"{self.store.url}: no repository here (metadata/1.root.json)"
            ) from None
        except (OSError, DeserializationError) as e:
            raise PublishError(f"{pinned}: cannot read the pinned root: {e}") from None
        # Walk the root chain as a node would, so a forged root in the store is refused.
        for _ in range(MAX_ROOT_ROTATIONS):
            key = _meta_key("root", root.signed.version + 1)
            try:
                data = self._get(key)
            except ObjectNotFound:
                break
            new: Metadata[Root] = self._parse(key, data)
            try:
                root.signed.verify_delegate("root", new.signed_bytes, new.signatures)
                new.signed.verify_delegate("root", new.signed_bytes, new.signatures)
            except UnsignedMetadataError as e:
                raise PublishError(f"{self.store.key_url(key)}: {e}") from None
            if new.signed.version != root.signed.version + 1:
                raise PublishError(f"{self.store.key_url(key)}: wrong version inside")
            root = new
        self.root = root
        try:
            self.timestamp = self._load_role("timestamp", None)
            self._ts_seen = self.timestamp.signed.version
            snap_v = self.timestamp.signed.snapshot_meta.version
            self.snapshot = self._load_role("snapshot", snap_v)
            self.targets = self._load_role(
                "targets", self.snapshot.signed.meta["targets.json"].version
            )
        except ObjectNotFound as e:
            raise PublishError(f"{e.url}: missing; is this an edge bundle repository?") from None
        return self

    def _load_role(self, role: str, version: int | None, delegator: Any = None) -> Metadata[Any]:
        key = _meta_key(role, version)
        md = self._parse(key, self._get(key))
        if md.signed.type != (role if delegator is None else "targets"):
            raise PublishError(f"{self.store.key_url(key)}: holds {md.signed.type} metadata")
        try:
            (delegator or self.root.signed).verify_delegate(role, md.signed_bytes, md.signatures)
        except (UnsignedMetadataError, ValueError) as e:
            raise PublishError(f"{self.store.key_url(key)}: signature check failed: {e}") from None
        return md

    def load_delegated(self, role: str) -> Metadata[Targets]:
        if role not in self.delegated:
            meta = self.snapshot.signed.meta.get(f"{role}.json")
            if meta is None:
                raise PublishError(f"{role}: not published yet")
            self.delegated[role] = self._load_role(role, meta.version, self.targets.signed)
        return self.delegated[role]

    # -- signing and publishing -------------------------------------------------------

    def _signers(self, role: str) -> list[Signer]:
        if role == "root":
            names = [n for n in _root_key_names(self.keys) if self.keys.has(n)]
        else:
            names = [role]
        wanted = self.root.signed.roles[role].keyids if role in TOP_ROLES else None
        signers = []
        for name in names:
            if self.keys.has(name) and (wanted is None or self.keys.public(name).keyid in wanted):
                signers.append(self.keys.signer(name))
        return signers

    def _sign(self, md: Metadata[Any], role: str, signers: Iterable[Signer] | None = None) -> None:
        md.signatures.clear()
        signers = list(signers) if signers is not None else self._signers(role)
        if role in TOP_ROLES:
            needed = self.root.signed.roles[role].threshold
            if len(signers) < needed:
                raise PublishError(
                    f"{self.keys.dir}: {len(signers)} usable {role} key(s), threshold is {needed}"
                )
        if not signers:
            raise PublishError(f"{self.keys.dir}: no key to sign {role} with")
        for signer in signers:
            md.sign(signer, append=True)

    def _bump(self, signed: Signed, kind: str) -> None:
        signed.version += 1
        signed.expires = self.now + self.expiry[kind]

    def commit(
        self,
        changed: Iterable[str],
        *,
        signers: dict[str, list[Signer]] | None = None,
        sign: bool = True,
    ) -> None:
        """Publish new versions of the ``changed`` targets roles, then snapshot, timestamp.

        ``signers`` overrides the keys per role (tenants sign their own role); with
        ``sign=False`` the roles' signatures are left as the caller made them.
        """
        signers = signers or {}
        for role in changed:
            md = self.targets if role == "targets" else self.delegated[role]
            if sign:
                self._bump(md.signed, "targets" if role == "targets" else "delegated")
                self._sign(md, role, signers.get(role))
            data = md.to_bytes()
            self.store.put(_meta_key(role, md.signed.version), data)
            self.snapshot.signed.meta[f"{role}.json"] = MetaFile(
                version=md.signed.version, length=len(data), hashes=_sha(data)
            )
        self._bump(self.snapshot.signed, "snapshot")
        self._sign(self.snapshot, "snapshot", signers.get("snapshot"))
        snap = self.snapshot.to_bytes()
        self.store.put(_meta_key("snapshot", self.snapshot.signed.version), snap)
        self.timestamp.signed.snapshot_meta = MetaFile(
            version=self.snapshot.signed.version, length=len(snap), hashes=_sha(snap)
        )
        self.publish_timestamp(signers.get("timestamp"))

    def publish_timestamp(self, signers: list[Signer] | None = None) -> None:
        self._bump(self.timestamp.signed, "timestamp")
        self._sign(self.timestamp, "timestamp", signers)
        key = _meta_key("timestamp", None)
        if self._ts_seen is not None:
            # Optimistic check for a concurrent publisher: the last write wins on object
            # stores, so refuse to make our state live over one we never read.
            live = self._parse(key, self._get(key)).signed.version
            if live != self._ts_seen:
                raise PublishError(
                    f"{self.store.key_url(key)}: changed to version {live} while publishing "
                    "(another publisher?); nothing was made live, run the command again"
                )
        self.store.put(key, self.timestamp.to_bytes())
        self._ts_seen = self.timestamp.signed.version

    def refresh_timestamp(self) -> None:
        """Re-sign timestamp (and snapshot, when it is close to expiry) with no change."""
        if (
            self.snapshot.signed.expires - self.now
            < SNAPSHOT_REFRESH_MARGIN + self.expiry["timestamp"]
        ):
            self.commit([])
        else:
            self.publish_timestamp()

    def publish_root(self, signers: list[Signer] | None = None) -> None:
        self._bump(self.root.signed, "root")
        self._sign(self.root, "root", signers)
        data = self.root.to_bytes()
        self.store.put(_meta_key("root", self.root.signed.version), data)
        self.store.put(_meta_key("root", None), data)

    def rotate_key(self, role: str) -> Key:
        """Replace ``role``'s key with a new one (the old files are kept as ``*.old``)."""
        if role not in ("targets", "snapshot", "timestamp"):
            raise PublishError(f"rotate-key supports targets, snapshot, timestamp, not {role}")
        for suffix in (".pub.json", ".pem", ".uri"):
            old = self.keys.dir / f"{role}{suffix}"
            if old.exists():
                old.rename(old.with_name(f"{old.name}.old"))
        for keyid in list(self.root.signed.roles[role].keyids):
            self.root.signed.revoke_key(keyid, role)
        new = self.keys.generate(role)
        self.root.signed.add_key(new, role)
        self.publish_root()
        # Everything signed by the old key must be re-signed for nodes to accept it.
        if role == "targets":
            self.commit(["targets"])
        elif role == "snapshot":
            self.commit([])
        else:
            self.publish_timestamp()
        return new

    # -- bundles -----------------------------------------------------------------------

    def channels(self) -> Channels:
        entries = [
            parse_entry(path, t.length, t.hashes, t.custom)
            for path, t in self.targets.signed.targets.items()
            if path.startswith("bundles/")
        ]
        return channels(entries)

    def _set_entries(self, entries: Iterable[BundleEntry]) -> None:
        kept = sorted(entries, key=lambda e: e.version)
        history = [e for e in kept if e.channel is None]
        drop = {e.path for e in history[: max(0, len(history) - KEEP_HISTORY)]}
        tmap = self.targets.signed.targets
        for path in [p for p in tmap if p.startswith("bundles/")]:
            del tmap[path]
        for e in kept:
            if e.path not in drop:
                tmap[e.path] = TargetFile(
                    e.length,
                    {"sha256": e.sha256},
                    e.path,
                    unrecognized_fields={"custom": e.custom()},
                )

    def publish_bundle(
        self,
        archive: bytes,
        *,
        canary_percent: float | None = None,
        rolled_back_from: int | None = None,
    ) -> BundleEntry:
        ch = self.channels()
        version = ch.next_version()
        sha = hashlib.sha256(archive).hexdigest()
        is_canary = canary_percent is not None and canary_percent < 100
        entry = BundleEntry(
            path=bundle_path(version),
            version=version,
            sha256=sha,
            length=len(archive),
            published_at=self.now.isoformat().replace("+00:00", "Z"),
            channel=CANARY if is_canary else STABLE,
            canary_percent=canary_percent if is_canary else None,
            rolled_back_from=rolled_back_from,
        )
        self.store.put(target_key(entry.path, sha), archive)
        others = [e for e in ch.all()]
        if is_canary:
            # A new canary replaces the previous one; stable stays.
            others = [_demote(e) if e.channel == CANARY else e for e in others]
        else:
            others = [_demote(e) for e in others]
        self._set_entries([*others, entry])
        self.commit(["targets"])
        return entry

    def promote(self) -> BundleEntry:
        ch = self.channels()
        if ch.canary is None:
            raise PublishError("there is no canary bundle to promote")
        promoted = BundleEntry(**{**ch.canary.__dict__, "channel": STABLE, "canary_percent": None})
        rest = [_demote(e) for e in ch.all() if e.version != promoted.version]
        self._set_entries([*rest, promoted])
        self.commit(["targets"])
        return promoted

    def rollback(self, to_version: int) -> BundleEntry:
        old = self.channels().by_version(to_version)
        if old is None:
            raise PublishError(f"version {to_version} is not in the repository's bundle history")
        key = target_key(old.path, old.sha256)
        data = self._get_target(key, old.length)
        if hashlib.sha256(data).hexdigest() != old.sha256:
            raise PublishError(f"{self.store.key_url(key)}: content does not match its signed hash")
        return self.publish_bundle(data, rolled_back_from=to_version)

    def _get_target(self, key: str, length: int) -> bytes:
        obj = self.store.get(key, max_size=length)
        return obj.data  # type: ignore[union-attr]

    # -- tenants -----------------------------------------------------------------------

    def add_tenant(self, tenant_id: str, key: Key, tenant_signer: Signer | None = None) -> None:
        if not valid_tenant_id(tenant_id):
            raise PublishError(f"tenant id {tenant_id!r}: use letters, digits, '-' and '_'")
        role = tenant_role(tenant_id)
        t = self.targets.signed
        if t.delegations is None:
            t.delegations = Delegations(keys={}, roles={})
        assert t.delegations.roles is not None
        if role in t.delegations.roles:
            raise PublishError(f"tenant {tenant_id} already exists")
        t.delegations.roles[role] = DelegatedRole(
            role, [], 1, terminating=True, paths=[tenant_pattern(tenant_id)]
        )
        t.add_key(key, role)
        changed = ["targets"]
        if tenant_signer is not None:
            # An empty first version, so nodes find the role in snapshot from the start.
            self.delegated[role] = _empty_delegated()
            changed.insert(0, role)
        self.commit(changed, signers={role: [tenant_signer]} if tenant_signer else None)

    def publish_tenant_module(self, tenant_id: str, name: str, data: bytes, signer: Signer) -> str:
        role = tenant_role(tenant_id)
        delegations = self.targets.signed.delegations
        if delegations is None or delegations.roles is None or role not in delegations.roles:
            raise PublishError(f"tenant {tenant_id} is not delegated; run 'edge bundle tenant add'")
        if signer.public_key.keyid not in delegations.roles[role].keyids:
            raise PublishError(f"the given key is not tenant {tenant_id}'s delegated key")
        if not name or "/" in name or name.startswith("."):
            raise PublishError(f"module name {name!r}: a plain file name is required")
        try:
            md = self.load_delegated(role)
        except PublishError:
            md = self.delegated[role] = _empty_delegated()
        path = f"tenants/{tenant_id}/{name}"
        target = TargetFile.from_data(path, data, ["sha256"])
        self.store.put(target_key(path, target.hashes["sha256"]), data)
        md.signed.targets[path] = target
        self.commit([role], signers={role: [signer]})
        return path

    def tenant_modules(self) -> dict[str, bytes]:
        """Every published tenant module, verified against its tenant's signed role, so
        a configuration can be compiled with them exactly as a node will see it."""
        out: dict[str, bytes] = {}
        delegations = self.targets.signed.delegations
        roles = delegations.roles if delegations and delegations.roles else {}
        for role in sorted(roles):
            if f"{role}.json" not in self.snapshot.signed.meta:
                continue
            prefix = f"{TENANT_DIR}/{role.removeprefix('tenant-')}/"
            for path, target in sorted(self.load_delegated(role).signed.targets.items()):
                if not path.startswith(prefix):
                    continue
                key = target_key(path, target.hashes["sha256"])
                data = self._get_target(key, target.length)
                try:
                    target.verify_length_and_hashes(data)
                except LengthOrHashMismatchError:
                    raise PublishError(
                        f"{self.store.key_url(key)}: does not match its signed hash"
                    ) from None
                out[path] = data
        return out

    # -- reporting ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        ch = self.channels()

        def brief(e: BundleEntry | None) -> dict[str, Any] | None:
            if e is None:
                return None
            out: dict[str, Any] = {
                "version": e.version,
                "sha256": e.sha256,
                "size": e.length,
                "published_at": e.published_at,
            }
            if e.canary_percent is not None:
                out["canary_percent"] = e.canary_percent
            if e.rolled_back_from is not None:
                out["rolled_back_from"] = e.rolled_back_from
            return out

        delegations = self.targets.signed.delegations
        tenants = sorted(delegations.roles) if delegations and delegations.roles else []
        return {
            "store": self.store.url,
            "root_pinned": self.root_pinned,
            "stable": brief(ch.stable),
            "canary": brief(ch.canary),
            "history": [e.version for e in ch.history],
            "tenants": [r.removeprefix("tenant-") for r in tenants],
            "metadata": {
                name: {"version": md.signed.version, "expires": md.signed.expires.isoformat()}
                for name, md in (
                    ("root", self.root),
                    ("targets", self.targets),
                    ("snapshot", self.snapshot),
                    ("timestamp", self.timestamp),
                )
            },
        }


def _empty_delegated() -> Metadata[Targets]:
    md = Metadata(Targets())
    md.signed.version = 0  # commit() bumps it to 1
    return md


def _demote(e: BundleEntry) -> BundleEntry:
    return BundleEntry(**{**e.__dict__, "channel": None, "canary_percent": None})


def _sha(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest()}


def _root_key_names(keys: Keyring) -> list[str]:
    return sorted(
        (p.name.removesuffix(".pub.json") for p in keys.dir.glob("root-*.pub.json")),
        key=lambda n: int(n.split("-")[1]) if n.split("-")[1].isdigit() else 0,
    )


__all__ = ["PublishError", "Repository", "RepositoryError", "target_key"]
