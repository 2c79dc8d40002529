"""Helpers for plugin tests: real ``Request`` objects, compiled plugins, consumers.

Nothing here is a mock: requests are ``edge.context.Request`` built from real
``Headers``/``ConnInfo``, plugin configs go through msgspec exactly as the registry
decodes them, and consumers are plain objects with the attributes plugins read.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from edge.context import ConnInfo, Request, Response
from edge.counters import CounterTable
from edge.http.headers import Headers
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError


class Consumer:
    def __init__(
        self, username: str, custom_id: str | None = None, group_id: str | None = None
    ) -> None:
        self.username = username
        self.custom_id = custom_id
        self.group_id = group_id
        self.credentials: dict[str, Any] = {}


class Obj:
    """A route or service as plugins see it: an ``id`` and a ``name``."""

    def __init__(self, id: str, name: str | None = None) -> None:
        self.id = id
        self.name = name


def request(
    method: str = "GET",
    uri: str = "/",
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
    client: str = "127.0.0.1",
    route: Any = None,
    body: bytes | None = None,
) -> Request:
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(n.lower() == "host" for n, _ in items):
        items.append(("Host", "example.com"))
    conn = ConnInfo(client, 40000, "127.0.0.1", 9080)
    req = Request(method, uri, "1.1", Headers(items), conn, time.monotonic(), time.time())
    req.route = route if route is not None else Obj("r1")
    if body is not None:
        req.body = body
    return req


def env(
    consumers: dict[str, list[tuple[Consumer, dict[str, Any]]]] | None = None,
    shared: dict[str, Any] | None = None,
) -> CompileEnv:
    """A compile env; ``consumers`` maps an auth plugin class name to credentials."""
    from edge.plugins import registry

    sh = shared if shared is not None else {"counter_table": CounterTable(None, slots=1024)}
    e = CompileEnv(shared=sh)
    all_consumers: dict[str, Any] = {}
    for name, pairs in (consumers or {}).items():
        cls = registry.plugin_class(registry.get(name))
        assert cls is not None and cls.ConsumerConfig is not None
        decoded = []
        for c, raw in pairs:
            conf = msgspec.convert(raw, cls.ConsumerConfig)
            c.credentials[name] = conf
            decoded.append((c, conf))
            all_consumers[c.username] = c
        e.consumer_indexes[name] = cls.index_consumers(decoded, e)
    e.consumers = all_consumers
    return e


def build(
    cls: type[Plugin], raw: dict[str, Any] | None = None, env_: CompileEnv | None = None
) -> Any:
    conf = msgspec.convert(raw or {}, cls.Config) if cls.Config is not None else None
    return cls(conf, env_ or env())


def config_error(cls: type[Plugin], raw: dict[str, Any], env_: CompileEnv | None = None) -> str:
    """The ``field: message`` a bad config fails with (schema or compile)."""
    try:
        build(cls, raw, env_)
    except PluginConfigError as e:
        return f"{e.field}: {e.message}"
    except msgspec.ValidationError as e:
        return f"schema: {e}"
    raise AssertionError(f"config {raw!r} was accepted")


def json_body(resp: Response) -> Any:
    import json

    assert resp.body is not None
    return json.loads(resp.body)


def upstream_response(status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, Headers(headers or [("Content-Type", "text/plain")]))


# -- integration: the real gateway in front of the real test upstream -------------------


class Gateway:
    """A running ``edge run`` (``edge``) in front of ``tests.support.upstream.Upstream``."""

    def __init__(self, edge_proc: Any, upstream: Any) -> None:
        self.edge = edge_proc
        self.up = upstream
        import httpx

        self.http = httpx.Client(base_url=edge_proc.url, timeout=10.0)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        # tests send cookies explicitly; a jar would replay Set-Cookie from earlier answers
        self.http.cookies.clear()
        return self.http.request(method, path, **kw)

    def upstream_headers(self, resp: Any) -> dict[str, list[str]]:
        """Headers the upstream received, from its JSON echo (lower-case names)."""
        out: dict[str, list[str]] = {}
        for name, value in resp.json()["headers"]:
            out.setdefault(name.lower(), []).append(value.strip())
        return out

    def metrics_text(self) -> str:
        import httpx

        return httpx.get(self.edge.admin_url + "/metrics", timeout=10.0).text


def gateway_config(
    routes: list[dict[str, Any]], upstream_addr: str, **extra: Any
) -> dict[str, Any]:
    cfg_routes = []
    for r in routes:
        r = dict(r)
        if "upstream" not in r and "upstream_id" not in r and "service_id" not in r:
            r["upstream"] = {"nodes": {upstream_addr: 1}}
        cfg_routes.append(r)
    services = []
    for svc in extra.pop("services", []):
        svc = dict(svc)
        svc.setdefault("upstream", {"nodes": {upstream_addr: 1}})
        services.append(svc)
    if services:
        extra["services"] = services
    return {"routes": cfg_routes, **extra}


def start_gateway(routes: list[dict[str, Any]], workers: int = 1, **extra: Any) -> Any:
    """A generator for a module fixture: yields a ``Gateway``, stops everything after."""
    from tests.support.procs import EdgeProcess
    from tests.support.upstream import Upstream

    with Upstream() as up:
        proc = EdgeProcess(gateway_config(routes, up.addr, **extra), workers=workers)
        with proc:
            gw = Gateway(proc, up)
            try:
                yield gw
            finally:
                gw.http.close()


def per_worker_totals(gw: Gateway, metric: str) -> list[float]:
    """Each worker's own total of ``metric`` from its multiprocess file (not the sum)."""
    import glob

    from prometheus_client.mmap_dict import MmapedDict

    totals = []
    for path in glob.glob(str(gw.edge.tmp / "state" / "metrics" / "counter_*.db")):
        total = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(path):
            if f'"{metric}"' in key:
                total += value
        totals.append(total)
    return totals


def fresh_get(url: str, headers: dict[str, str] | None = None) -> Any:
    """One request on a new connection (so requests spread over the workers)."""
    import httpx

    with httpx.Client(timeout=30.0) as c:
        return c.get(url, headers=headers)
