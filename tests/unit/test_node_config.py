from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.node_config import (
    DEFAULT_ADMIN,
    DEFAULT_LISTEN,
    ListenerConf,
    NodeConfig,
    check,
    load_node_config,
    merge_flags,
    parse_node_config,
    split_address,
)

FULL = """
listeners:
  - address: 0.0.0.0:9080
  - address: "[::]:9443"
    tls: true
    proxy_protocol: v2
    trusted_proxies: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]
    proxy_protocol_timeout: 2
admin: 127.0.0.1:9191
workers: 4
state_dir: /var/lib/edge
log_level: debug
bundle_source: s3://bundles/prod
trusted_root: /etc/edge/root.json
poll_interval: 10
node_id: node-a1
grace_period: 12.5
limits: {max_body_size: 1048576, header_timeout: 5}
access_log: /var/log/edge/access.log
"""


def test_full_file_decodes() -> None:
    node = parse_node_config(FULL, "node.yaml")
    assert [lst.address for lst in node.listeners] == ["0.0.0.0:9080", "[::]:9443"]
    second = node.listeners[1]
    assert (second.tls, second.proxy_protocol, second.proxy_protocol_timeout) == (True, "v2", 2)
    assert second.host == "::" and second.port == 9443
    assert node.workers == 4 and node.log_level == "debug" and node.grace_period == 12.5
    assert node.bundle_source == "s3://bundles/prod" and node.node_id == "node-a1"
    assert node.limits == {"max_body_size": 1048576, "header_timeout": 5}


def test_defaults() -> None:
    node = parse_node_config("", "node.yaml")
    assert node.admin == DEFAULT_ADMIN
    assert [lst.address for lst in node.effective_listeners()] == [DEFAULT_LISTEN]
    assert node.effective_workers() >= 1
    assert node.grace_period == 30.0 and node.access_log == "stderr"
    assert node.effective_node_id()


def test_yaml_off_is_off() -> None:
    # YAML 1.1 reads a bare `off` as false
    node = parse_node_config("listeners: [{address: '127.0.0.1:80', proxy_protocol: off}]")
    assert node.listeners[0].proxy_protocol == "off"


SHAPE_ERRORS = [
    ("workers: many", "workers: Expected `int | null`, got `str`"),
    ("nope: 1", "nope: unknown field"),
    ("listeners: [{address: '1.2.3.4:80', extra: 1}]", "listeners[0].extra: unknown field"),
    (
        "listeners: [{address: '1.2.3.4:80', proxy_protocol: v3}]",
        "listeners[0].proxy_protocol: 'v3' is not one of v1, v2, off",
    ),
    ("log_level: loud", "log_level: 'loud' is not one of debug, info, warning, error"),
    ("limits: {max_body_size: -1}", "limits.max_body_size: must be >= 0"),
    ("limits: {max_body: 1}", "limits.max_body: unknown field"),
    ("limits: {header_timeout: soon}", "limits.header_timeout: Expected `float`, got `str`"),
    ("- a\n- b", "expected a mapping of node settings"),
    ("a: [", "line 1: invalid YAML: expected the node content, but found '<stream end>'"),
]


