from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config import load
from edge.config.load import ConfigFileError, load_config
from edge.config.model import Config, Route, UpstreamSpec, decode_config
from edge.errors import ConfigError


def test_defaults_follow_apisix() -> None:
    cfg, problems = decode_config(
        {
            "routes": [
                {
                    "uri": "/",
                    "upstream": {"nodes": {"a:1": 1}, "checks": {"active": {}, "passive": {}}},
                }
            ],
            "tenants": [{"id": "t"}],
            "wasm_plugins": [{"name": "x", "file": "x.wasm", "sha256": "0" * 64}],
        }
    )
    assert problems == [] and cfg is not None
    r = cfg.routes[0]
    assert (r.priority, r.status, r.timeout, r.plugins) == (0, 1, None, None)
    u = r.upstream
    assert u is not None
    assert (u.type, u.hash_on, u.scheme, u.pass_host, u.retries) == (
        "roundrobin",
        "vars",
        "http",
        "pass",
        None,
    )
    assert (u.keepalive_pool.size, u.keepalive_pool.idle_timeout, u.keepalive_pool.requests) == (
        320,
        60,
        1000,
    )
    a = u.checks.active
    assert (a.type, a.timeout, a.concurrency, a.http_path) == ("http", 1, 10, "/")
    assert (a.healthy.interval, a.healthy.http_statuses, a.healthy.successes) == (1, [200, 302], 2)
    assert a.unhealthy.http_statuses == [429, 404, 500, 501, 502, 503, 504, 505]
    assert (a.unhealthy.http_failures, a.unhealthy.tcp_failures, a.unhealthy.timeouts) == (5, 2, 3)
    p = u.checks.passive
    assert p.healthy.http_statuses == list(range(200, 400)) and p.healthy.successes == 5
    assert p.unhealthy.http_statuses == [429, 500, 503]
    assert (p.unhealthy.http_failures, p.unhealthy.tcp_failures, p.unhealthy.timeouts) == (5, 2, 7)
    t = cfg.tenants[0].limits
    assert (t.memory_mb, t.cpu_ms_per_call, t.max_body_bytes) == (64, 10, 1048576)
    w = cfg.wasm_plugins[0]
    assert (w.failure_policy, w.priority, w.http_call_upstreams) == ("fail_closed", 0, [])


def test_route_timeout_defaults_each_to_60() -> None:
    cfg, _ = decode_config({"routes": [{"uri": "/", "timeout": {"read": 5}, "upstream_id": 1}]})
    assert cfg is not None and cfg.routes[0].timeout is not None
    t = cfg.routes[0].timeout
    assert (t.connect, t.send, t.read) == (60, 60, 5)


def test_both_node_forms() -> None:
    cfg, _ = decode_config(
        {
            "upstreams": [
                {"id": 1, "nodes": {"127.0.0.1:80": 2}},
                {"id": "b", "nodes": [{"host": "h", "port": 1, "weight": 3, "priority": -1}]},
            ]
        }
    )
    assert cfg is not None
    assert cfg.upstreams[0].nodes == {"127.0.0.1:80": 2}
    assert cfg.upstreams[1].nodes[0].priority == -1


def test_every_object_reports_its_first_problem() -> None:
    cfg, problems = decode_config(
        {
            "routes": [
                {"uri": "/", "bogus": 1},
                {"uri": "/", "upstream": {"type": "random"}},
                {"uri": "/", "priority": "high"},
                {"uri": "/", "status": 2},
            ],
            "consumers": [{"plugins": {}}],
            "upstreams": [{"nodes": [{"port": 1}]}],
            "sls": [],
        }
    )
    assert cfg is None
    paths = [p for p, _ in problems]
    assert paths == [
        "routes[0].bogus",
        "routes[1].upstream.type",
        "routes[2].priority",
        "routes[3].status",
        "consumers[0].username",
        "upstreams[0].nodes[0].host",
        "sls",
    ]
    assert dict(problems)["routes[0].bogus"] == "unknown field"
    assert dict(problems)["consumers[0].username"] == "required field missing"
    assert "Expected `int`" in dict(problems)["routes[2].priority"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "must be a mapping"),
        ({"routes": {"uri": "/"}}, "expected a list"),
        ({"version": [1]}, "expected a string"),
    ],
)
def test_top_level_shape(raw: object, message: str) -> None:
    cfg, problems = decode_config(raw)
    assert cfg is None and message in problems[0][1]


