"""Secret references in configuration values, resolved on the node at compile time.

Bundles carry references, never secrets: a config value ``$env://NAME``,
``$file:///abs/path``, ``$aws-sm://secret-name#json-key`` (AWS Secrets Manager through
boto3's standard credential chain) or ``$gcp-sm://projects/P/secrets/S/versions/V`` (GCP
Secret Manager) is replaced by the secret when the node compiles the bundle. A reference
that cannot be resolved fails the bundle with the field path and the reference's
*source* (variable name, file path, secret name) - never the value, nor any part of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from edge.errors import ConfigError

ENV = "$env://"
FILE = "$file://"
AWS_SM = "$aws-sm://"
GCP_SM = "$gcp-sm://"
PREFIXES = (ENV, FILE, AWS_SM, GCP_SM)
# A secret is a key, a token or a certificate chain; anything bigger is a mistake.
MAX_SECRET_SIZE = 1024 * 1024


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIXES)


def _fail(field: str, message: str) -> ConfigError:
    return ConfigError([(field, message)])


def _env(ref: str, field: str) -> str:
    name = ref[len(ENV) :]
    if not name or "=" in name or "\x00" in name:
        raise _fail(field, f"invalid environment secret reference {ref!r}")
    value = os.environ.get(name)
    if value is None:
        raise _fail(field, f"secret {ref}: environment variable {name} is not set")
    return value


def _file(ref: str, field: str) -> str:
    path = ref[len(FILE) :]
    if not path.startswith("/"):
        raise _fail(field, f"secret {ref}: use $file:///absolute/path")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_SIZE + 1)
    except OSError as e:
        raise _fail(field, f"secret {ref}: cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_SECRET_SIZE:
        raise _fail(field, f"secret {ref}: {path} is larger than {MAX_SECRET_SIZE} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _fail(field, f"secret {ref}: {path} is not UTF-8 text") from None
    # Files written by editors and `echo` end in a newline that is not part of the secret.
    return text.removesuffix("\n").removesuffix("\r")


def _aws_sm(ref: str, field: str) -> str:
    name, _, key = ref[len(AWS_SM) :].partition("#")
    if not name:
        raise _fail(field, f"invalid AWS secret reference {ref!r} (use $aws-sm://name#key)")
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    try:
        client = boto3.client(
            "secretsmanager",
            config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3}),
        )
        resp = client.get_secret_value(SecretId=name)
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        raise _fail(field, f"secret {ref}: AWS Secrets Manager: {code}") from None
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        raise _fail(field, f"secret {ref}: AWS Secrets Manager: {type(e).__name__}") from None
    text = resp.get("SecretString")
    if text is None:
        raise _fail(field, f"secret {ref}: binary secrets are not supported")
    return _json_key(ref, field, text, key)


def _gcp_sm(ref: str, field: str) -> str:
    name = ref[len(GCP_SM) :]
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != "projects" or parts[2] != "secrets" or parts[4] != "versions":
        raise _fail(
            field,
            f"invalid GCP secret reference {ref!r} (use $gcp-sm://projects/P/secrets/S/versions/V)",
        )
    from google.cloud import secretmanager  # type: ignore[attr-defined]

    try:
        client = secretmanager.SecretManagerServiceClient()
        resp = client.access_secret_version(name=name, timeout=10)
        return str(resp.payload.data.decode())
    except Exception as e:  # any failure (auth, network, not found) fails the field, not the node
        raise _fail(field, f"secret {ref}: GCP Secret Manager: {type(e).__name__}") from None


def _json_key(ref: str, field: str, text: str, key: str) -> str:
    if not key:
        return text
    try:
        doc = json.loads(text)
    except ValueError:
        raise _fail(field, f"secret {ref}: the secret is not a JSON object") from None
    if not isinstance(doc, dict) or key not in doc:
        raise _fail(field, f"secret {ref}: no key {key!r} in the secret")
    value = doc[key]
    return value if isinstance(value, str) else json.dumps(value)


_RESOLVERS: dict[str, Callable[[str, str], str]] = {
    ENV: _env,
    FILE: _file,
    AWS_SM: _aws_sm,
    GCP_SM: _gcp_sm,
}


def resolve(ref: str, field: str) -> str:
    """The secret ``ref`` names; ConfigError ``(field, reason)`` when it cannot be had."""
    for prefix, fn in _RESOLVERS.items():
        if ref.startswith(prefix):
            return fn(ref, field)
    raise _fail(field, "not a secret reference ($env://, $file://, $aws-sm://, $gcp-sm://)")


def resolve_tree(obj: Any, path: str = "") -> Any:
    """A copy of ``obj`` with every reference string resolved; every failure is collected
    into one ConfigError so the operator sees all missing secrets at once."""
    problems: list[tuple[str, str]] = []

    def walk(o: Any, p: str) -> Any:
        if isinstance(o, dict):
            return {k: walk(v, f"{p}.{k}" if p else str(k)) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v, f"{p}[{i}]") for i, v in enumerate(o)]
        if is_reference(o):
            try:
                return resolve(o, p)
            except ConfigError as e:
                problems.extend(e.problems)
                return None
        return o

    out = walk(obj, path)
    if problems:
        raise ConfigError(problems)
    return out
