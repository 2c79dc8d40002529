"""The access log line: fields, one line per write, disabled costs nothing."""

from __future__ import annotations

import json
from pathlib import Path

from edge.accesslog import AccessLog
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
