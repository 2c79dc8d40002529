"""Named limits on what one HTTP/1.1 peer may make us hold or wait for.

Every number is a default that a node configuration may override; the reasoning for
each is beside it. The server turns a broken limit into the status named here and,
for anything about the request head or timing, closes the connection (the stream
position can no longer be trusted).
"""

from __future__ import annotations

import msgspec

KiB = 1024
MiB = 1024 * KiB


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-listener limits; the node configuration maps onto these fields."""

    # nginx's large_client_header_buffers is 8k; long URLs past that are abuse or bugs -> 414
    max_request_line: int = 8 * KiB
    # all header lines together; 32 KiB holds big cookies and JWTs with room to spare -> 431
    max_header_bytes: int = 32 * KiB
    # browsers send ~15; 100 leaves room for CDNs adding their own -> 431
    max_header_count: int = 100
    # client_max_body_size; 0 would mean unlimited, which lets one client fill a disk or
    # an upstream's memory, so the default is a generous finite 100 MiB -> 413
    max_body_size: int = 100 * MiB
    # slowloris: the whole head must arrive within this many seconds -> 408 and close
    header_timeout: float = 10.0
    # an idle keep-alive connection is closed quietly after this (nginx keepalive_timeout 75s)
    keepalive_timeout: float = 60.0
    # the gap allowed between two reads of a request body -> 408 and close
    body_timeout: float = 60.0
    # time allowed to write a chunk to a slow client before giving up on it
    send_timeout: float = 60.0
    # a chunk-size line with extensions; real clients send a few hex digits
    max_chunk_line: int = 4 * KiB
    # trailer section of a chunked body (dropped, but it must be bounded)
    max_trailer_bytes: int = 8 * KiB
    # upstream response head; backends are trusted more than clients but not unboundedly
    max_response_header_bytes: int = 64 * KiB
    # requests served on one downstream connection before we ask it to reconnect
    max_keepalive_requests: int = 10_000

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        if self.max_request_line < 16 or self.max_header_bytes < 64:
            raise ValueError("max_request_line/max_header_bytes: too small to hold a request")


DEFAULT_LIMITS = Limits()
