"""Sans-IO parts of the plugin toolkit: message files, project scaffolding names, and
the host's header-map codec against the bytes the SDKs emit."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.plugin_toolkit.messages import MessageError, parse_request, parse_response
from edge.plugin_toolkit.scaffold import ScaffoldError, new
from edge.wasm.abi import AbiError, deserialize_pairs, serialize_pairs


def test_pairs_match_the_sdk_bytes() -> None:
    # what both SDKs' header-map serializers write for [("a", "1"), ("b", "22")]
    data = serialize_pairs([(b"a", b"1"), (b"b", b"22")])
    assert data.hex() == "0200000001000000010000000100000002000000610031006200323200"
    assert deserialize_pairs(data) == [(b"a", b"1"), (b"b", b"22")]
    assert deserialize_pairs(b"") == [] and deserialize_pairs(b"\0") == []


@pytest.mark.parametrize(
    "bad", [b"\xff\xff\xff\xff" + b"\0" * 8, serialize_pairs([(b"k", b"v")])[:-3]]
)
def test_pairs_reject_inconsistent_input(bad: bytes) -> None:
    with pytest.raises(AbiError):
        deserialize_pairs(bad)


def test_request_files_json_and_raw() -> None:
    r = parse_request(
        b'{"method": "post", "path": "/p?q", "headers": {"A": "1"}, "body": {"x": 1}}', "f"
    )
    assert (r.method, r.path, r.headers, r.body) == ("POST", "/p?q", [("A", "1")], b'{"x": 1}')
    raw = parse_request(b"PUT /x HTTP/1.1\r\nHost: h\r\nX-A:  b \r\n\r\nbody", "f")
    assert (raw.method, raw.path, raw.body) == ("PUT", "/x", b"body")
    assert raw.headers == [("Host", "h"), ("X-A", "b")]
    b64 = parse_request(b'{"body_base64": "AAE="}', "f")
    assert b64.body == b"\x00\x01"


def test_response_files_json_and_raw() -> None:
    r = parse_response(b'{"status": 201, "headers": [["A", "1"]], "body": "x"}', "f")
    assert (r.status, r.headers, r.body) == (201, [("A", "1")], b"x")
    raw = parse_response(b"HTTP/1.1 404 Not Found\nContent-Type: text/plain\n\nnope", "f")
    assert (raw.status, raw.headers, raw.body) == (404, [("Content-Type", "text/plain")], b"nope")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'{"headers": 5}', "req.headers"),
        (b'{"headers": [["a"]]}', "req.headers[0]"),
        (b'{"body": 5}', "req.body"),
        (b'{"body_base64": "!!"}', "req.body_base64"),
        (b"{nope", "req: invalid JSON"),
        (b"GET /x\r\n\r\n", "req: line 1"),
        (b"GET /x HTTP/1.1\r\nno colon\r\n\r\n", "req: line 2"),
    ],
)
def test_bad_request_files_name_the_place(data: bytes, where: str) -> None:
    with pytest.raises(MessageError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_request(data, "req")


def test_bad_response_status() -> None:
    with pytest.raises(MessageError, match=r"resp\.status"):
        parse_response(b'{"status": 99}', "resp")
    with pytest.raises(MessageError, match="line 1"):
        parse_response(b"HTTP/1.1 abc\r\n\r\n", "resp")


@pytest.mark.parametrize("name", ["Bad", "1abc", "a b", "", "x" * 70, "a_b"])
def test_scaffold_refuses_bad_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError):
        new(name, "rust", tmp_path)


def test_scaffold_refuses_unknown_language_and_existing_dir(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="--lang"):
        new("ok", "go", tmp_path)
    assert not (tmp_path / "ok").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ScaffoldError, match="not empty"):
        new("taken", "rust", tmp_path)
