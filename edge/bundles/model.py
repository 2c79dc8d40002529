"""What a published bundle is, as recorded in signed targets metadata, and which one a
node should run. Pure: no I/O, no TUF client, so the rules are tested as data.

Every published configuration is a target ``bundles/<version>.tar.gz`` whose signed
``custom`` field carries ``{"edge": {"version", "published_at", "channel", ...}}``. At most
one entry has channel ``stable`` and at most one ``canary``; the others are history kept
for ``rollback``. A node runs the canary when its stable hash falls under the canary
percentage, the stable bundle otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUNDLE_DIR = "bundles"
TENANT_DIR = "tenants"
STABLE = "stable"
CANARY = "canary"
# How many superseded bundles targets metadata keeps listed (and so rollback can reach).
KEEP_HISTORY = 50
# Canary granularity: basis points, so 0.5% is expressible.
_BUCKETS = 10_000


class BundleModelError(Exception):
    """Signed metadata does not describe bundles the way this module expects."""


@dataclass(frozen=True)
class BundleEntry:
    path: str
    version: int
    sha256: str
    length: int
    published_at: str
    channel: str | None
    canary_percent: float | None = None
    rolled_back_from: int | None = None

    def custom(self) -> dict[str, Any]:
        edge: dict[str, Any] = {"version": self.version, "published_at": self.published_at}
        if self.channel:
            edge["channel"] = self.channel
        if self.canary_percent is not None:
            # Canonical JSON (what TUF signs) has no floats: store basis points.
            edge["canary_basis_points"] = round(self.canary_percent * 100)
        if self.rolled_back_from is not None:
            edge["rolled_back_from"] = self.rolled_back_from
        return {"edge": edge}


def bundle_path(version: int) -> str:
    return f"{BUNDLE_DIR}/{version}.tar.gz"


def tenant_role(tenant_id: str) -> str:
    return f"tenant-{tenant_id}"


def tenant_pattern(tenant_id: str) -> str:
    return f"{TENANT_DIR}/{tenant_id}/*"


def valid_tenant_id(tenant_id: str) -> bool:
    return (
        0 < len(tenant_id) <= 63
        and tenant_id[0].isalnum()
        and all(c.isalnum() or c in "-_" for c in tenant_id)
        and tenant_id.isascii()
    )


def parse_entry(path: str, length: int, hashes: Mapping[str, str], custom: Any) -> BundleEntry:
    """One targets entry as a BundleEntry; BundleModelError names the path."""
    edge = custom.get("edge") if isinstance(custom, dict) else None
    if not isinstance(edge, dict):
        raise BundleModelError(f"{path}: custom.edge missing")
    version = edge.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleModelError(f"{path}: custom.edge.version must be a positive integer")
    if path != bundle_path(version):
        raise BundleModelError(f"{path}: path does not match version {version}")
    if "sha256" not in hashes:
        raise BundleModelError(f"{path}: no sha256 hash")
    channel = edge.get("channel")
    if channel not in (None, STABLE, CANARY):
        raise BundleModelError(f"{path}: custom.edge.channel {channel!r} is unknown")
    bp = edge.get("canary_basis_points")
    if channel == CANARY and (
        not isinstance(bp, int) or isinstance(bp, bool) or not 0 <= bp <= _BUCKETS
    ):
        raise BundleModelError(f"{path}: custom.edge.canary_basis_points must be within 0..10000")
    back = edge.get("rolled_back_from")
    return BundleEntry(
        path=path,
        version=version,
        sha256=hashes["sha256"],
        length=length,
        published_at=str(edge.get("published_at", "")),
        channel=channel,
        canary_percent=bp / 100 if channel == CANARY else None,  # type: ignore[operator]
        rolled_back_from=back if isinstance(back, int) else None,
    )


def canary_bucket(node_id: str) -> int:
    """A node's stable position in 0..9999: the same on every poll and every restart."""
    digest = hashlib.sha256(node_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS


def in_canary(node_id: str, percent: float) -> bool:
    return canary_bucket(node_id) < round(percent * _BUCKETS / 100)


@dataclass(frozen=True)
class Channels:
    stable: BundleEntry | None
    canary: BundleEntry | None
    history: tuple[BundleEntry, ...]

    def for_node(self, node_id: str) -> tuple[BundleEntry | None, bool]:
        """The bundle ``node_id`` should run, and whether it is a canary member."""
        if self.canary is not None and self.canary.canary_percent is not None:
            if in_canary(node_id, self.canary.canary_percent):
                return self.canary, True
        return self.stable, False

    def all(self) -> list[BundleEntry]:
        out = [e for e in (self.stable, self.canary) if e is not None]
        return sorted([*out, *self.history], key=lambda e: e.version)

    def next_version(self) -> int:
        return max((e.version for e in self.all()), default=0) + 1

    def by_version(self, version: int) -> BundleEntry | None:
        return next((e for e in self.all() if e.version == version), None)


def channels(entries: Iterable[BundleEntry]) -> Channels:
    stable = canary = None
    history: list[BundleEntry] = []
    for e in entries:
        if e.channel == STABLE:
            if stable is not None:
                raise BundleModelError(f"{e.path}: a second stable bundle")
            stable = e
        elif e.channel == CANARY:
            if canary is not None:
                raise BundleModelError(f"{e.path}: a second canary bundle")
            canary = e
        else:
            history.append(e)
    return Channels(stable, canary, tuple(sorted(history, key=lambda e: e.version)))
