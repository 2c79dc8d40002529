from __future__ import annotations

from typing import Any

import pytest

from edge.config.validate import validate_config
from tests.support.config import config, up

KNOWN = frozenset({"cors", "key-auth", "limit-count"})


def problems(raw: dict[str, Any], known: frozenset[str] | None = KNOWN) -> dict[str, str]:
    out = validate_config(config(raw), known)
    d = dict(out)
    assert len(d) == len(out), f"one problem per path expected: {out}"
    return d


def test_valid_config_has_no_problems() -> None:
    assert (
        problems(
            {
                "upstreams": [{"id": "u", "nodes": {"127.0.0.1:80": 1}}],
                "services": [{"id": "s", "upstream_id": "u", "hosts": ["*.example.com"]}],
                "plugin_configs": [{"id": 1, "plugins": {"cors": {}}}],
                "consumer_groups": [{"id": "g", "plugins": {"limit-count": {}}}],
                "consumers": [
                    {"username": "al-ice_1", "group_id": "g", "plugins": {"key-auth": {}}}
                ],
                "tenants": [{"id": "t"}],
                "wasm_plugins": [
                    {
                        "name": "acme/pii",
                        "file": "plugins/pii.wasm",
                        "sha256": "a" * 64,
                        "tenant": "t",
                        "http_call_upstreams": ["u"],
                    }
                ],
                "routes": [
                    {"id": 1, "uri": "/", "service_id": "s", "plugin_config_id": 1},
                    {
                        "id": 2,
                        "uris": ["/a/*"],
                        "hosts": ["a.com"],
                        "upstream_id": "u",
                        "plugins": {"acme/pii": {}},
                        "vars": [["arg_a", "==", "1"]],
                        "remote_addrs": ["10.0.0.0/8"],
                        "methods": ["get"],
                    },
                    {"id": 3, "uri": "/p", "plugins": {"cors": {}}},
                ],
                "ssls": [{"snis": ["*.a.com"], "cert": "PEM", "key": "$env://TLS_KEY"}],
            }
        )
        == {}
    )


def test_dangling_references_all_reported() -> None:
    p = problems(
        {
            "routes": [
                {"uri": "/a", "upstream_id": "payments"},
                {"uri": "/b", "service_id": 9, "plugin_config_id": "pc"},
            ],
            "services": [{"id": "s", "upstream_id": "nope"}],
            "consumers": [{"username": "c", "group_id": "gold"}],
            "wasm_plugins": [
                {
                    "name": "w",
                    "file": "w.wasm",
                    "sha256": "b" * 64,
                    "tenant": "acme",
                    "http_call_upstreams": ["auth"],
                }
            ],
        }
    )
    assert p == {
        "routes[0].upstream_id": "unknown upstream 'payments'",
        "routes[1].service_id": "unknown service '9'",
        "routes[1].plugin_config_id": "unknown plugin_config 'pc'",
        "services[0].upstream_id": "unknown upstream 'nope'",
        "consumers[0].group_id": "unknown consumer group 'gold'",
        "wasm_plugins[0].tenant": "unknown tenant 'acme'",
        "wasm_plugins[0].http_call_upstreams[0]": "unknown upstream 'auth'",
    }


def test_ids_compare_as_strings() -> None:
    assert (
        problems(
            {
                "upstreams": [{"id": 7, "nodes": {"a:1": 1}}],
                "routes": [{"uri": "/", "upstream_id": "7"}],
            }
        )
        == {}
    )


