import pytest

from edge.plugins.ip_restriction import CidrSet, IpRestriction
from tests.support.plugins import build, config_error, json_body, request


@pytest.mark.parametrize(
    ("addr", "inside"),
    [
        ("10.1.2.3", True),
        ("10.255.0.1", True),
        ("11.0.0.1", False),
        ("192.168.0.7", True),
        ("192.168.0.8", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("::ffff:10.0.0.1", True),
        ("not-an-ip", False),
        ("", False),
    ],
)
def test_cidr_set(addr: str, inside: bool) -> None:
    s = CidrSet(["10.0.0.0/8", "192.168.0.7", "2001:db8::/32"], "whitelist")
    assert (addr in s) is inside


def test_whitelist() -> None:
    p = build(IpRestriction, {"whitelist": ["127.0.0.1", "10.0.0.0/8"]})
    assert p.access(request(client="10.9.9.9")) is None
    r = p.access(request(client="8.8.8.8"))
    assert r.status == 403 and json_body(r) == {"message": "Your IP address is not allowed"}


def test_blacklist_with_message_and_404() -> None:
    p = build(IpRestriction, {"blacklist": ["::1"], "message": "go away", "response_code": 404})
    r = p.access(request(client="::1"))
    assert r.status == 404 and json_body(r) == {"message": "go away"}
    assert p.access(request(client="127.0.0.1")) is None


def test_config_errors() -> None:
    assert config_error(IpRestriction, {"whitelist": ["10.0.0.0/33"]}).startswith("whitelist[0]:")
    assert config_error(IpRestriction, {"blacklist": ["1.2.3.4", "x"]}).startswith("blacklist[1]:")
    assert "exactly one" in config_error(IpRestriction, {})
    assert "exactly one" in config_error(
        IpRestriction, {"whitelist": ["1.1.1.1"], "blacklist": ["::1"]}
    )
    assert config_error(IpRestriction, {"whitelist": ["1.1.1.1"], "response_code": 500}).startswith(
        "response_code"
    )
