"""One JSON line per request, written when the request is done (after the log phase).

The encoder is built once; a disabled log costs one attribute check per request. Lines
go to stderr or to a file opened in append mode. They are batched: a write syscall
per request was a measurable share of a proxied request's CPU, so lines collect in a
buffer that is written with one ``os.write`` when it would pass ``FLUSH_BYTES`` and on
the worker's timeout tick (``flush``, every 100 ms), so a line is out at most a tick
after its request. Each write holds whole lines and stays under PIPE_BUF, so lines
from several worker processes sharing a pipe or an O_APPEND file never interleave.
"""

from __future__ import annotations

import atexit
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


# atomic-write size of a pipe on Linux; a buffer this full is written at once
PIPE_BUF = 4096
FLUSH_BYTES = PIPE_BUF - 512


class AccessLog:
    """``AccessLog(None)`` is disabled; ``AccessLog("-")`` is stderr; else a file path."""

    __slots__ = (
        "enabled",
        "_fd",
        "_encoder",
        "_own_fd",
        "_sec",
        "_sec_str",
        "_ms",
        "_ms_str",
        "_buf",
    )

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
        self._ms = -1
        self._ms_str = ""
        self._buf = bytearray()
        if self.enabled:
            # lines still buffered when the worker exits normally are not lost
            atexit.register(self.flush)

    def _timestamp(self, ms: int) -> str:
        """The ISO time of ``ms`` (epoch milliseconds) when it is not the cached one."""
        sec = ms // 1000
        if sec != self._sec:
            self._sec = sec
            self._sec_str = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        self._ms = ms
        self._ms_str = s = f"{self._sec_str}.{ms - sec * 1000:03d}Z"
        return s

    def write(self, req: Request, now: float) -> None:
        """Log ``req``; ``now`` is the monotonic time the response ended."""
        if not self.enabled:
            return
        route = req.route
        ul = req.upstream_latency
        # formatting a time costs more than the rest of the line: under load many
        # requests start in the same millisecond, and all in the same second
        ms = int(req.start_wall * 1000)
        # positional, in field order (keywords cost measurably more per request);
        # seconds to the microsecond: int() of the scaled value costs a fifth of round()
        rec = AccessRecord(
            self._ms_str if ms == self._ms else self._timestamp(ms),
            req.request_id,
            req.client_addr,
            req.method,
            req.host,
            req.path,
            req.status,
            req.bytes_in,
            req.bytes_out,
            route.id if route is not None else None,
            req.upstream_addr or None,
            req.upstream_status or None,
            int(ul * 1e6 + 0.5) / 1e6 if ul is not None else None,
            int((now - req.start) * 1e6 + 0.5) / 1e6,
        )
        buf = self._buf
        start = len(buf)
        self._encoder.encode_into(rec, buf, start)
        buf += b"\n"
        if len(buf) >= FLUSH_BYTES:
            if start and len(buf) > PIPE_BUF:
                # keep each write under PIPE_BUF: the older lines go first
                line = bytes(buf[start:])
                del buf[start:]
                self.flush()
                buf += line
            self.flush()

    def flush(self) -> None:
        """Write the buffered lines (the worker calls this on its timeout tick)."""
        buf = self._buf
        if not buf:
            return
        try:
            os.write(self._fd, buf)
        except OSError:
            # a full disk or closed stderr must not take requests down with it
            pass
        buf.clear()

    def close(self) -> None:
        self.flush()
        if self._own_fd:
            os.close(self._fd)
            self._own_fd = False
            self.enabled = False