@pytest.mark.parametrize(("text", "expected"), SHAPE_ERRORS)
def test_shape_errors_name_the_field(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_node_config(text, "node.yaml")
    assert info.value.lines() == [f"node.yaml: {expected}"]


def test_every_semantic_problem_reported_at_once() -> None:
    text = """
listeners:
  - address: nope
  - address: 0.0.0.0:80
    proxy_protocol: v1
    trusted_proxies: [10.0.0.0/8, not-a-cidr]
  - address: 0.0.0.0:81
    proxy_protocol: v2
    proxy_protocol_timeout: 0
  - address: 0.0.0.0:80
admin: 127.0.0.1:70000
workers: 0
poll_interval: 0
grace_period: -1
node_id: "bad id with spaces"
config: /etc/edge/edge.yaml
bundle_source: s3://b/p
"""
    with pytest.raises(ConfigError) as info:
        parse_node_config(text, "n.yaml")
    assert info.value.lines() == [
        "n.yaml: listeners[0].address: expected HOST:PORT (IPv6 as [ADDR]:PORT), got 'nope'",
        "n.yaml: listeners[1].trusted_proxies[1]: not an IP or CIDR: 'not-a-cidr'",
        "n.yaml: listeners[2].trusted_proxies: proxy_protocol v2 needs the load balancers' "
        "CIDRs here (a PROXY header is only accepted from trusted peers)",
        "n.yaml: listeners[2].proxy_protocol_timeout: must be > 0 and <= 60 seconds",
        "n.yaml: listeners[3].address: same address as listeners[1]",
        "n.yaml: admin: port 70000 out of range 1-65535",
        "n.yaml: workers: must be between 1 and 256",
        "n.yaml: poll_interval: must be > 0 seconds",
        "n.yaml: grace_period: must be >= 0 seconds",
        "n.yaml: node_id: 1-253 characters of letters, digits, '.', '_', ':', '-'",
        "n.yaml: bundle_source: config and bundle_source are mutually exclusive",
        "n.yaml: trusted_root: bundle_source needs the pinned root.json",
    ]


def test_listener_ip_restriction() -> None:
    node = parse_node_config(
        "listeners: [{address: '0.0.0.0:80', ip_restriction: {whitelist: [10.0.0.0/8]}}]"
    )
    ipr = node.listeners[0].ip_restriction
    assert ipr is not None and ipr.whitelist == ["10.0.0.0/8"] and ipr.blacklist is None
    with pytest.raises(ConfigError) as info:
        parse_node_config(
            "listeners:\n"
            "  - {address: '0.0.0.0:80', ip_restriction: {}}\n"
            "  - {address: '0.0.0.0:81', ip_restriction: {blacklist: [1.2.3.4, nope]}}\n",
            "n.yaml",
        )
    assert info.value.lines() == [
        "n.yaml: listeners[0].ip_restriction: give a whitelist or a blacklist",
        "n.yaml: listeners[1].ip_restriction.blacklist[1]: not an IP or CIDR: 'nope'",
    ]


def test_admin_must_not_share_a_listener_address() -> None:
    node = NodeConfig(listeners=[ListenerConf(address="127.0.0.1:9090")], config="/x")
    assert check(node) == [("admin", "same address as listeners[0]")]


def test_source_required_when_running() -> None:
    assert check(NodeConfig()) == [
        ("config", "a configuration (--config) or a bundle source is required")
    ]
    assert check(NodeConfig(config="/x")) == []


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [
        ("0.0.0.0:9080", "0.0.0.0", 9080),
        ("localhost:1", "localhost", 1),
        ("[::1]:65535", "::1", 65535),
    ],
)
def test_split_address(addr: str, host: str, port: int) -> None:
    assert split_address(addr) == (host, port)


@pytest.mark.parametrize(
    "addr", ["9080", ":9080", "::1:80", "[zz::1]:80", "h:0", "h:99999", "h: 1"]
)
def test_split_address_rejects(addr: str) -> None:
    with pytest.raises(ValueError):
        split_address(addr)


def test_relative_paths_anchor_at_the_file(tmp_path: Path) -> None:
    (tmp_path / "node.yaml").write_text(
        "config: conf/edge.yaml\nstate_dir: state\naccess_log: logs/a.log\n"
    )
    node = load_node_config(tmp_path / "node.yaml")
    assert node.config == str(tmp_path / "conf/edge.yaml")
    assert node.state_dir == str(tmp_path / "state")
    assert node.access_log == str(tmp_path / "logs/a.log")


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_node_config(tmp_path / "missing.yaml")
    missing = tmp_path / "missing.yaml"
    assert info.value.lines() == [f"{missing}: cannot read: No such file or directory"]


def test_huge_file_refused() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        parse_node_config("#" * (2 * 1024 * 1024))


def test_flags_override_the_file() -> None:
    node = parse_node_config(FULL)
    merged = merge_flags(
        node, listen=["127.0.0.1:1234"], workers=2, admin=None, log_level="warning"
    )
    assert merged.listeners == [ListenerConf(address="127.0.0.1:1234")]
    assert merged.workers == 2 and merged.log_level == "warning"
    assert merged.admin == "127.0.0.1:9191"  # not given: the file's value stays
    assert node.workers == 4  # the original is untouched
    with pytest.raises(TypeError):
        merge_flags(node, colour="blue")
