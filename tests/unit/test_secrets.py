"""Secret references: resolved on the node, failures name the field, never the value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import secrets
from edge.errors import ConfigError
from tests.support.storage import _server, s3_env

VALUE = "s3cr3t-v4lue-do-not-print"


def _problem(exc: pytest.ExceptionInfo[ConfigError]) -> tuple[str, str]:
    assert len(exc.value.problems) == 1
    field, message = exc.value.problems[0]
    assert VALUE not in message and VALUE not in str(exc.value)
    return field, message


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TEST_SECRET", VALUE)
    assert secrets.resolve("$env://EDGE_TEST_SECRET", "a.b") == VALUE
    monkeypatch.delenv("EDGE_TEST_SECRET")
    with pytest.raises(ConfigError) as e:
        secrets.resolve("$env://EDGE_TEST_SECRET", "upstreams[0].tls.client_key")
    assert _problem(e) == (
        "upstreams[0].tls.client_key",
        "secret $env://EDGE_TEST_SECRET: environment variable EDGE_TEST_SECRET is not set",
    )


def test_file(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(VALUE + "\n")
    assert secrets.resolve(f"$file://{f}", "x") == VALUE
    with pytest.raises(ConfigError) as e:
        secrets.resolve(f"$file://{tmp_path}/missing", "ssls[1].key")
    field, message = _problem(e)
    assert field == "ssls[1].key" and "missing" in message
    with pytest.raises(ConfigError, match="absolute"):
        secrets.resolve("$file://relative/path", "x")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (secrets.MAX_SECRET_SIZE + 1))
    with pytest.raises(ConfigError, match="larger"):
        secrets.resolve(f"$file://{big}", "x")


def test_gcp_failure_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials, and no look-up of the GCE metadata server (which is off loopback):
    # the client fails before any request. A live Secret Manager has no emulator to test
    # the success path against; it is the library's documented access_secret_version call.
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("CLOUDSDK_CONFIG", "/nonexistent")
    with pytest.raises(ConfigError) as e:
        secrets.resolve("$gcp-sm://projects/p/secrets/s/versions/1", "plugins.jwt.secret")
    field, message = _problem(e)
    assert field == "plugins.jwt.secret"
    assert "GCP Secret Manager: DefaultCredentialsError" in message
    with pytest.raises(ConfigError, match="invalid GCP"):
        secrets.resolve("$gcp-sm://nope", "x")


def test_aws_secrets_manager_against_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in s3_env(_server("s3")).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", _server("s3").endpoint)
    import boto3

    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="edge/test-json", SecretString=json.dumps({"password": VALUE}))
    sm.create_secret(Name="edge/test-plain", SecretString=VALUE)
    assert secrets.resolve("$aws-sm://edge/test-json#password", "x") == VALUE
    assert secrets.resolve("$aws-sm://edge/test-plain", "x") == VALUE
    with pytest.raises(ConfigError) as e:
        secrets.resolve("$aws-sm://edge/test-json#nokey", "a.b")
    assert _problem(e) == (
        "a.b",
        "secret $aws-sm://edge/test-json#nokey: no key 'nokey' in the secret",
    )
    with pytest.raises(ConfigError) as e:
        secrets.resolve("$aws-sm://edge/absent#k", "a.c")
    assert "ResourceNotFoundException" in _problem(e)[1]


def test_resolve_tree_collects_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_A", VALUE)
    tree = {
        "a": "$env://EDGE_A",
        "l": ["plain", "$env://EDGE_MISSING_1"],
        "n": {"k": "$env://EDGE_MISSING_2"},
    }
    with pytest.raises(ConfigError) as e:
        secrets.resolve_tree(tree)
    assert [p for p, _ in e.value.problems] == ["l[1]", "n.k"]
    assert VALUE not in str(e.value)
    monkeypatch.setenv("EDGE_MISSING_1", "1")
    monkeypatch.setenv("EDGE_MISSING_2", "2")
    assert secrets.resolve_tree(tree) == {"a": VALUE, "l": ["plain", "1"], "n": {"k": "2"}}
    assert secrets.is_reference("$env://X") and not secrets.is_reference("env://X")