def test_duplicates() -> None:
    p = problems(
        {
            "upstreams": [{"id": "u", "nodes": {"a:1": 1}}, {"id": "u", "nodes": {"a:1": 1}}],
            "routes": [
                {"id": 1, "uri": "/a", "upstream_id": "u"},
                {"id": "1", "uri": "/b", "upstream_id": "u"},
            ],
            "consumers": [{"username": "x"}, {"username": "x"}],
            "wasm_plugins": [
                {"name": "w", "file": "a.wasm", "sha256": "c" * 64},
                {"name": "w", "file": "b.wasm", "sha256": "c" * 64},
                {"name": "cors", "file": "c.wasm", "sha256": "c" * 64},
            ],
        }
    )
    assert p["upstreams[1].id"] == "duplicate id 'u' (also upstreams[0])"
    assert p["routes[1].id"] == "duplicate id '1' (also routes[0])"
    assert p["consumers[1].username"] == "duplicate username 'x' (also consumers[0])"
    assert p["wasm_plugins[1].name"] == "duplicate name 'w' (also wasm_plugins[0])"
    assert p["wasm_plugins[2].name"] == "'cors' is the name of a built-in plugin"


def test_identical_routes_conflict_but_differences_do_not() -> None:
    base = {"uri": "/x", "upstream": up(), "methods": ["GET"]}
    p = problems(
        {
            "routes": [
                base,
                {**base, "methods": ["get"]},  # same match conditions: error
                {**base, "priority": 1},
                {**base, "vars": [["arg_a", "==", "1"]]},
                {**base, "hosts": ["a.com"]},
                {**base, "status": 0},
            ]
        }
    )
    assert list(p) == ["routes[1]"]
    assert (
        "same hosts, uris, methods, vars, remote_addrs and priority as routes[0]" in p["routes[1]"]
    )


def test_route_shape_problems() -> None:
    p = problems(
        {
            "routes": [
                {"upstream": up()},
                {"uri": "/a", "uris": ["/b"], "upstream": up()},
                {"uri": "a", "upstream": up()},
                {"uri": "/a/*/b", "upstream": up()},
                {"uri": "/" + "a" * 5000, "upstream": up()},
                {"uri": "/h", "host": "a.com", "hosts": ["b.com"], "upstream": up()},
                {"uri": "/h2", "hosts": ["a..com", "*", "a.*.com", "-a.com"], "upstream": up()},
                {"uri": "/m", "methods": ["GET", "FETCH"], "upstream": up()},
                {"uri": "/r", "remote_addrs": ["10.0.0.0/33", "x"], "upstream": up()},
                {"uri": "/v", "vars": [["arg_a", "~~", "(("], ["nope", "==", 1]], "upstream": up()},
                {"uri": "/n"},
                {"uri": "/u", "upstream": up(), "upstream_id": "u2"},
                {"uri": "/t", "upstream": up(), "timeout": {"connect": 0, "read": -1}},
                {"uri": "/p", "plugins": {"no-such": {}, "cors": {}}},
            ],
            "upstreams": [{"id": "u2", "nodes": {"a:1": 1}}],
        }
    )
    assert p["routes[0].uri"] == "a route needs uri or uris"
    assert p["routes[1]"] == "set uri or uris, not both"
    assert "must start with '/'" in p["routes[2].uri"]
    assert "only allowed at the end" in p["routes[3].uri"]
    assert "longer than 4096" in p["routes[4].uri"]
    assert p["routes[5]"] == "set host or hosts, not both"
    for j in range(4):
        assert "invalid host" in p[f"routes[6].hosts[{j}]"]
    assert p["routes[7].methods[1]"] == "unknown method 'FETCH'"
    assert "invalid IP address or CIDR" in p["routes[8].remote_addrs[0]"]
    assert "invalid IP address or CIDR" in p["routes[8].remote_addrs[1]"]
    assert "bad regex" in p["routes[9].vars[0]"]
    assert "routes[9].vars[1]" not in p  # first problem of an expression only
    assert "needs at least one of plugins" in p["routes[10]"]
    assert p["routes[11]"] == "set upstream or upstream_id, not both"
    assert p["routes[12].timeout.connect"] == "must be > 0 seconds"
    assert p["routes[12].timeout.read"] == "must be > 0 seconds"
    assert p["routes[13].plugins.no-such"] == "unknown plugin 'no-such'"
    assert len(p) == 19


