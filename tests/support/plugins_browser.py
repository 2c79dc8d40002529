"""A real headless Chromium for browser-level tests, and a page server for its origin.

``dump_dom(url)`` runs Debian's ``chromium`` with a throw-away profile and returns the
DOM after the page's scripts ran. ``PageServer`` serves fixed pages on 127.0.0.1 so a
page has an origin of its own (another port than the gateway's).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, timeout: float = 60.0) -> str:
    assert CHROMIUM is not None
    profile = tempfile.mkdtemp(prefix="edge-chromium-")
    try:
        out = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            timeout=timeout,
            check=True,
        )
        return out.stdout.decode()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class PageServer:
    """Serves ``pages`` (path -> HTML) on 127.0.0.1 in a thread."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.partition("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
