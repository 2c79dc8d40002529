from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge.vars import UnknownVar, compile_template, compile_var, register_runtime_prefix
from tests.support.config import make_request


def req():
    r = make_request(
        "POST",
        "/p/a?x=1&x=2&y=&z=%20s",
        host="API.Example.com:8443",
        headers=[("X-Api-Key", "k"), ("Cookie", "sid=abc; theme=dark"), ("Content-Type", "t/x")],
        client="10.0.0.7",
        client_port=5555,
        tls=True,
    )
    r.conn.peer_addr = "192.0.2.1"
    return r


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("uri", "/p/a"),
        ("request_uri", "/p/a?x=1&x=2&y=&z=%20s"),
        ("host", "api.example.com"),
        ("remote_addr", "10.0.0.7"),
        ("remote_port", "5555"),
        ("realip_remote_addr", "192.0.2.1"),
        ("server_addr", "127.0.0.1"),
        ("server_port", "9080"),
        ("scheme", "https"),
        ("request_method", "POST"),
        ("args", "x=1&x=2&y=&z=%20s"),
        ("query_string", "x=1&x=2&y=&z=%20s"),
        ("arg_x", "1"),  # first value wins, as nginx
        ("arg_y", ""),
        ("arg_z", " s"),
        ("arg_missing", None),
        ("http_x_api_key", "k"),
        ("http_content_type", "t/x"),
        ("http_missing", None),
        ("cookie_sid", "abc"),
        ("cookie_theme", "dark"),
        ("cookie_nope", None),
        ("route_id", None),
        ("consumer_name", None),
        ("request_id", None),
        ("upstream_addr", None),
        ("status", None),
        ("server_protocol", "HTTP/1.1"),
    ],
)
def test_values(name: str, value: str | None) -> None:
    assert compile_var(name)(req()) == value


def test_route_service_consumer_and_runtime_fields() -> None:
    r = req()
    r.route = SimpleNamespace(id="r1", name="orders", service=SimpleNamespace(id="s1", name="svc"))
    r.consumer = SimpleNamespace(username="alice", group_id="gold")
    r.request_id = "rid"
    r.upstream_addr = "127.0.0.1:9081"
    r.status = 201
    assert compile_var("route_id")(r) == "r1"
    assert compile_var("route_name")(r) == "orders"
    assert compile_var("service_id")(r) == "s1"
    assert compile_var("consumer_name")(r) == "alice"
    assert compile_var("consumer_group_id")(r) == "gold"
    assert compile_var("request_id")(r) == "rid"
    assert compile_var("upstream_addr")(r) == "127.0.0.1:9081"
    assert compile_var("status")(r) == "201"


def test_proxy_protocol_tlvs_and_runtime_vars() -> None:
    r = req()
    r.conn.proxy_tlvs["aws_vpce_id"] = "vpce-1"
    assert compile_var("proxy_protocol_tlv_aws_vpce_id")(r) == "vpce-1"
    r.vars["proxy_protocol_tlv_aws_vpce_id"] = "override"
    assert compile_var("proxy_protocol_tlv_aws_vpce_id")(r) == "override"
    r.vars["jwt_claim_sub"] = "user-1"
    assert compile_var("jwt_claim_sub")(r) == "user-1"
    assert compile_var("jwt_claim_iss")(r) is None
    with pytest.raises(UnknownVar):
        compile_var("myplugin_x")
    register_runtime_prefix("myplugin_")
    r.vars["myplugin_x"] = 5
    assert compile_var("myplugin_x")(r) == "5"


@pytest.mark.parametrize(
    "name", ["", "remote", "bogus_var", "http_", "arg_", "http_a b", "cookie_a;b"]
)
def test_unknown_names_fail_at_compile_time(name: str) -> None:
    with pytest.raises(UnknownVar):
        compile_var(name)


def test_template() -> None:
    r = req()
    assert compile_template("$remote_addr-${http_x_api_key}:$arg_none|")(r) == "10.0.0.7-k:|"
    assert compile_template("constant")(r) == "constant"
    assert compile_template("$arg_none")(r) == ""
    with pytest.raises(UnknownVar):
        compile_template("$nope")