def test_empty_config_is_valid() -> None:
    assert decode_config(None)[0] == Config()
    assert decode_config({"version": 3})[0] == Config(version="3")


def test_struct_types() -> None:
    assert Route(uri="/").methods is None
    assert UpstreamSpec().nodes == []


# -- load ---------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_yaml_json_and_directory(tmp_path: Path) -> None:
    y = write(tmp_path, "c.yaml", "routes:\n  - uri: /\n    upstream_id: u\n")
    cfg, base = load_config(y)
    assert cfg.routes[0].uri == "/" and base == tmp_path
    j = write(tmp_path, "c.json", json.dumps({"routes": [{"uri": "/j", "upstream_id": "u"}]}))
    assert load_config(j)[0].routes[0].uri == "/j"
    d = tmp_path / "bundle"
    d.mkdir()
    write(d, "edge.yaml", "version: v7\n")
    cfg, base = load_config(d)
    assert cfg.version == "v7" and base == d


def test_load_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigFileError, match=r"no edge\.yaml"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("a.yaml", "routes: [\n", "YAML error at line"),
        ("a.yaml", "routes: []\nroutes: []\n", "duplicate key 'routes'"),
        ("a.yaml", "!!python/object:os.system {}\n", "YAML error"),
        ("a.json", '{"routes": [}', "JSON syntax error at line 1"),
        ("a.json", '{"version": "a", "version": "b"}', "duplicate key 'version'"),
        ("a.yaml", "routes:\n  - uri: /\n    foo: 1\n", "routes[0].foo: unknown field"),
    ],
)
def test_load_errors(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    p = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert not isinstance(e.value, ConfigFileError)
    assert e.value.file == str(p)
    assert any(fragment in line for line in e.value.lines()), e.value.lines()


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "m.yaml",
        "routes:\n  - &r {uri: /a, upstream_id: u, priority: 1}\n  - <<: *r\n    uri: /b\n",
    )
    cfg, _ = load_config(p)
    assert [r.uri for r in cfg.routes] == ["/a", "/b"]
    assert cfg.routes[1].priority == 1


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("routes: *a8")
    p = write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n")
    assert p.stat().st_size < 2000
    with pytest.raises(ConfigError, match="aliases are expanded"):
        load_config(p)


def test_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "MAX_CONFIG_BYTES", 100)
    p = write(tmp_path, "big.yaml", "version: '" + "x" * 200 + "'\n")
    with pytest.raises(ConfigError, match="larger than 100 bytes"):
        load_config(p)


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    p = write(
        tmp_path, "deep.json", '{"routes": [{"uri": "/", "vars": ' + "[" * 200 + "]" * 200 + "}]}"
    )
    with pytest.raises(ConfigError, match="nested deeper than 64"):
        load_config(p)
    p = write(tmp_path, "deeper.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="JSON nested too deeply"):
        load_config(p)


def test_deep_yaml_is_refused_before_composing(tmp_path: Path) -> None:
    # libyaml's C composer would overflow the C stack on this instead of raising
    p = write(tmp_path, "deep.yaml", "a: " + "[" * 200_000 + "]" * 200_000 + "\n")
    with pytest.raises(ConfigError, match="YAML nested deeper than 64 levels at line 1"):
        load_config(p)
    block = "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v: 1\n"
    p = write(tmp_path, "deep-block.yaml", block)
    with pytest.raises(ConfigError, match="YAML nested deeper"):
        load_config(p)