def test_upstream_problems() -> None:
    p = problems(
        {
            "upstreams": [
                {"id": 0, "nodes": []},
                {"id": 1, "nodes": {"a:0": 1, "b:70000": 1, "c:x": 1}},
                {
                    "id": 2,
                    "nodes": [{"host": "a", "port": 0, "weight": -1}, {"host": "", "port": 1}],
                },
                {"id": 3, "nodes": {"a:1": 0}},
                {
                    "id": 4,
                    "nodes": {"a:1": 1},
                    "retries": -1,
                    "retry_timeout": -1,
                    "keepalive_pool": {"size": -1, "requests": 0},
                    "pass_host": "rewrite",
                },
                {"id": 5, "nodes": {"a:1": 1}, "type": "chash", "hash_on": "header"},
                {"id": 6, "nodes": {"a:1": 1}, "type": "chash", "key": "not_a_var"},
                {"id": 7, "nodes": {"a:1": 1}, "tls": {"client_cert": "c"}},
                {
                    "id": 8,
                    "nodes": {"a:1": 1},
                    "tls": {"client_cert": "c", "client_key": "-----BEGIN RSA PRIVATE KEY-----"},
                },
                {"id": 9, "nodes": {"a:1": 1}, "checks": {"passive": {}}},
                {
                    "id": 10,
                    "nodes": {"a:1": 1},
                    "checks": {
                        "active": {
                            "timeout": 0,
                            "concurrency": 0,
                            "http_path": "x",
                            "port": 0,
                            "req_headers": ["bad"],
                            "healthy": {"interval": 0, "http_statuses": [100], "successes": 300},
                            "unhealthy": {"http_failures": -1},
                        }
                    },
                },
                {"id": 11, "type": "chash", "hash_on": "consumer", "nodes": {"a:1": 1}},
            ]
        }
    )
    assert p["upstreams[0].nodes"] == "an upstream needs at least one node"
    assert p["upstreams[1].nodes"] == "bad port in node address 'c:x'"
    assert p["upstreams[2].nodes[0].port"] == "port 0 out of range 1-65535"
    assert p["upstreams[2].nodes[0].weight"] == "weight must be >= 0"
    assert p["upstreams[2].nodes[1].host"] == "empty host"
    assert "weight 0" in p["upstreams[3].nodes"]
    assert p["upstreams[4].retries"] == "must be >= 0"
    assert p["upstreams[4].retry_timeout"] == "must be >= 0"
    assert p["upstreams[4].keepalive_pool.size"] == "must be >= 0"
    assert p["upstreams[4].keepalive_pool.requests"] == "must be >= 1"
    assert p["upstreams[4].upstream_host"] == "required when pass_host is 'rewrite'"
    assert p["upstreams[5].key"] == "hash_on 'header' needs a key"
    assert p["upstreams[6].key"] == "unknown variable 'not_a_var'"
    assert p["upstreams[7].tls"] == "client_cert and client_key go together"
    assert "PEM private key in clear" in p["upstreams[8].tls.client_key"]
    assert "passive checks need active checks" in p["upstreams[9].checks.passive"]
    a = "upstreams[10].checks.active"
    for field in (
        "timeout",
        "concurrency",
        "http_path",
        "port",
        "req_headers[0]",
        "healthy.interval",
        "healthy.http_statuses[0]",
        "healthy.successes",
        "unhealthy.http_failures",
    ):
        assert f"{a}.{field}" in p, field
    assert not any(k.startswith("upstreams[11]") for k in p)


def test_upstream_ports_in_dict_form() -> None:
    p = problems({"upstreams": [{"id": 1, "nodes": {"a:0": 1, "b:70000": 1}}]})
    assert p == {
        "upstreams[0].nodes[0].port": "port 0 out of range 1-65535",
        "upstreams[0].nodes[1].port": "port 70000 out of range 1-65535",
    }


