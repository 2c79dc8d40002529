"""The node's bundle sync: a trio task that keeps the node on the verified bundle.

Each poll, in a worker thread (python-tuf and the storage SDKs block): refresh TUF
metadata - ngclient fetches the timestamp and stops there when it has not changed -,
pick this node's bundle (stable, or the canary when the node's stable hash falls under
the canary percentage), and when it differs from what is active, download it with its
signed length as the bound, verify its hash, unpack it safely into a new directory,
hand the directory to ``install`` (the supervisor's validate-compile-swap), and only then
point last-known-good at it. Any failure leaves the current bundle serving and is
reported with its reason on /status and in metrics.

A node starting with a last-known-good bundle installs it before the first poll, so it
serves (and is ready) with storage down. A node with nothing verified stays not ready.
Metadata that has expired is never a reason to install; it turns the stale flag on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from tuf.api.metadata import Metadata
from tuf.api.serialization import DeserializationError

from cloud.store import ObjectStore, open_store
from edge.bundles.client import BundleClient, BundleRejected, Candidate, reason_for
from edge.bundles.state import Active, BundleState
from edge.errors import ConfigError

log = logging.getLogger("edge.bundles")

DEFAULT_POLL_INTERVAL = 30.0
# Failures that a retry cannot fix while the repository stays the same: a candidate
# rejected for one of these is not downloaded again until the repository changes.
_PERMANENT = {"config", "archive", "hash_mismatch", "too_large", "tenant"}

Install = Callable[[Path], None]
SetStatus = Callable[[str, Any], None]


def _fields(**kw: Any) -> dict[str, Any]:
    return {"fields": kw}


class _Metrics:
    def __init__(self) -> None:
        from edge import metrics

        g = metrics.gauge
        self.version = g("edge_bundle_version", "Active bundle version", mode="mostrecent")
        self.published = g(
            "edge_bundle_published_timestamp_seconds",
            "When the active bundle was published",
            mode="mostrecent",
        )
        self.last_ok = g(
            "edge_bundle_last_check_success_timestamp_seconds",
            "When the repository was last checked successfully",
            mode="mostrecent",
        )
        self.stale = g(
            "edge_bundle_stale", "1 when trusted metadata has expired", mode="mostrecent"
        )
        self.canary = g("edge_bundle_canary", "1 when this node runs a canary", mode="mostrecent")
        self.failures = g(
            "edge_bundle_consecutive_failures",
            "Consecutive failed checks, by reason",
            ["reason"],
            mode="mostrecent",
        )
        self.updates = metrics.counter(
            "edge_bundle_updates_total", "Bundle checks by result", ["result"]
        )


class BundleSync:
    def __init__(
        self,
        store_url: str,
        trusted_root: str | os.PathLike[str],
        state_dir: str | os.PathLike[str],
        node_id: str,
        poll_interval: float | None = DEFAULT_POLL_INTERVAL,
        *,
        store: ObjectStore | None = None,
    ) -> None:
        self.store_url = store_url
        self.node_id = node_id
        self.poll_interval = poll_interval or DEFAULT_POLL_INTERVAL
        self.state = BundleState(state_dir)
        self.trusted_root_path = Path(trusted_root)
        self._store = store
        self._client: BundleClient | None = None
        self.active: Active | None = None
        self.stale = False
        self.failures: dict[str, int] = {}
        self.last_error: str | None = None
        self.last_check_ok: float | None = None
        self.repository: dict[str, int] = {}  # metadata versions seen at the last check
        self._rejected: tuple[str, str] | None = None  # (fingerprint, reason)
        self._set_status: SetStatus = lambda key, value: None
        self._m: _Metrics | None = None

    # -- setup -------------------------------------------------------------------------

    def client(self) -> BundleClient:
        if self._client is None:
            store = self._store or open_store(self.store_url)
            root = self.trusted_root_path.read_bytes()
            self._client = BundleClient(store, self.state.metadata_dir, root)
        return self._client

    async def run(
        self,
        install: Install,
        set_status: SetStatus,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Install last-known-good, then poll forever."""
        await self.start(install, set_status)
        task_status.started()
        while True:
            try:
                await self.poll_once(install)
            except Exception as e:  # a bug or a full disk must not take the node down
                log.exception("bundle sync poll crashed")
                self._fail("internal", f"{type(e).__name__}: {e}", log_it=False)
            await trio.sleep(self.poll_interval)

    async def start(self, install: Install, set_status: SetStatus) -> None:
        self._set_status = set_status
        if self._m is None:
            self._m = _Metrics()
        await trio.to_thread.run_sync(self.state.prepare)
        self._publish_status()
        active = self.state.load()
        if active is None:
            log.info("no last-known-good bundle; waiting for the first verified one")
            return
        try:
            await trio.to_thread.run_sync(install, Path(active.dir))
        except ConfigError as e:
            self._fail("config", f"last-known-good bundle {active.version} rejected: {e}")
            return
        except Exception as e:
            log.exception("installing the last-known-good bundle crashed")
            self._fail("internal", f"last-known-good bundle {active.version}: {e}")
            return
        self.active = active
        self._publish_status()
        log.info(
            "serving last-known-good bundle",
            extra=_fields(version=active.version, sha256=active.sha256),
        )

    # -- one poll ----------------------------------------------------------------------

    async def poll_once(self, install: Install) -> str:
        """Check the repository once; return "installed", "unchanged", "empty" or the
        failure reason."""
        try:
            client = self.client()
        except OSError as e:
            return self._fail("state", f"{self.trusted_root_path}: {e.strerror or e}")
        except ValueError as e:  # a store URL open_store cannot use
            return self._fail("state", str(e))
        try:
            # Abandoning a check on shutdown is safe (ngclient writes its cache
            # atomically) and spares waiting out a storage timeout.
            updater, cand = await trio.to_thread.run_sync(
                client.check, self.node_id, cancellable=True
            )
        except Exception as e:  # every trust or transport failure, classified by reason_for
            return self._fail(reason_for(e), str(e))
        self.stale = False
        self.last_check_ok = time.time()
        if cand is not None:
            self.repository = dict(cand.metadata)
        if cand is None:
            self._ok()
            return "empty"
        if self.active is not None and self.active.fingerprint == cand.fingerprint:
            if (self.active.version, self.active.canary) != (
                cand.entry.version,
                cand.canary_member,
            ):
                # Same bytes under a new name (promote, or a rollback to what runs here):
                # nothing to install, but report what the repository now calls it.
                self.active = replace(
                    self.active,
                    version=cand.entry.version,
                    published_at=cand.entry.published_at,
                    canary=cand.canary_member,
                )
                await trio.to_thread.run_sync(self.state.save, self.active)
            self._ok()
            return "unchanged"
        if self._rejected and self._rejected[0] == cand.fingerprint:
            return self._fail(self._rejected[1], self.last_error or "rejected", log_it=False)
        return await self._update(client, updater, cand, install)

    async def _update(
        self, client: BundleClient, updater: Any, cand: Candidate, install: Install
    ) -> str:
        partial = self.state.new_dir(cand.entry.version, cand.fingerprint)
        try:
            await trio.to_thread.run_sync(client.fetch, updater, cand, partial)
            path = await trio.to_thread.run_sync(self.state.finish_dir, partial)
        except Exception as e:
            await trio.to_thread.run_sync(self.state.discard, partial)
            return self._reject(cand, reason_for(e), str(e))
        try:
            await trio.to_thread.run_sync(install, path)
        except ConfigError as e:
            await trio.to_thread.run_sync(self.state.discard, path)
            return self._reject(cand, "config", "; ".join(e.lines()) or str(e))
        except Exception as e:
            log.exception("installing a bundle crashed")
            await trio.to_thread.run_sync(self.state.discard, path)
            return self._fail("internal", f"bundle {cand.entry.version}: {type(e).__name__}: {e}")
        active = Active(
            dir=str(path),
            version=cand.entry.version,
            sha256=cand.entry.sha256,
            published_at=cand.entry.published_at,
            fingerprint=cand.fingerprint,
            canary=cand.canary_member,
            installed_at=time.time(),
        )
        await trio.to_thread.run_sync(self.state.save, active)
        previous = self.active
        self.active = active
        self._rejected = None
        self._ok(result="installed")
        log.info(
            "bundle installed",
            extra=_fields(
                version=active.version,
                sha256=active.sha256,
                canary=active.canary,
                previous=previous.version if previous else None,
            ),
        )
        return "installed"

    # -- reporting ---------------------------------------------------------------------

    def _reject(self, cand: Candidate, reason: str, message: str) -> str:
        if reason in _PERMANENT:
            self._rejected = (cand.fingerprint, reason)
        return self._fail(reason, f"bundle {cand.entry.version}: {message}")

    def _fail(self, reason: str, message: str, *, log_it: bool = True) -> str:
        self.failures[reason] = self.failures.get(reason, 0) + 1
        self.last_error = message
        self.stale = reason == "expired" or self._metadata_expired()
        if self._m is not None:
            self._m.updates.labels(result=reason).inc()
        if log_it:
            log.warning(
                "bundle check failed; the current bundle keeps serving",
                extra=_fields(
                    reason=reason,
                    error=message,
                    serving=self.active.version if self.active else None,
                ),
            )
        self._publish_status()
        return reason

    def _ok(self, result: str = "unchanged") -> None:
        self.failures.clear()
        self.last_error = None
        if self._m is not None:
            self._m.updates.labels(result=result).inc()
        self._publish_status()

    def _metadata_expired(self) -> bool:
        """Whether the trusted timestamp this node holds has expired (a freeze, or a
        repository nobody refreshes, or storage down for longer than its lifetime)."""
        try:
            data = (self.state.metadata_dir / "timestamp.json").read_bytes()
            md = Metadata.from_bytes(data)
        except (OSError, DeserializationError):
            return False
        return bool(md.signed.is_expired(datetime.now(UTC)))

    def status(self) -> dict[str, Any]:
        a = self.active
        return {
            "source": self.store_url,
            "node_id": self.node_id,
            "version": a.version if a else None,
            "sha256": a.sha256 if a else None,
            "published_at": a.published_at if a else None,
            "canary": a.canary if a else False,
            "stale": self.stale,
            "last_check_ok_at": _iso(self.last_check_ok),
            "consecutive_failures": dict(self.failures),
            "last_error": self.last_error,
            "repository": dict(self.repository),
        }

    def _publish_status(self) -> None:
        doc = self.status()
        for key, value in doc.items():
            self._set_status(f"bundle.{key}", value)
        m = self._m
        if m is None:
            return
        a = self.active
        m.version.set(a.version if a else 0)
        m.published.set(_epoch(a.published_at) if a else 0)
        m.last_ok.set(self.last_check_ok or 0)
        m.stale.set(1 if self.stale else 0)
        m.canary.set(1 if a and a.canary else 0)
        for reason in (
            "storage",
            "signature",
            "rollback",
            "expired",
            "metadata",
            "metadata_mismatch",
            "hash_mismatch",
            "too_large",
            "archive",
            "config",
            "tenant",
            "state",
            "internal",
        ):
            m.failures.labels(reason=reason).set(self.failures.get(reason, 0))


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


__all__ = ["BundleRejected", "BundleSync"]
