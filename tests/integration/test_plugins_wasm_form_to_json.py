"""plugins_wasm/form-to-json (AssemblyScript), built from source, on the production host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.wasm_build import header, plugin, run

FORM = [("Content-Type", "application/x-www-form-urlencoded")]


@pytest.fixture(scope="module")
def form() -> Path:
    return plugin("form-to-json")


def post(
    module: Path,
    body: bytes,
    conf: dict | str | None = None,
    headers: list | None = None,
    **kw: object,
) -> dict:
    return run(
        module,
        conf or {},
        method="POST",
        path="/submit",
        headers=list(FORM if headers is None else headers),
        body=body,
        **kw,
    )  # type: ignore[arg-type]


def test_form_becomes_json_with_type_and_length(form: Path) -> None:
    r = post(form, b"name=Ada+Lovelace&lang=en&lang=fr&tags[]=x&empty=&flag&e=%C3%A9%26%3D")
    up = r["upstream"]
    assert json.loads(up["body"]) == {
        "name": "Ada Lovelace",
        "lang": ["en", "fr"],
        "tags": ["x"],
        "empty": "",
        "flag": "",
        "e": "é&=",
    }
    assert header(up, "content-type") == "application/json"
    assert header(up, "content-length") == str(len(up["body"].encode()))


def test_other_bodies_are_left_alone(form: Path) -> None:
    body = b'{"a": 1}'
    r = post(form, body, headers=[("Content-Type", "application/json")])
    assert r["upstream"]["body"] == body.decode()
    assert header(r["upstream"], "content-type") == "application/json"
    r = run(form, {}, method="GET", path="/x?a=1", headers=FORM)
    assert r["upstream"]["body"] == "" and header(r["upstream"], "content-type") == FORM[0][1]
    r = post(
        form, b"a=1", headers=[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    )
    assert json.loads(r["upstream"]["body"]) == {"a": "1"}


@pytest.mark.parametrize(
    ("mode", "expected"), [("array", ["1", "2"]), ("first", "1"), ("last", "2")]
)
def test_repeated_keys_option(form: Path, mode: str, expected: object) -> None:
    r = post(form, b"a=1&a=2", {"repeated_keys": mode})
    assert json.loads(r["upstream"]["body"])["a"] == expected


def test_content_type_option(form: Path) -> None:
    r = post(form, b"a=1", {"content_type": "application/vnd.acme+json"})
    assert header(r["upstream"], "content-type") == "application/vnd.acme+json"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a=%zz", "bad percent escape at byte 2"),
        (b"a=%4", "truncated percent escape"),
        (b"a=%ff%fe", "not UTF-8"),
        (b"%ed%a0%80=1", "not UTF-8"),  # an encoded surrogate
    ],
)
def test_malformed_forms_get_400(form: Path, body: bytes, message: str) -> None:
    r = post(form, body, name="f2j-bad")
    assert r["client"]["status"] == 400 and r["upstream"] is None
    assert message in r["client"]["body"]


def test_body_across_the_buffer_limit(form: Path) -> None:
    conf = {"max_body_bytes": 2048}
    body = b"&".join(b"k%d=%s" % (i, b"v" * 20) for i in range(100))
    assert len(body) > 2048
    r = post(form, body[:2048], conf)
    assert r["client"]["status"] == 200 and json.loads(r["upstream"]["body"])["k0"] == "v" * 20
    r = post(form, body, conf)
    assert r["client"]["status"] == 413
    big = b"a=" + b"x" * 200_000
    r = post(form, big)
    assert r["client"]["status"] == 200 and len(json.loads(r["upstream"]["body"])["a"]) == 200_000
    r = post(form, big, max_body_bytes=100_000)  # the host's own limit
    assert r["client"]["status"] == 413


def test_metrics(form: Path) -> None:
    post(form, b"a=1", name="f2j-metrics")
    r = post(form, b"a=%zz", name="f2j-metrics")
    assert r["metrics"] == {"converted": 1, "rejected": 1}


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ('{"max_body_bytes": 0}', "'max_body_bytes'"),
        ('{"content_type": ""}', "'content_type'"),
        ('{"repeated_keys": "merge"}', "'repeated_keys'"),
        ('{"other": true}', "'other': unknown field"),
        ("[]", "expected a JSON object"),
        ("{", "invalid JSON"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_field(form: Path, conf: str, field: str) -> None:
    r = run(form, conf)
    assert not r["configured"]
    assert field in r["config_error"], r["config_error"]
