from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from edge.router import Router, normalize_path
from edge.snapshot import compile_snapshot
from tests.support.config import config, make_request, up

UP = up()


def snap(routes: list[dict[str, Any]], **extra: Any):
    return compile_snapshot(config({"routes": routes, **extra}))


def match_id(s, method: str = "GET", uri: str = "/", **kw: Any) -> str | None:
    r = s.router.match(make_request(method, uri, **kw))
    return None if r is None else r.id


def test_exact_uri_beats_prefix_and_longer_prefix_beats_shorter() -> None:
    s = snap(
        [
            {"id": "all", "uri": "/*", "upstream": UP},
            {"id": "api", "uri": "/api/*", "upstream": UP},
            {"id": "v1", "uri": "/api/v1/*", "upstream": UP},
            {"id": "exact", "uri": "/api/v1/users", "upstream": UP},
            {"id": "glob", "uri": "/files*", "upstream": UP},
        ]
    )
    assert match_id(s, uri="/api/v1/users") == "exact"
    assert match_id(s, uri="/api/v1/users/7") == "v1"
    assert match_id(s, uri="/api/v2") == "api"
    assert match_id(s, uri="/api") == "all"  # "/api/*" needs the slash
    assert match_id(s, uri="/filesystem") == "glob"
    assert match_id(s, uri="/") == "all"
    assert match_id(s, uri="/api/v1/users?x=1") == "exact"  # query ignored


def test_no_match_is_none() -> None:
    s = snap([{"id": "a", "uri": "/a", "upstream": UP}])
    req = make_request("GET", "/b")
    assert s.router.match(req) is None
    assert req.route is None


def test_host_tiers_exact_then_wildcard_then_none() -> None:
    s = snap(
        [
            {"id": "any", "uri": "/x", "upstream": UP},
            {"id": "wild", "uri": "/x", "hosts": ["*.example.com"], "upstream": UP},
            {"id": "deep", "uri": "/x", "hosts": ["*.eu.example.com"], "upstream": UP},
            {"id": "exact", "uri": "/x", "host": "API.example.com", "upstream": UP},
            {
                "id": "only-get",
                "uri": "/y",
                "host": "api.example.com",
                "methods": ["GET"],
                "upstream": UP,
            },
            {"id": "wild-y", "uri": "/y", "hosts": ["*.example.com"], "upstream": UP},
        ]
    )
    assert match_id(s, uri="/x", host="api.example.com") == "exact"
    assert match_id(s, uri="/x", host="Api.Example.com:8080") == "exact"
    assert match_id(s, uri="/x", host="www.example.com") == "wild"
    assert match_id(s, uri="/x", host="a.b.example.com") == "wild"
    assert match_id(s, uri="/x", host="a.eu.example.com") == "deep"
    assert match_id(s, uri="/x", host="example.com") == "any"
    assert match_id(s, uri="/x", host="other.org") == "any"
    assert match_id(s, uri="/x", host=None) == "any"
    # the exact-host route does not match POST: fall to the next host tier
    assert match_id(s, "POST", "/y", host="api.example.com") == "wild-y"
    assert match_id(s, "GET", "/y", host="api.example.com") == "only-get"


def test_a_better_host_tier_wins_over_a_better_uri() -> None:
    s = snap(
        [
            {"id": "nohost-exact", "uri": "/a/b", "upstream": UP},
            {"id": "host-prefix", "uri": "/a/*", "host": "h.com", "upstream": UP},
        ]
    )
    assert match_id(s, uri="/a/b", host="h.com") == "host-prefix"
    assert match_id(s, uri="/a/b", host="g.com") == "nohost-exact"


def test_methods_vars_remote_addrs_fall_through() -> None:
    s = snap(
        [
            {"id": "prefix", "uri": "/p/*", "upstream": UP},
            {"id": "post", "uri": "/p/x", "methods": ["post"], "upstream": UP},
            {"id": "beta", "uri": "/p/x", "vars": [["http_x_beta", "==", "1"]], "upstream": UP},
            {"id": "lan", "uri": "/p/x", "remote_addrs": ["10.0.0.0/8", "::1"], "upstream": UP},
            {"id": "one", "uri": "/p/y", "remote_addr": "192.0.2.9", "upstream": UP},
        ]
    )
    assert match_id(s, "POST", "/p/x", client="1.1.1.1") == "post"
    assert match_id(s, "GET", "/p/x", client="1.1.1.1", headers=[("X-Beta", "1")]) == "beta"
    assert match_id(s, "GET", "/p/x", client="10.9.9.9") == "lan"
    assert match_id(s, "GET", "/p/x", client="::1") == "lan"
    assert match_id(s, "GET", "/p/x", client="1.1.1.1") == "prefix"
    assert match_id(s, "GET", "/p/y", client="192.0.2.9") == "one"
    assert match_id(s, "GET", "/p/y", client="not-an-ip") == "prefix"


def test_priority_then_config_order() -> None:
    s = snap(
        [
            {"id": "first", "uri": "/z", "methods": ["GET"], "upstream": UP},
            {"id": "second", "uri": "/z", "methods": ["GET", "POST"], "upstream": UP},
            {"id": "high", "uri": "/z", "methods": ["POST"], "priority": 10, "upstream": UP},
            {"id": "neg", "uri": "/z", "priority": -1, "upstream": UP},
        ]
    )
    assert match_id(s, "GET", "/z") == "first"
    assert match_id(s, "POST", "/z") == "high"
    assert match_id(s, "PUT", "/z") == "neg"


