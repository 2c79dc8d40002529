"""plugins_wasm/request-guard, built from source, on the production WASM host."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.support.wasm_build import header, plugin, run

_ids = itertools.count()


@pytest.fixture(scope="module")
def guard() -> Path:
    return plugin("request-guard")


def fresh() -> str:
    """A plugin name of its own, so metric values start at zero."""
    return f"guard-{next(_ids)}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/users/42?sort=-created_at&q=union+station",
        "/files/report.v2.pdf",
        "/search?name=O%27Brien&text=i+love+onions",
    ],
)
def test_benign_requests_reach_the_upstream(guard: Path, path: str) -> None:
    r = run(guard, {}, path=path, headers=[("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")])
    assert r["trap"] is None
    assert r["upstream"] is not None and r["upstream"]["path"] == path
    assert r["client"]["status"] == 200 and not r["client"]["local_response"]


@pytest.mark.parametrize(
    ("path", "headers", "rule"),
    [
        ("/static/..%2f..%2fetc/passwd", [], "path_traversal"),
        ("/a/%252e%252e/%252e%252e/b", [], "path_traversal"),
        ("/q?id=1%27%20OR%20%271%27%3D%271", [], "sql_injection"),
        ("/q?x=1+UNION/**/SELECT+password+FROM+users", [], "sql_injection"),
        ("/q?c=%3CScRiPt%3Ealert(1)%3C/script%3E", [], "xss"),
        ("/", [("Referer", 'x" onmouseover = "steal()')], "xss"),
    ],
)
def test_attacks_are_blocked_with_the_rule_in_the_log(
    guard: Path, path: str, headers: list[tuple[str, str]], rule: str
) -> None:
    name = fresh()
    r = run(guard, {}, path=path, headers=headers, name=name)
    assert r["upstream"] is None
    assert r["client"]["status"] == 403 and r["client"]["body"] == "request blocked\n"
    assert any(f"blocked rule={rule}" in msg for _lvl, msg in r["logs"])
    assert r["metrics"]["matches"] == 1 and r["metrics"][f"matches_{rule}"] == 1
    assert r["metrics"]["blocked"] == 1


def test_monitor_mode_passes_logs_and_tags(guard: Path) -> None:
    conf = {"mode": "monitor", "tag_header": "X-Guard"}
    name = fresh()
    r = run(guard, conf, path="/q?id=1%27+or+1=1--", name=name)
    assert r["client"]["status"] == 200
    assert header(r["upstream"], "x-guard") == "rule=sql_injection"
    assert any("monitored rule=sql_injection" in msg for _l, msg in r["logs"])
    assert r["metrics"]["matches"] == 1 and r["metrics"]["blocked"] == 0


def test_block_status_body_and_content_type_are_configurable(guard: Path) -> None:
    conf = {
        "block_status": 406,
        "block_body": '{"denied":true}',
        "block_content_type": "application/json",
    }
    r = run(guard, conf, path="/x?q=<script>")
    assert r["client"]["status"] == 406
    assert r["client"]["body"] == '{"denied":true}'
    assert header(r["client"], "content-type") == "application/json"


def test_method_allowlist(guard: Path) -> None:
    conf = {"allowed_methods": ["get", "POST"]}
    assert run(guard, conf, method="GET")["client"]["status"] == 200
    r = run(guard, conf, method="DELETE")
    assert r["client"]["status"] == 405 and r["upstream"] is None
    assert any("method_not_allowed method=DELETE" in m for _l, m in r["logs"])


def test_header_limits(guard: Path) -> None:
    conf = {"max_header_count": 3, "max_header_size": 64, "max_headers_total": 200}
    ok = [("a", "1"), ("b", "2")]
    assert run(guard, conf, headers=ok)["client"]["status"] == 200
    many = [(f"h{i}", "v") for i in range(5)]
    r = run(guard, conf, headers=many)
    assert r["client"]["status"] == 431
    big = [("x-big", "v" * 100)]
    r = run(guard, conf, headers=big)
    assert r["client"]["status"] == 431
    assert any("header_too_large header=x-big" in m for _l, m in r["logs"])
    # total: four headers of 55 bytes each are each under 64 but 220 > 200 in sum
    total = [(f"x-{i}", "v" * 52) for i in range(3)]
    assert run(guard, conf, headers=total)["client"]["status"] == 200
    assert (
        run(guard, dict(conf, max_header_count=10), headers=[*total, ("x-3", "v" * 52)])["client"][
            "status"
        ]
        == 431
    )


def test_rules_and_targets_select_what_is_checked(guard: Path) -> None:
    only_xss = {"rules": ["xss"]}
    assert run(guard, only_xss, path="/a/../../etc/passwd")["client"]["status"] == 200
    assert run(guard, only_xss, path="/a?q=<svg/onload=x>")["client"]["status"] == 403
    path_only = {"targets": ["path"]}
    assert run(guard, path_only, path="/a?q=<script>")["client"]["status"] == 200
    assert run(guard, path_only, path="/<script>/x")["client"]["status"] == 403
    ignored = {"ignore_headers": ["Cookie"]}
    assert run(guard, ignored, headers=[("Cookie", "a=' or '1'='1")])["client"]["status"] == 200
    assert run(guard, {}, headers=[("Cookie", "a=' or '1'='1")])["client"]["status"] == 403


def test_custom_rules(guard: Path) -> None:
    conf = {
        "rules": [],
        "custom_rules": [
            {"id": "no-admin", "signatures": ["/ADMIN"], "targets": ["path"]},
        ],
    }
    r = run(guard, conf, path="/Admin/users")
    assert r["client"]["status"] == 403
    assert any("rule=no-admin target=path" in m for _l, m in r["logs"])
    assert run(guard, conf, path="/users?next=/admin")["client"]["status"] == 200


def test_body_inspection_is_off_by_default(guard: Path) -> None:
    body = b"comment=<script>alert(1)</script>"
    r = run(guard, {}, method="POST", body=body)
    assert r["client"]["status"] == 200 and r["upstream"]["body"] == body.decode()


def test_body_inspection_blocks_and_passes(guard: Path) -> None:
    conf = {"inspect_body": True}
    r = run(guard, conf, method="POST", body=b"comment=%3Cscript%3Ealert(1)")
    assert r["client"]["status"] == 403
    assert any("rule=xss target=body" in m for _l, m in r["logs"])
    ok = b"comment=hello+world&n=1"
    r = run(guard, conf, method="POST", body=ok)
    assert r["client"]["status"] == 200 and r["upstream"]["body"] == ok.decode()


def test_body_inspection_looks_at_the_first_bytes_only(guard: Path) -> None:
    conf = {"inspect_body": True, "max_body_inspect_bytes": 1024}
    late = b"a" * 4096 + b"<script>"
    r = run(guard, conf, method="POST", body=late)
    assert r["client"]["status"] == 200 and len(r["upstream"]["body"]) == len(late)
    early = b"<script>" + b"a" * 4096
    assert run(guard, conf, method="POST", body=early)["client"]["status"] == 403


def test_body_over_the_host_limit_is_413(guard: Path) -> None:
    r = run(guard, {"inspect_body": True}, method="POST", body=b"a" * 5000, max_body_bytes=4096)
    assert r["client"]["status"] == 413 and r["upstream"] is None


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ('{"mode": "nope"}', "'mode'"),
        ('{"block_status": 99}', "'block_status'"),
        ('{"allowed_methods": "GET"}', "'allowed_methods'"),
        ('{"rules": ["sqli"]}', "'rules[0]'"),
        ('{"targets": ["cookies"]}', "'targets[0]'"),
        ('{"custom_rules": [{"id": "a b", "signatures": ["x"]}]}', "'custom_rules[0].id'"),
        ('{"custom_rules": [{"id": "a", "signatures": []}]}', "'custom_rules[0].signatures'"),
        ('{"inspect_body": "yes"}', "'inspect_body'"),
        ('{"max_header_count": -1}', "'max_header_count'"),
        ('{"unknown": 1}', "'unknown': unknown field"),
        ('{"mode": ', "invalid JSON at byte"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(guard: Path, conf: str, field: str) -> None:
    r = run(guard, conf)
    assert not r["configured"]
    assert field in r["config_error"], r["config_error"]
