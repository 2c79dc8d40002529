"""The floor: what a Python HTTP/1.1 relay costs with no gateway work at all.

``python bench/floor_relay.py LISTEN_PORT UPSTREAM_PORT`` serves 127.0.0.1:LISTEN_PORT
and relays every request to 127.0.0.1:UPSTREAM_PORT over keep-alive connections, the
way edge's reactor does (one epoll, callbacks, httptools), minus everything that makes
it a gateway: no routing, plugins, limits, access log, timeouts or error handling
beyond closing. ``bench/run.py --only nginx,floor,plain`` prints it beside nginx and
edge, so the distance between edge and this line is what edge's own work costs.
Not for production: it trusts both peers.
"""

from __future__ import annotations

import os
import select
import socket
import sys
from typing import Any

import httptools

RECV = 65536


def _read(sock: socket.socket) -> bytes | None:
    """What the peer sent, ``b""`` at EOF or on an error, None if nothing yet."""
    try:
        return os.read(sock.fileno(), RECV)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class Relay:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.ep = select.epoll()
        self.handlers: dict[int, Any] = {}
        self.idle: list[Upstream] = []

    def watch(self, sock: socket.socket, handler: Any) -> None:
        self.ep.register(sock.fileno(), select.EPOLLIN)
        self.handlers[sock.fileno()] = handler

    def forget(self, sock: socket.socket) -> None:
        self.handlers.pop(sock.fileno(), None)
        sock.close()  # also leaves the epoll set


class Upstream:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.sock = socket.create_connection(relay.upstream)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.done = False
        relay.watch(self.sock, self.readable)

    def on_message_complete(self) -> None:
        self.done = True

    def readable(self) -> None:
        data = _read(self.sock)
        if data is None:
            return
        client = self.client
        if not data or client is None:
            # closed by the upstream (idle, or after its keep-alive limit)
            if self in self.relay.idle:
                self.relay.idle.remove(self)
            self.relay.forget(self.sock)
            if client is not None:
                client.close()
            return
        self.parser.feed_data(data)
        client.send(data)
        if self.done:
            self.done = False
            self.client = None
            self.relay.idle.append(self)
            client.busy = False
            client.next()


class Client:
    def __init__(self, relay: Relay, sock: socket.socket) -> None:
        self.relay = relay
        self.sock = sock
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[bytes] = []
        self.ready: list[bytes] = []
        self.busy = False
        relay.watch(sock, self.readable)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append(b"%s: %s\r\n" % (name, value))

    def on_message_complete(self) -> None:
        head = b"%s %s HTTP/1.1\r\n" % (self.parser.get_method(), self.url)
        self.ready.append(head + b"".join(self.headers) + b"X-Forwarded-For: 127.0.0.1\r\n\r\n")
        self.headers = []

    def readable(self) -> None:
        data = _read(self.sock)
        if data is None:
            return
        if not data:
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.close()
            return
        self.next()

    def next(self) -> None:
        if self.busy or not self.ready:
            return
        up = self.relay.idle.pop() if self.relay.idle else Upstream(self.relay)
        up.client = self
        self.busy = True
        os.write(up.sock.fileno(), self.ready.pop(0))

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:  # incl. a full socket buffer: a load generator always reads
            self.close()

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.relay.forget(self.sock)


def main() -> None:
    port, up_port = int(sys.argv[1]), int(sys.argv[2])
    relay = Relay(("127.0.0.1", up_port))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4096)
    ls.setblocking(False)

    def accept() -> None:
        while True:
            try:
                s, _ = ls.accept()
            except BlockingIOError:
                return
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Client(relay, s)

    relay.watch(ls, accept)
    handlers = relay.handlers
    while True:
        for fd, _ev in relay.ep.poll():
            h = handlers.get(fd)
            if h is not None:
                h()


if __name__ == "__main__":
    main()
