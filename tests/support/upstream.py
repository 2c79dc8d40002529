"""A small real HTTP/1.1 upstream for proxy tests, on 127.0.0.1, in a thread.

It speaks raw sockets (its own minimal parser, independent of edge's) so it can also
misbehave on purpose. Behaviour by the path's tail (any prefix is ignored):

- ``/stream?n=N[&chunked=1][&close=1]``  N bytes of ``x``, with Content-Length, chunked,
  or delimited by closing the connection
- ``/status/N``                 an empty response with status N
- ``/slow?hold=1``              waits until ``release()`` (or 30 s) before answering
- ``/reset``                    sends half a response, then resets the connection
- ``/malformed/<kind>``         a broken response: cl-te, dup-cl, bad-chunk, obs-fold,
                                te-gzip, bare-lf, garbage
- ``/health``                   ``health_status`` (settable) for active health checks
- ``/sink``                     reads the body (any size, streamed) and answers its length
- ``fail_mode``                 "reset" or "500": every path but /health fails that way
- anything else                 echoes method, path, headers and body as JSON
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_HOLD = 30.0


class _Peer:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def recv_until(self, marker: bytes) -> bytes | None:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, _, self.buf = self.buf.partition(marker)
        return head

    def recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("eof in body")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def body_chunks(self, headers: dict[str, str]) -> Iterator[bytes]:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.recv_until(b"\r\n")
                if line is None:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.recv_until(b"\r\n"):
                        pass
                    return
                remaining = size
                while remaining:
                    if not self.buf:
                        data = self.sock.recv(65536)
                        if not data:
                            raise ConnectionError("eof in chunk")
                        self.buf = data
                    piece = self.buf[:remaining]
                    self.buf = self.buf[len(piece) :]
                    remaining -= len(piece)
                    yield piece
                self.recv_exact(2)
        else:
            remaining = int(headers.get("content-length", "0"))
            while remaining:
                if not self.buf:
                    data = self.sock.recv(65536)
                    if not data:
                        raise ConnectionError("eof in body")
                    self.buf = data
                piece = self.buf[:remaining]
                self.buf = self.buf[len(piece) :]
                remaining -= len(piece)
                yield piece


MALFORMED = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
}


class Upstream:
    """``with Upstream() as up:`` serves on ``up.port`` until the block ends."""

    def __init__(self, name: str = "up", tls: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.tls = tls  # a server-side context: speak HTTPS
        self.health_status = 200
        # None, "reset" (read the request, then reset) or "500" (answer 500), except /health
        self.fail_mode: str | None = None
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self._hold = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def release(self) -> None:
        """Let every held /slow request answer; later ones hold again."""
        old, self._hold = self._hold, threading.Event()
        old.set()

    def drop_connections(self) -> None:
        """Close every connection from the server side, as an upstream does with idle
        keep-alive connections after its own timeout."""
        with self._lock:
            for c in list(self._clients):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop = True
        self._hold.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with self._lock:
            for c in list(self._clients):
                with contextlib.suppress(OSError):
                    c.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        if self.tls is not None:
            try:
                c.settimeout(10)
                c = self.tls.wrap_socket(c, server_side=True)
                c.settimeout(None)
            except (OSError, ssl.SSLError):
                with contextlib.suppress(OSError):
                    c.close()
                return
        peer = _Peer(c)
        try:
            while not self._stop:
                head = peer.recv_until(b"\r\n\r\n")
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                hlist = [(k, v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])]
                headers = {k.lower(): v for k, v in hlist}
                if not self._respond(peer, method, target, hlist, headers):
                    return
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            with self._lock:
                self._clients.discard(c)
            with contextlib.suppress(OSError):
                c.close()

    def _send(self, c: socket.socket, status: int, body: bytes, extra: str = "") -> None:
        c.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
            f"X-Upstream: {self.name}\r\n{extra}\r\n".encode()
            + body
        )

    def _respond(
        self, peer: _Peer, method: str, target: str, hlist: list[Any], headers: dict[str, str]
    ) -> bool:
        c = peer.sock
        url = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        # the behaviour is chosen by the path's tail, so routes may add any prefix
        parts = url.path.rsplit("/", 2)
        last = parts[-1]
        path = "/" + last
        if len(parts) == 3 and parts[1] in ("status", "malformed"):
            path = f"/{parts[1]}/{last}"
        if path == "/sink":
            n = sum(len(p) for p in peer.body_chunks(headers))
            body = b""
        else:
            body = b"".join(peer.body_chunks(headers))
        # recorded once the whole request (body included) has arrived
        record = {"method": method, "path": target, "headers": hlist, "body_len": len(body)}
        with self._lock:
            self.requests.append(record)
        if self.fail_mode == "reset" and path != "/health":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            return False
        if self.fail_mode == "500" and path != "/health":
            self._send(c, 500, b"broken")
            return True
        if path == "/sink":
            self._send(c, 200, json.dumps({"received": n}).encode())
            return True
        if path == "/stream":
            n = int(q.get("n", "0"))
            piece = b"x" * 65536
            if q.get("chunked"):
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                left = n
                while left:
                    k = min(left, len(piece))
                    c.sendall(b"%x\r\n%b\r\n" % (k, piece[:k]))
                    left -= k
                c.sendall(b"0\r\n\r\n")
                return True
            if q.get("close"):
                c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            if method == "HEAD":
                return True
            left = n
            while left:
                k = min(left, len(piece))
                c.sendall(piece[:k])
                left -= k
            return not q.get("close")
        if path.startswith("/status/"):
            self._send(c, int(path.rsplit("/", 1)[1]), b"")
            return True
        if path == "/health":
            self._send(c, self.health_status, b"")
            return True
        if path == "/slow":
            hold = self._hold
            hold.wait(MAX_HOLD)
            self._send(c, 200, b"slow")
            return True
        if path == "/reset":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            return False
        if path.startswith("/malformed/"):
            c.sendall(MALFORMED[path.rsplit("/", 1)[1]])
            return False
        out = {
            "upstream": self.name,
            "method": method,
            "path": target,
            "headers": hlist,
            "body": body.decode("latin-1"),
        }
        self._send(c, 200, json.dumps(out).encode(), "Content-Type: application/json\r\n")
        return True
