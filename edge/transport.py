"""Byte transports under the HTTP code: a fast path for plain sockets, a generic one.

For a plain TCP socket, ``FdTransport`` calls ``os.read``/``os.write`` on the
non-blocking descriptor first and only parks in trio (``wait_readable`` /
``wait_writable``) when the kernel says EAGAIN. A proxied request then costs four
syscalls and two waits, instead of trio's stream layer with its conflict detectors,
context managers and forced checkpoints on every call; measured, that layer was most of
the per-request CPU. Anything else (TLS, test memory streams) goes through
``StreamTransport``, a thin adapter over ``trio.abc.Stream``.

Neither takes a timeout: callers wrap waits in cancel scopes, which only exist when a
wait actually happens (``recv_nowait`` lets them find out first).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import trio

RECV_SIZE = 65536


def io_waiters() -> tuple[Callable[[int], Awaitable[None]], Callable[[int], Awaitable[None]]]:
    """The run loop's own ``wait_readable``/``wait_writable``.

    ``trio.lowlevel.wait_*`` wrap these in a frame whose only job is protection from
    KeyboardInterrupt; edge's worker receives SIGINT through a signal receiver, so
    nothing is ever raised asynchronously there and the wrapper is pure cost on
    every wait. Anything unexpected about trio's internals falls back to the public
    functions.
    """
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT

        io = GLOBAL_RUN_CONTEXT.runner.io_manager
        return io.wait_readable, io.wait_writable
    except Exception:
        return trio.lowlevel.wait_readable, trio.lowlevel.wait_writable


class FdTransport:
    __slots__ = ("stream", "fd", "_wait_readable", "_wait_writable")

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream  # owns the descriptor; closing goes through it
        self.fd = stream.socket.fileno()
        self._wait_readable, self._wait_writable = io_waiters()

    def recv_nowait(self) -> bytes | None:
        """Bytes if the kernel has some (``b""`` at EOF), None if a wait is needed."""
        try:
            return os.read(self.fd, RECV_SIZE)
        except BlockingIOError:
            return None

    async def recv(self) -> bytes:
        """Up to RECV_SIZE bytes, ``b""`` at EOF; raises OSError on a broken connection."""
        while True:
            try:
                return os.read(self.fd, RECV_SIZE)
            except BlockingIOError:
                await self._wait_readable(self.fd)

    async def recv_wait(self) -> bytes:
        """Like ``recv`` but parks first: for reads that cannot be ready yet (a reply
        to what we just sent), saving the EAGAIN round trip."""
        while True:
            await self._wait_readable(self.fd)
            try:
                return os.read(self.fd, RECV_SIZE)
            except BlockingIOError:
                continue

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Write what the kernel takes now; the count written (0 if none)."""
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    async def send_rest(self, data: bytes | memoryview) -> None:
        """Write all of ``data``, waiting for buffer space as needed."""
        view = memoryview(data)
        while view:
            await self._wait_writable(self.fd)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


class StreamTransport:
    """The same interface over any trio stream (TLS, memory streams in tests)."""

    __slots__ = ("stream", "fd")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.fd = -1

    def recv_nowait(self) -> bytes | None:
        return None

    async def recv(self) -> bytes:
        try:
            return await self.stream.receive_some(RECV_SIZE)
        except trio.BrokenResourceError as e:
            raise OSError(f"connection broken: {e}") from e

    async def recv_wait(self) -> bytes:
        return await self.recv()

    def send_nowait(self, data: bytes | memoryview) -> int:
        return 0

    async def send_rest(self, data: bytes | memoryview) -> None:
        try:
            await self.stream.send_all(data)
        except trio.BrokenResourceError as e:
            raise OSError(f"connection broken: {e}") from e

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


Transport = FdTransport | StreamTransport


def transport_for(stream: trio.abc.Stream) -> Transport:
    if type(stream) is trio.SocketStream:
        return FdTransport(stream)
    return StreamTransport(stream)
