#!/usr/bin/env python3
"""A tiny demo upstream for the quickstart: answers every request with JSON describing it.

    python3 examples/quickstart/demo_upstream.py [--host 127.0.0.1] [--port 9081]

The reply holds the method, path, query, headers and the size of the body it received,
so `curl` through the gateway shows what edge forwarded (X-Forwarded-For, X-Real-IP...).
Standard library only; HTTP/1.1 keep-alive; one thread per connection.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# the demo reads at most this much of a request body; it only reports the size
MAX_BODY = 16 * 1024 * 1024


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edge-demo-upstream"
    # head and body are separate writes: without this, Nagle + delayed ACK add 40 ms
    disable_nagle_algorithm = True

    def _body_size(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            total = 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                self.rfile.read(size + 2)
                total += size
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large for the demo upstream")
        remaining = length
        while remaining:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return length - remaining

    def _answer(self) -> None:
        try:
            body_size = self._body_size()
        except ValueError:
            self.send_error(400, "bad or oversized request body")
            return
        path, _, query = self.path.partition("?")
        doc = {
            "upstream": "edge quickstart demo",
            "method": self.command,
            "path": path,
            "query": query,
            "headers": {k: v for k, v in self.headers.items()},
            "body_bytes": body_size,
        }
        payload = (json.dumps(doc, indent=2) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("demo-upstream: " + (format % args) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9081)
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), DemoHandler)
    server.daemon_threads = True
    print(f"demo upstream on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
