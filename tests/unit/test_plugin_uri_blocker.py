from edge.plugins.uri_blocker import UriBlocker
from tests.support.plugins import build, config_error, json_body, request


def test_blocks_on_path_and_query() -> None:
    p = build(UriBlocker, {"block_rules": [r"root\.exe", r"root\.m+"]})
    assert p.rewrite(request(uri="/ok?x=1")) is None
    r = p.rewrite(request(uri="/a/root.exe"))
    assert r.status == 403 and r.body == b""
    assert p.rewrite(request(uri="/x?file=root.mmm")).status == 403


def test_code_message_case() -> None:
    conf = {
        "block_rules": ["ADMIN"],
        "rejected_code": 410,
        "rejected_msg": "nope",
        "case_insensitive": True,
    }
    p = build(UriBlocker, conf)
    r = p.rewrite(request(uri="/admin"))
    assert r.status == 410 and json_body(r) == {"error_msg": "nope"}
    p2 = build(UriBlocker, {"block_rules": ["ADMIN"]})
    assert p2.rewrite(request(uri="/admin")) is None


def test_bad_rule_names_index() -> None:
    assert config_error(UriBlocker, {"block_rules": ["ok", "(unclosed"]}).startswith(
        "block_rules[1]:"
    )
    assert config_error(UriBlocker, {"block_rules": []}).startswith("block_rules:")
    assert config_error(UriBlocker, {"block_rules": ["a"], "rejected_code": 100}).startswith(
        "rejected_code"
    )
