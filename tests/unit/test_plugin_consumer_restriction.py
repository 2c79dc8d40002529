import pytest

from edge.plugins.consumer_restriction import ConsumerRestriction
from tests.support.plugins import Consumer, Obj, build, config_error, json_body, request


def req_as(user: str | None, method: str = "GET", route: str = "r1", group: str | None = None):
    r = request(method, route=Obj(route))
    if user is not None:
        r.consumer = Consumer(user, group_id=group)
    return r


def test_whitelist_and_missing_consumer() -> None:
    p = build(ConsumerRestriction, {"whitelist": ["jack"]})
    assert p.access(req_as("jack")) is None
    r = p.access(req_as("rose"))
    assert r.status == 403 and json_body(r) == {"message": "The consumer_name is forbidden."}
    r = p.access(req_as(None))
    assert r.status == 401
    assert json_body(r) == {
        "message": "The request is rejected, please check the consumer_name for this request"
    }


def test_blacklist_custom_rejection() -> None:
    conf = {"blacklist": ["jack"], "rejected_code": 451, "rejected_msg": "no"}
    p = build(ConsumerRestriction, conf)
    r = p.access(req_as("jack"))
    assert r.status == 451 and json_body(r) == {"message": "no"}
    assert p.access(req_as("rose")) is None


def test_allowed_by_methods() -> None:
    conf = {"allowed_by_methods": [{"user": "jack", "methods": ["POST"]}]}
    p = build(ConsumerRestriction, conf)
    assert p.access(req_as("jack", "POST")) is None
    assert p.access(req_as("jack", "GET")).status == 403
    assert p.access(req_as("rose", "POST")).status == 403
    # a whitelisted consumer is not limited by methods
    both = build(ConsumerRestriction, {**conf, "whitelist": ["rose"]})
    assert both.access(req_as("rose", "DELETE")) is None


def test_other_types() -> None:
    p = build(ConsumerRestriction, {"type": "route_id", "whitelist": ["r1", 7]})
    assert p.access(req_as(None, route="r1")) is None
    assert p.access(req_as(None, route="7")) is None
    assert p.access(req_as(None, route="r2")).status == 403
    g = build(ConsumerRestriction, {"type": "consumer_group_id", "blacklist": ["bad"]})
    assert g.access(req_as("x", group="bad")).status == 403
    assert g.access(req_as("x", group="good")) is None
    s = build(ConsumerRestriction, {"type": "service_id", "whitelist": ["s1"]})
    r = s.access(req_as("x"))
    assert r.status == 401


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({}, ""),
        ({"type": "ip", "whitelist": ["x"]}, "type"),
        (
            {"allowed_by_methods": [{"user": "a", "methods": ["FETCH"]}]},
            "allowed_by_methods[0].methods[0]",
        ),
    ],
)
def test_config_errors(conf: dict, field: str) -> None:
    assert config_error(ConsumerRestriction, conf).startswith(field + ":")
