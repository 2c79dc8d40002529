import pytest

from edge.plugins.real_ip import RealIp, split_host_port
from tests.support.plugins import build, config_error, request


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("1.2.3.4", ("1.2.3.4", None)),
        (" 1.2.3.4:8080 ", ("1.2.3.4", 8080)),
        ("::1", ("::1", None)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
        ("[::1]", ("::1", None)),
        ("1.2.3.4:99999", None),
        ("evil.example", None),
        ("1.2.3.4:x", None),
        ("[::1", None),
        ("", None),
    ],
)
def test_split_host_port(value: str, want: object) -> None:
    assert split_host_port(value) == want


def test_true_client_ip_header() -> None:
    p = build(RealIp, {"source": "http_true_client_ip"})
    req = request(headers={"True-Client-IP": "203.0.113.9"})
    p.rewrite(req)
    assert req.client_addr == "203.0.113.9"
    req = request(headers={"True-Client-IP": "not-an-ip"})
    p.rewrite(req)
    assert req.client_addr == "127.0.0.1"
    req = request()
    p.rewrite(req)
    assert req.client_addr == "127.0.0.1"


def test_xff_last_hop_and_port() -> None:
    p = build(RealIp, {"source": "http_x_forwarded_for"})
    req = request(
        headers=[("X-Forwarded-For", "1.1.1.1, 2.2.2.2"), ("X-Forwarded-For", "3.3.3.3:81")]
    )
    p.rewrite(req)
    assert (req.client_addr, req.client_port) == ("3.3.3.3", 81)


def test_trusted_addresses_and_recursive() -> None:
    conf = {"source": "http_x_forwarded_for", "trusted_addresses": ["127.0.0.0/8", "10.0.0.0/8"]}
    p = build(RealIp, conf)
    req = request(client="192.0.2.1", headers={"X-Forwarded-For": "5.5.5.5"})
    p.rewrite(req)
    assert req.client_addr == "192.0.2.1"  # peer not trusted: header ignored
    req = request(headers={"X-Forwarded-For": "5.5.5.5, 10.0.0.3"})
    p.rewrite(req)
    assert req.client_addr == "10.0.0.3"  # not recursive: last hop
    pr = build(RealIp, {**conf, "recursive": True})
    req = request(headers={"X-Forwarded-For": "6.6.6.6, 5.5.5.5, 10.0.0.3"})
    pr.rewrite(req)
    assert req.client_addr == "5.5.5.5"
    req = request(headers={"X-Forwarded-For": "10.0.0.9, 10.0.0.3"})
    pr.rewrite(req)
    assert req.client_addr == "10.0.0.9"  # all trusted: the first


def test_other_variable_and_errors() -> None:
    p = build(RealIp, {"source": "arg_realip"})
    req = request(uri="/?realip=198.51.100.1")
    p.rewrite(req)
    assert req.client_addr == "198.51.100.1"
    assert config_error(RealIp, {"source": "no_such_thing"}).startswith("source")
    assert config_error(RealIp, {"source": "http_x", "trusted_addresses": ["x"]}).startswith(
        "trusted_addresses[0]"
    )


def test_repeated_values_give_the_same_address_and_the_memory_is_bounded() -> None:
    p = build(RealIp, {"source": "http_x_forwarded_for"})
    for value, want in [
        ("198.51.100.1, 203.0.113.9:4000", ("203.0.113.9", 4000)),
        ("198.51.100.1, 203.0.113.9:4000", ("203.0.113.9", 4000)),  # remembered
        ("203.0.113.10", ("203.0.113.10", 40000)),
        ("garbage", ("127.0.0.1", 40000)),
        ("garbage", ("127.0.0.1", 40000)),  # a remembered non-address changes nothing
        ("2001:DB8:0::1", ("2001:db8::1", 40000)),
    ]:
        req = request(headers={"X-Forwarded-For": value})
        p.rewrite(req)
        assert (req.client_addr, req.client_port) == want, value
    for i in range(10_000):  # a client sending a new value each time
        p.rewrite(request(headers={"X-Forwarded-For": f"10.0.{i // 256}.{i % 256}"}))
    assert len(p.parsed) <= 4096
    long_chain = ", ".join(["198.51.100.1"] * 100) + ", 203.0.113.7"
    req = request(headers={"X-Forwarded-For": long_chain})
    p.rewrite(req)
    assert req.client_addr == "203.0.113.7" and long_chain not in p.parsed
