"""Upstream client certificates compile into one SSLContext per upstream; bad input is a
ConfigError naming ``upstreams[i].tls.client_cert`` / ``.client_key``."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from edge.errors import ConfigError
from edge.snapshot import compile_snapshot
from edge.upstream.model import UpstreamTlsError, compile_upstream
from tests.support.config import config

KEY_ENV = "EDGE_TEST_UPSTREAM_CLIENT_KEY"


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    cert = trustme.CA().issue_cert("edge-client")
    return cert.cert_chain_pems[0].bytes().decode(), cert.private_key_pem.bytes().decode()


def _compile(tls: dict[str, object]) -> object:
    raw = {
        "upstreams": [{"id": "u", "scheme": "https", "nodes": {"127.0.0.1:9443": 1}, "tls": tls}],
        "routes": [{"id": "r", "uri": "/", "upstream_id": "u"}],
    }
    return compile_snapshot(config(raw))


def _fields(e: ConfigError) -> set[str]:
    return {path for path, _ in e.problems}


def test_context_built_once_per_upstream(
    pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, pair[1])
    snap = _compile({"client_cert": pair[0], "client_key": f"$env://{KEY_ENV}"})
    up = snap.upstreams["u"]  # type: ignore[attr-defined]
    assert isinstance(up.tls.context, ssl.SSLContext)
    assert up.tls.context.verify_mode == ssl.CERT_REQUIRED
    assert up.tls.client_key == f"$env://{KEY_ENV}"  # only the reference is kept


def test_no_client_certificate_no_own_context() -> None:
    snap = _compile({"verify": False})
    assert snap.upstreams["u"].tls.context is None  # type: ignore[attr-defined]


def test_key_file_reference_and_verify_off(pair: tuple[str, str], tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text(pair[1])
    snap = _compile({"client_cert": pair[0], "client_key": f"$file://{key}", "verify": False})
    ctx = snap.upstreams["u"].tls.context  # type: ignore[attr-defined]
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_mismatched_pair(pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    other_key = trustme.CA().issue_cert("x").private_key_pem.bytes().decode()
    monkeypatch.setenv(KEY_ENV, other_key)
    with pytest.raises(ConfigError) as e:
        _compile({"client_cert": pair[0], "client_key": f"$env://{KEY_ENV}"})
    assert _fields(e.value) == {"upstreams[0].tls.client_cert"}
    assert "certificate and key do not match" in str(e.value)
    assert other_key.splitlines()[1] not in str(e.value)


def test_garbage_certificate(pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, pair[1])
    with pytest.raises(ConfigError) as e:
        _compile({"client_cert": "not pem", "client_key": f"$env://{KEY_ENV}"})
    assert _fields(e.value) == {"upstreams[0].tls.client_cert"}


@pytest.mark.parametrize(
    "key, reason",
    [
        ("$env://EDGE_TEST_SURELY_UNSET_VAR", "is not set"),
        ("-----BEGIN PRIVATE KEY-----", "secret reference"),
        ("plain-text", "expected a secret reference"),
        ("$file:///nonexistent/edge-test-key.pem", ""),
    ],
)
def test_unresolvable_key(pair: tuple[str, str], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        _compile({"client_cert": pair[0], "client_key": key})
    assert _fields(e.value) == {"upstreams[0].tls.client_key"}
    assert reason in str(e.value)


def test_half_a_pair(pair: tuple[str, str]) -> None:
    # validation reports it for the block; compile_upstream alone names the missing half
    for tls in ({"client_cert": pair[0]}, {"client_key": f"$env://{KEY_ENV}"}):
        with pytest.raises(ConfigError) as e:
            _compile(tls)
        assert e.value.problems == [("upstreams[0].tls", "client_cert and client_key go together")]
    spec = config({"upstreams": [{"id": "u", "nodes": {"h:1": 1}, "tls": {"client_cert": "c"}}]})
    with pytest.raises(UpstreamTlsError) as e2:
        compile_upstream(spec.upstreams[0], "u")
    assert e2.value.field == "tls.client_key"
