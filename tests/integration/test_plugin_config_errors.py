"""Invalid plugin configs fail ``edge validate`` with the field path of each problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import plugins_jwt as K
from tests.support.procs import ROOT

UP = {"nodes": {"127.0.0.1:1": 1}}


def validate(tmp_path: Path, config: dict) -> tuple[int, list[str]]:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    p = subprocess.run(
        [sys.executable, "-m", "edge", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    prefix = f"{path}: "
    return p.returncode, [line.removeprefix(prefix) for line in p.stdout.splitlines()]


def test_every_bad_field_is_named(tmp_path: Path) -> None:
    plugins = {
        "uri-blocker": {"block_rules": ["ok", "(bad"]},
        "ip-restriction": {"whitelist": ["10.0.0.0/40"]},
        "cors": {"allow_origins": "*", "allow_credential": True},
        "proxy-rewrite": {"regex_uri": ["[", "/x"]},
        "limit-count": {"count": 1, "time_window": 1, "policy": "redis"},
        "response-rewrite": {"filters": [{"regex": "(", "replace": "x"}]},
        "real-ip": {"source": "http_x", "trusted_addresses": ["nope"]},
        "key-auth": {"unknown_field": 1},
    }
    routes = [
        {"id": f"r{i}", "uri": f"/{i}", "upstream": UP, "plugins": {name: conf}}
        for i, (name, conf) in enumerate(plugins.items())
    ]
    consumers = [
        {"username": "short", "plugins": {"jwt-auth": {"key": "a", "secret": "tooshort"}}},
        {
            "username": "badrsa",
            "plugins": {
                "jwt-auth": {
                    "key": "b",
                    "algorithm": "RS256",
                    "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
                }
            },
        },
    ]
    rc, lines = validate(tmp_path, {"routes": routes, "consumers": consumers})
    assert rc == 1
    text = "\n".join(lines)
    expected = [
        "routes[0].plugins.uri-blocker.block_rules[1]: invalid regex",
        "routes[1].plugins.ip-restriction.whitelist[0]: invalid IP address or CIDR",
        "routes[2].plugins.cors.allow_origins: you can not set '*'",
        "routes[3].plugins.proxy-rewrite.regex_uri[0]: invalid regex",
        "routes[4].plugins.limit-count.policy:",
        "routes[5].plugins.response-rewrite.filters[0].regex: invalid regex",
        "routes[6].plugins.real-ip.trusted_addresses[0]:",
        "routes[7].plugins.key-auth",
        "secret: consumer short: HS256 needs a secret of at least 32 bytes",
    ]
    for want in expected:
        assert want in text, f"{want!r} not in:\n{text}"
    assert "public_key" in text and "badrsa" in text
    assert "tooshort" not in text  # the secret itself is never printed


def test_good_plugins_validate(tmp_path: Path) -> None:
    consumers = [{"username": "ok", "plugins": {"jwt-auth": K.consumer_cred("ES256", "k")}}]
    routes = [
        {
            "id": "r",
            "uri": "/",
            "upstream": UP,
            "plugins": {"jwt-auth": {}, "limit-count": {"count": 1, "time_window": 1}},
        }
    ]
    rc, lines = validate(tmp_path, {"routes": routes, "consumers": consumers})
    assert rc == 0, lines
