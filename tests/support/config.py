"""Helpers for the configuration, router and balancer tests: requests without sockets."""

from __future__ import annotations

from typing import Any

from edge.config.model import Config, decode_config
from edge.context import ConnInfo, Request
from edge.http.headers import Headers


def make_request(
    method: str = "GET",
    uri: str = "/",
    *,
    host: str | None = "example.com",
    headers: list[tuple[str, str]] | None = None,
    client: str = "127.0.0.1",
    client_port: int = 40000,
    tls: bool = False,
) -> Request:
    hs = list(headers or [])
    if host is not None and not any(n.lower() == "host" for n, _ in hs):
        hs.insert(0, ("Host", host))
    conn = ConnInfo(client, client_port, "127.0.0.1", 9080)
    conn.tls = tls
    return Request(method, uri, "1.1", Headers(hs), conn, 0.0, 0.0)


def config(raw: dict[str, Any]) -> Config:
    """Decode ``raw`` or fail the test with the problems."""
    cfg, problems = decode_config(raw)
    assert cfg is not None, problems
    return cfg


def up(*nodes: str, **kw: Any) -> dict[str, Any]:
    """An inline upstream spec with ``host:port`` nodes of weight 1."""
    return {"nodes": {n: 1 for n in nodes or ("127.0.0.1:9081",)}, **kw}
