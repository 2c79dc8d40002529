"""One JSON line per request, written when the request is done (after the log phase).

The encoder is built once; a disabled log costs one attribute check per request. Lines
go to stderr or to a file opened in append mode, written with one ``os.write`` so
lines from several worker processes sharing the file never interleave (O_APPEND
writes of a line are atomic on local filesystems up to PIPE_BUF for pipes; for files
each write lands whole).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from edge.context import Request


class AccessRecord(msgspec.Struct, array_like=False, omit_defaults=False):
    time: str
    request_id: str
    client: str
    method: str
    host: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    route_id: str | None
    upstream: str | None
    upstream_status: int | None
    upstream_latency: float | None
    latency: float


class AccessLog:
    """``AccessLog(None)`` is disabled; ``AccessLog("-")`` is stderr; else a file path."""

    __slots__ = ("enabled", "_fd", "_encoder", "_own_fd", "_sec", "_sec_str")

    def __init__(self, target: str | None = "-") -> None:
        self.enabled = target is not None
        self._own_fd = False
        if target is None or target == "-":
            self._fd = sys.stderr.fileno() if target == "-" else -1
        else:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._own_fd = True
        self._encoder = msgspec.json.Encoder()
        self._sec = -1
        self._sec_str = ""

    def _timestamp(self, wall: float) -> str:
        # formatting a time costs more than the rest of the line; reuse it per second
        sec = int(wall)
        if sec != self._sec:
            self._sec = sec
            self._sec_str = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._sec_str}.{int((wall - sec) * 1000):03d}Z"

    def write(self, req: Request, now: float) -> None:
        """Log ``req``; ``now`` is the monotonic time the response ended."""
        if not self.enabled:
            return
        route = req.route
        rec = AccessRecord(
            time=self._timestamp(req.start_wall),
            request_id=req.request_id,
            client=req.client_addr,
            method=req.method,
            host=req.host,
            path=req.path,
            status=req.status,
            bytes_in=req.bytes_in,
            bytes_out=req.bytes_out,
            route_id=str(route.id) if route is not None else None,
            upstream=req.upstream_addr or None,
            upstream_status=req.upstream_status or None,
            upstream_latency=(
                round(req.upstream_latency, 6) if req.upstream_latency is not None else None
            ),
            latency=round(now - req.start, 6),
        )
        line = self._encoder.encode(rec) + b"\n"
        try:
            os.write(self._fd, line)
        except OSError:
            # a full disk or closed stderr must not take requests down with it
            pass

    def close(self) -> None:
        if self._own_fd:
            os.close(self._fd)
            self._own_fd = False
            self.enabled = False
