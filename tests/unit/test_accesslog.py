"""The access log line: fields, batched whole-line writes, disabled costs nothing."""

from __future__ import annotations

import json
from pathlib import Path

from edge.accesslog import PIPE_BUF, AccessLog
from edge.context import ConnInfo, Request
from edge.http.headers import Headers


class Route:
    id = "r1"


def test_line_fields(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    conn = ConnInfo("10.0.0.1", 5000, "127.0.0.1", 9080)
    req = Request("GET", "/a?token=secret", "1.1", Headers([("Host", "h.example")]), conn, 1.0, 0.5)
    req.request_id = "abc"
    req.status = 200
    req.bytes_in = 3
    req.bytes_out = 10
    req.route = Route()
    req.upstream_addr = "10.1.1.1:80"
    req.upstream_status = 200
    req.upstream_latency = 0.25
    log.write(req, 1.5)
    log.write(req, 1.5)
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[0])
    assert rec["time"] == "1970-01-01T00:00:00.500Z"
    assert rec["path"] == "/a" and "secret" not in lines[0]
    assert rec["route_id"] == "r1" and rec["upstream"] == "10.1.1.1:80"
    assert rec["latency"] == 0.5 and rec["upstream_latency"] == 0.25
    assert rec["client"] == "10.0.0.1" and rec["host"] == "h.example"


def test_disabled_writes_nothing() -> None:
    log = AccessLog(None)
    assert not log.enabled
    conn = ConnInfo("10.0.0.1", 5000, "127.0.0.1", 9080)
    log.write(Request("GET", "/", "1.1", Headers(), conn, 0.0, 0.0), 0.0)


def test_lines_are_batched_in_whole_line_writes_under_pipe_buf(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    conn = ConnInfo("10.0.0.1", 5000, "127.0.0.1", 9080)
    req = Request("GET", "/x", "1.1", Headers([("Host", "h")]), conn, 1.0, 0.5)
    req.status = 200
    log.write(req, 1.5)
    assert path.read_bytes() == b""  # buffered until the tick's flush
    log.flush()
    assert path.read_bytes().count(b"\n") == 1
    sizes: list[int] = []
    for i in range(200):
        before = path.stat().st_size
        req.request_id = f"id{i}"
        log.write(req, 1.5)
        after = path.stat().st_size
        if after != before:
            sizes.append(after - before)
    log.close()
    assert sizes and max(sizes) <= PIPE_BUF  # each write stays atomic on a pipe
    lines = path.read_text().splitlines()
    assert len(lines) == 201
    assert [json.loads(line)["request_id"] for line in lines[1:]] == [f"id{i}" for i in range(200)]


def test_a_line_longer_than_pipe_buf_is_written_alone(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    conn = ConnInfo("10.0.0.1", 5000, "127.0.0.1", 9080)
    short = Request("GET", "/s", "1.1", Headers([("Host", "h")]), conn, 1.0, 0.5)
    long = Request("GET", "/" + "a" * 5000, "1.1", Headers([("Host", "h")]), conn, 1.0, 0.5)
    log.write(short, 1.5)
    log.write(long, 1.5)
    assert path.read_text().count("\n") == 2  # the short line first, then the long one
    log.close()
    assert [len(json.loads(line)["path"]) for line in path.read_text().splitlines()] == [2, 5001]
