from __future__ import annotations

import pytest

from edge.expr import ExprError, compile_expr, to_number
from tests.support.config import make_request

R = make_request(
    "GET",
    "/a?age=20&name=Bob&tag=x&neg=-1.5&big=1e3&junk=1_0",
    headers=[("User-Agent", "Mozilla/5.0 Firefox"), ("X-Tags", "a,b")],
    client="10.1.2.3",
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ([], True),
        (None, True),
        ([["arg_name", "==", "Bob"]], True),
        ([["arg_name", "==", "bob"]], False),
        ([["arg_missing", "==", "x"]], False),
        ([["arg_name", "~=", "Bob"]], False),
        ([["arg_missing", "~=", "x"]], True),
        ([["arg_age", "==", 20]], True),  # numbers compare by text form
        ([["arg_age", ">", 18]], True),
        ([["arg_age", ">", "20"]], False),
        ([["arg_age", ">=", 20]], True),
        ([["arg_age", "<", 20.5]], True),
        ([["arg_age", "<=", 19]], False),
        ([["arg_neg", "<", 0]], True),
        ([["arg_big", "==", "1e3"]], True),
        ([["arg_big", ">", 999]], True),
        ([["arg_junk", ">", 0]], False),  # "1_0" is not a number (float() would say 10)
        ([["arg_name", ">", 0]], False),
        ([["arg_missing", "<", 100]], False),
        ([["http_user_agent", "~~", "Fire(fox|bird)"]], True),
        ([["http_user_agent", "~~", "firefox"]], False),
        ([["http_user_agent", "~*", "firefox"]], True),
        ([["arg_missing", "~~", ".*"]], False),
        ([["arg_name", "in", ["Alice", "Bob"]]], True),
        ([["arg_name", "in", ["Alice"]]], False),
        ([["arg_age", "in", [19, 20]]], True),
        ([["http_x_tags", "has", "b"]], True),
        ([["http_x_tags", "has", "c"]], False),
        ([["remote_addr", "ipmatch", "10.1.0.0/16"]], True),
        ([["remote_addr", "ipmatch", ["192.168.0.0/16", "10.1.2.3"]]], True),
        ([["remote_addr", "ipmatch", "10.2.0.0/16"]], False),
        ([["arg_name", "ipmatch", "10.0.0.0/8"]], False),
        ([["arg_name", "!", "==", "Bob"]], False),
        ([["arg_name", "!", "~~", "^A"]], True),
        ([["arg_name", "==", "Bob"], ["arg_age", ">", 30]], False),  # AND
        (["OR", ["arg_name", "==", "x"], ["arg_age", ">", 10]], True),
        (["OR", ["arg_name", "==", "x"], ["arg_age", ">", 30]], False),
        (["!OR", ["arg_name", "==", "x"], ["arg_age", ">", 30]], True),
        (["!AND", ["arg_name", "==", "Bob"], ["arg_age", ">", 10]], False),
        (
            [
                "AND",
                ["arg_name", "==", "Bob"],
                ["OR", ["arg_tag", "==", "y"], ["arg_tag", "==", "x"]],
            ],
            True,
        ),
        ([["arg_name", "==", "Bob"], ["arg_tag", "==", "x"], ["arg_age", "in", ["20"]]], True),
        (["arg_name", "==", "Bob"], True),  # a bare rule
        ([["arg_name", "IN", ["Bob"]]], True),  # operator case as lua-resty-expr
    ],
)
def test_matching(expr: list, expected: bool) -> None:
    assert compile_expr(expr)(R) is expected


@pytest.mark.parametrize(
    ("expr", "where", "fragment"),
    [
        ([["arg_a", "~~", "("]], "[0]", "bad regex"),
        ([["arg_a", "==", "x"], ["arg_b", "~*", "[z-a]"]], "[1]", "bad regex"),
        ([["nope", "==", "x"]], "[0][0]", "unknown variable 'nope'"),
        ([["arg_a", "=~", "x"]], "[0]", "unknown operator"),
        ([["arg_a", ">", "ten"]], "[0]", "needs a number"),
        ([["arg_a", "in", "x"]], "[0]", "needs a list"),
        ([["arg_a", "ipmatch", "300.1.1.1"]], "[0]", "bad IP"),
        ([["arg_a", "==", "x", "y"]], "[0]", "a rule is"),
        ([["arg_a"]], "[0]", "a rule is"),
        ([[1, "==", 2]], "[0][0]", "expected a rule"),
        ([5], "[0]", "expected a rule"),
        (["OR"], "", "at least one rule"),
        (["OR", ["arg_a", "==", "1"], ["arg_b", "~~", "("]], "[2]", "bad regex"),
        ("arg_a == 1", "", "list of rules"),
    ],
)
def test_errors_name_the_rule(expr: object, where: str, fragment: str) -> None:
    with pytest.raises(ExprError) as e:
        compile_expr(expr)
    assert e.value.where == where
    assert fragment in e.value.message


def test_to_number() -> None:
    assert to_number("42") == 42.0
    assert to_number(" -1.5 ") == -1.5
    assert to_number(".5e1") == 5.0
    for bad in ("inf", "nan", "1_0", "0x10", "", "1" * 100, None, True):
        assert to_number(bad) is None


def test_nesting_is_bounded() -> None:
    expr: list = [["arg_a", "==", "1"]]
    for _ in range(40):
        expr = ["OR", expr]
    with pytest.raises(ExprError, match="nested deeper"):
        compile_expr(expr)
