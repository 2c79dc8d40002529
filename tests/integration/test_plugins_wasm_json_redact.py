"""plugins_wasm/json-redact, built from source, on the production WASM host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.wasm_build import header, plugin, run

JSON = [("Content-Type", "application/json; charset=utf-8")]


@pytest.fixture(scope="module")
def redact() -> Path:
    return plugin("json-redact")


def respond(
    module: Path, conf: dict | str, body: bytes, headers: list | None = None, **kw: object
) -> dict:
    hs = list(JSON if headers is None else headers)
    return run(module, conf, resp_headers=hs, resp_body=body, **kw)  # type: ignore[arg-type]


DOC = {
    "user": {"name": "Ada", "ssn": "123-45-6789", "email": "ada@example.com"},
    "cards": [{"number": "4111111111111111", "exp": "01/30"}, {"number": "5500000000000004"}],
    "items": {"a": {"secret": 1}, "b": {"secret": [1, 2]}, "c": {"public": True}},
    "n": 1.50,
}


def test_masks_paths_keeps_everything_else_and_fixes_length(redact: Path) -> None:
    body = json.dumps(DOC, indent=1).encode()
    conf = {"paths": ["user.ssn", "cards.number", "items.*.secret"]}
    r = respond(redact, conf, body, [*JSON, ("Content-Length", str(len(body)))], name="jr-a")
    out = r["client"]["body"]
    doc = json.loads(out)
    assert doc["user"] == {"name": "Ada", "ssn": "***", "email": "ada@example.com"}
    assert [c["number"] for c in doc["cards"]] == ["***", "***"]
    assert doc["cards"][0]["exp"] == "01/30"
    assert doc["items"]["a"]["secret"] == "***" and doc["items"]["b"]["secret"] == "***"
    assert doc["items"]["c"] == {"public": True}
    # untouched parts keep their bytes: indentation and the number's spelling
    assert '\n "n": 1.5' in out
    assert header(r["client"], "content-length") in (None, str(len(out.encode())))
    assert r["metrics"]["fields_redacted"] == 5


def test_streamed_body_is_buffered_then_redacted(redact: Path) -> None:
    body = json.dumps({"list": [{"token": f"t{i}", "id": i} for i in range(200)]}).encode()
    r = respond(redact, {"paths": ["list[*].token"]}, body, chunk_size=97)
    doc = json.loads(r["client"]["body"])
    assert {x["token"] for x in doc["list"]} == {"***"}
    assert [x["id"] for x in doc["list"]] == list(range(200))


def test_index_paths_and_custom_mask(redact: Path) -> None:
    body = b'{"a":[{"k":"x"},{"k":"y"}],"top":"s"}'
    r = respond(redact, {"paths": ["a[1].k", "top"], "mask": '[redacted "x"]'}, body)
    assert json.loads(r["client"]["body"]) == {
        "a": [{"k": "x"}, {"k": '[redacted "x"]'}],
        "top": '[redacted "x"]',
    }


def test_non_json_and_encoded_bodies_pass_untouched(redact: Path) -> None:
    body = b'{"user": {"ssn": "1"}}'
    conf = {"paths": ["user.ssn"]}
    r = respond(redact, conf, body, [("Content-Type", "text/plain")])
    assert r["client"]["body"] == body.decode()
    r = respond(redact, dict(conf, on_error="pass"), body, [*JSON, ("Content-Encoding", "gzip")])
    assert r["client"]["body"] == body.decode()
    r = respond(redact, conf, body, [*JSON, ("Content-Encoding", "gzip")])
    assert r["client"]["status"] == 502


def test_content_types_option(redact: Path) -> None:
    body = b'{"s":"v"}'
    conf = {"paths": ["s"], "content_types": ["application/vnd.api"]}
    r = respond(redact, conf, body, [("Content-Type", "application/vnd.api")])
    assert json.loads(r["client"]["body"]) == {"s": "***"}
    r = respond(redact, conf, body)  # application/json is no longer in the list
    assert r["client"]["body"] == body.decode()
    r = respond(redact, {"paths": ["s"]}, body, [("Content-Type", "application/problem+json")])
    assert json.loads(r["client"]["body"]) == {"s": "***"}


def test_malformed_json_body(redact: Path) -> None:
    bad = b'{"user": {"ssn": "123"'
    r = respond(redact, {"paths": ["user.ssn"]}, bad, name="jr-bad")
    assert "123" not in r["client"]["body"]  # rejected: nothing unchecked goes out
    assert any("not valid JSON" in m for _l, m in r["logs"])
    assert r["metrics"]["responses_rejected"] == 1
    r = respond(redact, {"paths": ["user.ssn"], "on_error": "pass"}, bad)
    assert r["client"]["body"] == bad.decode()


def test_body_across_the_buffer_limit(redact: Path) -> None:
    small = json.dumps({"ssn": "1", "pad": "x" * 100}).encode()
    big = json.dumps({"ssn": "1", "pad": "x" * 5000}).encode()
    conf = {"paths": ["ssn"], "max_body_bytes": 1024}
    assert json.loads(respond(redact, conf, small)["client"]["body"])["ssn"] == "***"
    # announced too large: refused before any byte leaves
    r = respond(redact, conf, big, [*JSON, ("Content-Length", str(len(big)))])
    assert r["client"]["status"] == 502 and r["upstream"] is not None
    # discovered too large while streaming: the unchecked bytes are dropped
    r = respond(redact, conf, big, chunk_size=512)
    assert '"ssn": "1"' not in r["client"]["body"]
    # on_error=pass lets it through unchanged instead
    r = respond(redact, dict(conf, on_error="pass"), big, chunk_size=512)
    assert r["client"]["body"] == big.decode()


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ("{}", "'paths'"),
        ('{"paths": []}', "'paths'"),
        ('{"paths": ["a..b"]}', "'paths[0]'"),
        ('{"paths": ["a[x]"]}', "'paths[0]'"),
        ('{"paths": [1]}', "'paths[0]'"),
        ('{"paths": ["a"], "mask": 1}', "'mask'"),
        ('{"paths": ["a"], "max_body_bytes": 0}', "'max_body_bytes'"),
        ('{"paths": ["a"], "on_error": "drop"}', "'on_error'"),
        ('{"paths": ["a"], "content_types": [""]}', "'content_types[0]'"),
        ('{"paths": ["a"], "extra": 1}', "'extra': unknown field"),
        ("not json", "invalid JSON"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(
    redact: Path, conf: str, field: str
) -> None:
    r = run(redact, conf)
    assert not r["configured"]
    assert field in r["config_error"], r["config_error"]
