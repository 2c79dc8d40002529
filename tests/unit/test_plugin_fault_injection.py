import pytest
import trio

from edge.plugins.fault_injection import FaultInjection
from tests.support.plugins import build, config_error, request


async def test_abort_with_body_headers_vars() -> None:
    conf = {
        "abort": {
            "http_status": 418,
            "body": "teapot $arg_name",
            "headers": {"X-F": "$arg_name"},
            "vars": [[["arg_name", "==", "jack"]]],
        }
    }
    p = build(FaultInjection, conf)
    r = await p.rewrite(request(uri="/?name=jack"))
    assert r.status == 418 and r.body == b"teapot jack" and r.headers.get("x-f") == "jack"
    assert await p.rewrite(request(uri="/?name=rose")) is None


async def test_percentage_zero_and_hundred() -> None:
    never = build(FaultInjection, {"abort": {"http_status": 500, "percentage": 0}})
    always = build(FaultInjection, {"abort": {"http_status": 500, "percentage": 100}})
    for _ in range(20):
        assert await never.rewrite(request()) is None
        assert (await always.rewrite(request())).status == 500


async def test_delay_then_abort() -> None:
    p = build(FaultInjection, {"delay": {"duration": 0.01}, "abort": {"http_status": 503}})
    with trio.fail_after(5):
        start = trio.current_time()
        r = await p.rewrite(request())
        assert trio.current_time() - start >= 0.01
    assert r.status == 503
    skip = build(FaultInjection, {"delay": {"duration": 10, "vars": [[["arg_x", "==", "1"]]]}})
    with trio.fail_after(5):
        assert await skip.rewrite(request()) is None


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({}, ""),
        ({"abort": {"http_status": 100}}, "abort.http_status"),
        ({"abort": {"http_status": 500, "percentage": 101}}, "abort.percentage"),
        ({"delay": {"duration": -1}}, "delay.duration"),
        ({"delay": {"duration": 1, "vars": [[["arg_x", "~~", "("]]]}}, "delay.vars[0]"),
    ],
)
def test_config_errors(conf: dict, field: str) -> None:
    assert config_error(FaultInjection, conf).startswith(field)
