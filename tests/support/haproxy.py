"""A real HAProxy in TCP mode in front of edge, sending PROXY protocol v1 or v2."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.procs import free_port, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def haproxy(backend_port: int, send_proxy: str = "send-proxy-v2") -> Iterator[int]:
    """Run HAProxy on a free loopback port forwarding to ``backend_port``; yields its port.

    ``send_proxy`` is the server option: ``send-proxy`` (v1), ``send-proxy-v2``, or
    ``send-proxy-v2 proxy-v2-options unique-id`` style extras.
    """
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="edge-haproxy-"))
    cfg = tmp / "haproxy.cfg"
    cfg.write_text(
        f"""global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt
    default_backend be
backend be
    server edge 127.0.0.1:{backend_port} {send_proxy}
"""
    )
    log = open(tmp / "haproxy.log", "wb")
    proc = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is None and _accepting(port), 10, "haproxy listening")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
