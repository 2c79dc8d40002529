"""plugins_wasm/signed-request (AssemblyScript, own SHA-256/HMAC), on the production host.

The expected signatures come from Python's hashlib/hmac, so every accepted request also
checks the plugin's SHA-256 and HMAC (block boundaries, long keys, empty bodies).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from tests.support.wasm_build import plugin, run

SECRET = "tenant-acme-secret-0123456789"
CONF = {"keys": {"acme": SECRET}, "signed_headers": ["host", "content-type"]}


@pytest.fixture(scope="module")
def signed() -> Path:
    return plugin("signed-request")


def sign(
    method: str,
    path: str,
    ts: str,
    headers: dict[str, str],
    body: bytes,
    secret: bytes = SECRET.encode(),
    names: tuple[str, ...] = ("host", "content-type"),
) -> str:
    lines = [method, path, ts] + [f"{n}:{headers.get(n, '').strip()}" for n in names]
    text = "\n".join(lines) + "\n" + hashlib.sha256(body).hexdigest()
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def signed_run(
    module: Path,
    body: bytes = b"",
    *,
    conf: dict | None = None,
    method: str = "POST",
    path: str = "/orders?x=1",
    ts: int | None = None,
    key_id: str | None = "acme",
    secret: bytes = SECRET.encode(),
    tamper: bytes | None = None,
    **kw: object,
) -> dict:
    stamp = str(int(time.time()) if ts is None else ts)
    hs = {"host": "api.example", "content-type": "application/json"}
    sig = sign(method, path, stamp, hs, body, secret)
    headers = [
        ("Host", hs["host"]),
        ("Content-Type", hs["content-type"]),
        ("X-Edge-Timestamp", stamp),
        ("X-Edge-Signature", sig),
    ]
    if key_id is not None:
        headers.append(("X-Edge-Key-Id", key_id))
    return run(
        module,
        conf or CONF,
        method=method,
        path=path,
        headers=headers,
        body=body if tamper is None else tamper,
        **kw,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000])
def test_valid_signatures_pass_for_every_block_boundary(signed: Path, size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    r = signed_run(signed, body)
    assert r["trap"] is None and r["client"]["status"] == 200, r["logs"]
    assert r["upstream"] is not None


def test_long_and_hex_keys(signed: Path) -> None:
    long_key = "k" * 100  # longer than a SHA-256 block: hashed first (RFC 2104)
    conf = {"keys": {"acme": long_key}, "signed_headers": ["host", "content-type"]}
    assert signed_run(signed, b"x", conf=conf, secret=long_key.encode())["client"]["status"] == 200
    raw = bytes(range(32))
    conf = {
        "keys": {"acme": raw.hex()},
        "secret_encoding": "hex",
        "signed_headers": ["host", "content-type"],
    }
    assert signed_run(signed, b"x", conf=conf, secret=raw)["client"]["status"] == 200


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"tamper": b'{"amount": 1000}'}, "signature mismatch"),
        ({"secret": b"wrong-secret-0123456789"}, "signature mismatch"),
        ({"ts": int(time.time()) - 3600}, "clock skew"),
        ({"ts": int(time.time()) + 3600}, "clock skew"),
        ({"key_id": "other"}, "unknown key id"),
    ],
)
def test_bad_requests_get_401(signed: Path, kwargs: dict, reason: str) -> None:
    r = signed_run(signed, b'{"amount": 1}', **kwargs)
    assert r["client"]["status"] == 401 and r["upstream"] is None
    assert reason in r["client"]["body"]
    assert any(reason in m for _l, m in r["logs"])
    assert SECRET not in str(r)


def test_missing_and_malformed_headers(signed: Path) -> None:
    r = run(signed, CONF, path="/")
    assert r["client"]["status"] == 401 and "missing x-edge-signature" in r["client"]["body"]
    now = str(int(time.time()))
    r = run(
        signed,
        CONF,
        headers=[("X-Edge-Signature", "zz"), ("X-Edge-Timestamp", now), ("X-Edge-Key-Id", "acme")],
    )
    assert "malformed signature" in r["client"]["body"]
    r = run(
        signed,
        CONF,
        headers=[
            ("X-Edge-Signature", "00" * 32),
            ("X-Edge-Timestamp", "soon"),
            ("X-Edge-Key-Id", "acme"),
        ],
    )
    assert "malformed timestamp" in r["client"]["body"]


def test_signed_headers_are_covered(signed: Path) -> None:
    stamp = str(int(time.time()))
    hs = {"host": "api.example", "content-type": "application/json"}
    sig = sign("GET", "/", stamp, hs, b"")
    base = [("X-Edge-Timestamp", stamp), ("X-Edge-Signature", sig), ("X-Edge-Key-Id", "acme")]
    ok = run(
        signed, CONF, headers=[("Host", "api.example"), ("Content-Type", "application/json"), *base]
    )
    assert ok["client"]["status"] == 200
    changed = run(
        signed, CONF, headers=[("Host", "api.example"), ("Content-Type", "text/plain"), *base]
    )
    assert changed["client"]["status"] == 401


def test_single_key_needs_no_key_id_and_names_are_configurable(signed: Path) -> None:
    assert signed_run(signed, b"a", key_id=None)["client"]["status"] == 200
    two = {
        "keys": {"acme": SECRET, "beta": "another-secret-0123"},
        "signed_headers": ["host", "content-type"],
    }
    r = signed_run(signed, b"a", conf=two, key_id=None)
    assert r["client"]["status"] == 401 and "missing x-edge-key-id" in r["client"]["body"]
    conf = dict(
        CONF,
        signature_header="X-Sig",
        timestamp_header="X-Ts",
        key_id_header="X-Kid",
        clock_skew_seconds=5,
    )
    stamp = str(int(time.time()))
    hs = {"host": "api.example", "content-type": "application/json"}
    sig = sign("GET", "/p", stamp, hs, b"")
    r = run(
        signed,
        conf,
        path="/p",
        headers=[
            ("Host", "api.example"),
            ("Content-Type", "application/json"),
            ("X-Ts", stamp),
            ("X-Sig", sig),
            ("X-Kid", "acme"),
        ],
    )
    assert r["client"]["status"] == 200


def test_body_across_the_buffer_limit(signed: Path) -> None:
    conf = dict(CONF, max_body_bytes=1024)
    assert signed_run(signed, b"a" * 1024, conf=conf)["client"]["status"] == 200
    r = signed_run(signed, b"a" * 1025, conf=conf)
    assert r["client"]["status"] == 413
    r = signed_run(signed, b"a" * 5000, max_body_bytes=4096)  # the host's own limit
    assert r["client"]["status"] == 413


def test_metrics(signed: Path) -> None:
    signed_run(signed, b"", name="sr-metrics")
    r = signed_run(signed, b"", secret=b"nope-nope-nope-nope", name="sr-metrics")
    assert r["metrics"] == {"accepted": 1, "rejected": 1}


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ("{}", "'keys'"),
        ('{"keys": {}}', "'keys'"),
        ('{"keys": {"a": "short"}}', "'keys.a'"),
        ('{"keys": {"a": 5}}', "'keys.a'"),
        ('{"keys": {"a": "zz"}, "secret_encoding": "hex"}', "'keys.a'"),
        ('{"keys": {"a": "0123456789abcdef0"}, "secret_encoding": "b64"}', "'secret_encoding'"),
        ('{"keys": {"a": "0123456789abcdef0"}, "clock_skew_seconds": 0}', "'clock_skew_seconds'"),
        ('{"keys": {"a": "0123456789abcdef0"}, "signed_headers": "host"}', "'signed_headers'"),
        ('{"keys": {"a": "0123456789abcdef0"}, "signature_header": ""}', "'signature_header'"),
        ('{"keys": {"a": "0123456789abcdef0"}, "nope": 1}', "'nope': unknown field"),
        ('{"keys": ', "invalid JSON"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(
    signed: Path, conf: str, field: str
) -> None:
    r = run(signed, conf)
    assert not r["configured"]
    assert field in r["config_error"], r["config_error"]


def test_repeated_and_absent_signed_headers(signed: Path) -> None:
    # the plugin reads the header map once: the first of repeated values is signed, an
    # absent header signs as "", and host (carried as :authority) still counts
    names = ("host", "x-tenant", "x-absent")
    conf = dict(CONF, signed_headers=list(names))
    stamp = str(int(time.time()))
    sig = sign("GET", "/", stamp, {"host": "api.example", "x-tenant": "acme"}, b"", names=names)
    base = [("X-Edge-Timestamp", stamp), ("X-Edge-Signature", sig), ("X-Edge-Key-Id", "acme")]
    ok = run(
        signed,
        conf,
        headers=[("Host", "api.example"), ("X-Tenant", "acme"), ("X-Tenant", "other"), *base],
    )
    assert ok["client"]["status"] == 200, ok["client"]["body"]
    other_host = run(signed, conf, headers=[("Host", "api.other"), ("X-Tenant", "acme"), *base])
    assert other_host["client"]["status"] == 401