def test_disabled_routes_never_match() -> None:
    s = snap([{"id": "off", "uri": "/", "status": 0, "upstream": UP}])
    assert match_id(s, uri="/") is None
    assert "off" in s.routes


def test_uris_list_and_match_details() -> None:
    s = snap(
        [{"id": "m", "uris": ["/one", "/two/*"], "hosts": ["*.svc.io"], "service_id": "s"}],
        services=[{"id": "s", "upstream": UP}],
    )
    req = make_request("GET", "/two/three", host="a.svc.io")
    route = s.router.match(req)
    assert route is not None and route.id == "m"
    assert req.route is route
    assert req.matched_uri == "/two/*"
    assert req.matched_host == "*.svc.io"
    assert req.service is route.service and req.service.id == "s"
    assert match_id(s, uri="/one", host="b.svc.io") == "m"


def test_service_hosts_apply_when_the_route_has_none() -> None:
    s = snap(
        [{"id": "r", "uri": "/", "service_id": "s"}],
        services=[{"id": "s", "hosts": ["svc.example.com"], "upstream": UP}],
    )
    assert match_id(s, uri="/", host="svc.example.com") == "r"
    assert match_id(s, uri="/", host="other.example.com") is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/a/b", "/a/b"),
        ("/%61dmin/x", "/admin/x"),
        ("/public/../admin/", "/admin/"),
        ("//admin//x", "/admin/x"),
        ("/./a/.", "/a/"),
        ("/..", "/"),
        ("/a/%2e%2e/b", "/b"),
        ("", "/"),
    ],
)
def test_normalize_path(raw: str, normal: str) -> None:
    assert normalize_path(raw) == normal


def test_routing_uses_the_normalized_path() -> None:
    s = snap(
        [
            {"id": "admin", "uri": "/admin/*", "upstream": UP},
            {"id": "public", "uri": "/public/*", "upstream": UP},
        ]
    )
    assert match_id(s, uri="/%61dmin/users") == "admin"
    assert match_id(s, uri="/public/../admin/users") == "admin"
    req = make_request("GET", "/%61dmin/users")
    s.router.match(req)
    assert req.path == "/%61dmin/users"  # the request itself is not rewritten


# -- a large table against a straightforward reference matcher -----------------------


class R:
    """A route as the reference matcher sees it (the router reads the same slots)."""

    def __init__(self, i: int, hosts: tuple[str, ...], uris: tuple[str, ...], methods, prio: int):
        self.id = f"r{i}"
        self.hosts = hosts
        self.uris = uris
        self.methods = methods
        self.vars_match = None
        self.remote_nets: tuple[ipaddress.IPv4Network, ...] | None = None
        self.priority = prio
        self.order = i
        self.service = None


def reference_match(routes: list[R], host: str, path: str, method: str) -> str | None:
    def tier(r: R) -> tuple[int, int] | None:
        if not r.hosts:
            return (2, 0)
        best = None
        for h in r.hosts:
            if h == host:
                return (0, 0)
            if h.startswith("*.") and host.endswith(h[1:]):
                cand = (1, -len(h))
                best = cand if best is None or cand < best else best
        return best

    def uri_rank(r: R) -> tuple[int, int] | None:
        best = None
        for u in r.uris:
            if u.endswith("*"):
                if path.startswith(u[:-1]):
                    cand = (1, -len(u))
                    best = cand if best is None or cand < best else best
            elif u == path:
                return (0, 0)
        return best

    cands = []
    for r in routes:
        t, u = tier(r), uri_rank(r)
        if t is None or u is None or (r.methods is not None and method not in r.methods):
            continue
        cands.append((t, u, -r.priority, r.order, r.id))
    return min(cands)[4] if cands else None


def build_table(n: int, seed: int) -> list[R]:
    rnd = random.Random(seed)
    routes = []
    for i in range(n):
        kind = rnd.random()
        hosts: tuple[str, ...] = ()
        if kind < 0.3:
            hosts = (f"h{rnd.randrange(50)}.example.com",)
        elif kind < 0.45:
            hosts = (f"*.z{rnd.randrange(10)}.example.com",)
        depth = rnd.randrange(1, 4)
        path = "/" + "/".join(f"s{rnd.randrange(20)}" for _ in range(depth))
        uri = path + "/*" if rnd.random() < 0.4 else path
        methods = frozenset({"GET"}) if rnd.random() < 0.2 else None
        routes.append(R(i, hosts, (uri,), methods, rnd.choice([0, 0, 0, 1, 5])))
    return routes


def test_ten_thousand_routes_agree_with_reference() -> None:
    routes = build_table(10_000, seed=7)
    router = Router(routes)
    rnd = random.Random(11)
    checked = 0
    for _ in range(150):
        host = rnd.choice(
            [f"h{rnd.randrange(60)}.example.com", f"a.z{rnd.randrange(12)}.example.com", "x.org"]
        )
        path = "/" + "/".join(f"s{rnd.randrange(22)}" for _ in range(rnd.randrange(1, 5)))
        method = rnd.choice(["GET", "POST"])
        req = make_request(method, path, host=host)
        got = router.match(req)
        want = reference_match(routes, host, path, method)
        assert (got.id if got else None) == want, (host, path, method)
        checked += want is not None
    assert checked > 50  # the sample really exercises matches
