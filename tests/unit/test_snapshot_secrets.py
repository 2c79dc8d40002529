"""Secret references in plugin configs are resolved when a snapshot is compiled."""

from __future__ import annotations

import pytest

from edge.errors import ConfigError
from edge.snapshot import compile_snapshot
from tests.support.config import config

SECRET = "s3cr3t-value-that-is-long-enough-for-hs256!!"


def _raw(secret_ref: str) -> dict:
    return {
        "routes": [
            {
                "id": "r",
                "uri": "/*",
                "plugins": {"jwt-auth": {}},
                "upstream": {"nodes": [{"host": "127.0.0.1", "port": 9, "weight": 1}]},
            }
        ],
        "consumers": [
            {"username": "alice", "plugins": {"jwt-auth": {"key": "k", "secret": secret_ref}}}
        ],
    }


def test_env_reference_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_JWT_SECRET", SECRET)
    snap = compile_snapshot(config(_raw("$env://EDGE_TEST_JWT_SECRET")), base_dir=None)
    creds = snap.consumers["alice"].credentials["jwt-auth"]
    assert getattr(creds, "secret", None) == SECRET


def test_unresolvable_reference_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError) as e:
        compile_snapshot(config(_raw("$env://EDGE_TEST_MISSING")), base_dir=None)
    text = "\n".join(e.value.lines())
    assert "consumers[0].plugins.jwt-auth.secret" in text
    assert "EDGE_TEST_MISSING" in text