@pytest.mark.parametrize(
    ("ssl", "path", "fragment"),
    [
        (
            {"snis": ["a.com"], "cert": "c", "key": "-----BEGIN PRIVATE KEY-----\nMII"},
            "ssls[0].key",
            "in clear",
        ),
        (
            {"snis": ["a.com"], "cert": "c", "key": "-----BEGIN EC PRIVATE KEY-----"},
            "ssls[0].key",
            "in clear",
        ),
        ({"snis": ["a.com"], "cert": "c", "key": "plain"}, "ssls[0].key", "secret reference"),
        ({"snis": ["a.com"], "cert": "c", "key": "$env://"}, "ssls[0].key", "secret reference"),
        ({"snis": ["a.com"], "cert": "c"}, "ssls[0].key", "required"),
        ({"snis": [], "cert": "c", "key": "$env://K"}, "ssls[0].snis", "at least one"),
        ({"snis": ["a.com"], "key": "$env://K"}, "ssls[0].cert", "required"),
        (
            {"snis": ["a.com"], "cert": "c", "key": "$file:///k", "certs": ["c2"]},
            "ssls[0]",
            "same length",
        ),
        (
            {"snis": ["a.com"], "cert": "c", "key": "$file:///k", "certs": ["c"], "keys": ["k"]},
            "ssls[0].keys[0]",
            "secret reference",
        ),
        (
            {"snis": ["a.com"], "cert": "c", "key": "$env://K", "client": {"ca": "x", "depth": 99}},
            "ssls[0].client.depth",
            "between 0 and 16",
        ),
    ],
)
def test_ssl(ssl: dict[str, Any], path: str, fragment: str) -> None:
    p = problems({"ssls": [ssl]})
    assert fragment in p[path]


def test_consumers_tenants_wasm() -> None:
    p = problems(
        {
            "consumers": [{"username": "bad name!"}, {"username": "ok", "plugins": {"x-auth": {}}}],
            "tenants": [{"id": "t", "limits": {"memory_mb": 0, "cpu_ms_per_call": -1}}],
            "wasm_plugins": [
                {"name": "a b", "file": "/abs.wasm", "sha256": "xyz", "limits": {"memory_mb": 0}},
                {"name": "c", "file": "../up.wasm", "sha256": "A" * 64},
            ],
            "global_rules": [{"plugins": {"nope": {}}}],
            "plugin_configs": [{"id": 1, "plugins": {"nope2": {}}}],
            "consumer_groups": [{"id": 1, "plugins": {"nope3": {}}}],
        }
    )
    assert "invalid username" in p["consumers[0].username"]
    assert p["consumers[1].plugins.x-auth"] == "unknown plugin 'x-auth'"
    assert p["tenants[0].limits.memory_mb"] == "must be > 0"
    assert p["tenants[0].limits.cpu_ms_per_call"] == "must be > 0"
    assert "without spaces" in p["wasm_plugins[0].name"]
    assert "relative path" in p["wasm_plugins[0].file"]
    assert "relative path" in p["wasm_plugins[1].file"]
    assert p["wasm_plugins[0].sha256"] == "must be 64 hex digits"
    assert "wasm_plugins[1].sha256" not in p  # upper-case hex is fine
    assert p["wasm_plugins[0].limits.memory_mb"] == "must be > 0"
    assert p["global_rules[0].plugins.nope"] == "unknown plugin 'nope'"
    assert p["plugin_configs[0].plugins.nope2"] == "unknown plugin 'nope2'"
    assert p["consumer_groups[0].plugins.nope3"] == "unknown plugin 'nope3'"


def test_plugin_name_check_can_be_skipped() -> None:
    assert problems({"routes": [{"uri": "/", "plugins": {"anything": {}}}]}, known=None) == {}
