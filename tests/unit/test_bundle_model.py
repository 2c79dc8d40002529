"""Which bundle a node runs: entries parsed from signed custom fields, canary buckets."""

from __future__ import annotations

import pytest

from edge.bundles.model import (
    BundleEntry,
    BundleModelError,
    canary_bucket,
    channels,
    in_canary,
    parse_entry,
    valid_tenant_id,
)

SHA = {"sha256": "ab" * 32}


def entry(version: int, channel: str | None, pct: float | None = None) -> BundleEntry:
    return BundleEntry(f"bundles/{version}.tar.gz", version, "ab" * 32, 10, "t", channel, pct)


def test_custom_roundtrip() -> None:
    for e in [entry(1, "stable"), entry(2, "canary", 12.5), entry(3, None)]:
        assert parse_entry(e.path, e.length, SHA, e.custom()) == e
    assert entry(2, "canary", 12.5).custom()["edge"]["canary_basis_points"] == 1250


@pytest.mark.parametrize(
    "path,custom,message",
    [
        ("bundles/1.tar.gz", None, "custom.edge missing"),
        ("bundles/1.tar.gz", {"edge": {"version": "1"}}, "positive integer"),
        ("bundles/1.tar.gz", {"edge": {"version": True}}, "positive integer"),
        ("bundles/2.tar.gz", {"edge": {"version": 1}}, "does not match version 1"),
        ("bundles/1.tar.gz", {"edge": {"version": 1, "channel": "beta"}}, "'beta' is unknown"),
        (
            "bundles/1.tar.gz",
            {"edge": {"version": 1, "channel": "canary", "canary_basis_points": 10001}},
            "within 0..10000",
        ),
        ("bundles/1.tar.gz", {"edge": {"version": 1, "channel": "canary"}}, "within 0..10000"),
    ],
)
def test_parse_entry_refuses(path: str, custom: object, message: str) -> None:
    with pytest.raises(BundleModelError, match=message):
        parse_entry(path, 10, SHA, custom)


def test_parse_entry_needs_sha256() -> None:
    with pytest.raises(BundleModelError, match="no sha256"):
        parse_entry("bundles/1.tar.gz", 1, {"sha512": "x"}, {"edge": {"version": 1}})


def test_canary_bucket_is_stable_and_spread() -> None:
    assert canary_bucket("node-a") == canary_bucket("node-a")
    buckets = [canary_bucket(f"node-{i}") for i in range(2000)]
    assert all(0 <= b < 10_000 for b in buckets)
    share = sum(in_canary(f"node-{i}", 10) for i in range(2000)) / 2000
    assert 0.05 < share < 0.15  # a property of sha256, not a timing
    assert not any(in_canary(f"node-{i}", 0) for i in range(200))
    assert all(in_canary(f"node-{i}", 100) for i in range(200))


def test_for_node_and_versions() -> None:
    ch = channels([entry(1, None), entry(3, "canary", 50), entry(2, "stable")])
    inside = next(f"n{i}" for i in range(999) if canary_bucket(f"n{i}") < 5000)
    outside = next(f"n{i}" for i in range(999) if canary_bucket(f"n{i}") >= 5000)
    assert ch.for_node(inside) == (ch.canary, True)
    assert ch.for_node(outside) == (ch.stable, False)
    assert ch.next_version() == 4
    assert ch.by_version(1) == entry(1, None)
    assert [e.version for e in ch.all()] == [1, 2, 3]
    assert channels([]).for_node("x") == (None, False)
    assert channels([]).next_version() == 1


def test_two_stable_bundles_refused() -> None:
    with pytest.raises(BundleModelError, match="second stable"):
        channels([entry(1, "stable"), entry(2, "stable")])


@pytest.mark.parametrize(
    "tid,ok",
    [
        ("acme", True),
        ("a-b_9", True),
        ("", False),
        ("-x", False),
        ("a/b", False),
        ("ä", False),
        ("x" * 64, False),
        ("..", False),
    ],
)
def test_tenant_ids(tid: str, ok: bool) -> None:
    assert valid_tenant_id(tid) is ok
