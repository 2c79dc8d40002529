"""cors (with a real browser), uri-blocker, ip-restriction with real-ip, csrf."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.plugins import Gateway, start_gateway
from tests.support.plugins_browser import CHROMIUM, PageServer, dump_dom
from tests.support.procs import wait_until


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    with PageServer() as p:
        yield p


@pytest.fixture(scope="module")
def gw(pages: PageServer) -> Iterator[Gateway]:
    routes = [
        {
            "id": "cors-ok",
            "uri": "/cors/ok",
            "plugins": {
                "cors": {
                    "allow_origins": f"http://a.test,{pages.origin}",
                    "allow_methods": "GET,PUT",
                    "allow_headers": "X-Custom",
                    "expose_headers": "X-Upstream",
                    "max_age": 30,
                    "allow_credential": True,
                }
            },
        },
        {
            "id": "cors-deny",
            "uri": "/cors/deny",
            "plugins": {"cors": {"allow_origins": "http://b.test"}},
        },
        {"id": "cors-any", "uri": "/cors/any", "plugins": {"cors": {}}},
        {
            "id": "cors-echo",
            "uri": "/cors/echo",
            "plugins": {
                "cors": {"allow_origins": "**", "allow_headers": "**", "allow_methods": "**"}
            },
        },
        {
            "id": "cors-rx",
            "uri": "/cors/rx",
            "plugins": {
                "cors": {
                    "allow_origins": "http://x.test",
                    "allow_origins_by_regex": [r"https://[a-z]+\.good\.test"],
                }
            },
        },
        {
            "id": "ub",
            "uri": "/ub/*",
            "plugins": {
                "uri-blocker": {
                    "block_rules": [r"root\.exe", "^/ub/admin"],
                    "rejected_msg": "access is not allowed",
                }
            },
        },
        {
            "id": "ub-ci",
            "uri": "/ubci/*",
            "plugins": {
                "uri-blocker": {
                    "block_rules": ["SECRET"],
                    "case_insensitive": True,
                    "rejected_code": 410,
                }
            },
        },
        {
            "id": "ip-white",
            "uri": "/ip/white",
            "plugins": {"ip-restriction": {"whitelist": ["127.0.0.0/24"]}},
        },
        {
            "id": "ip-black",
            "uri": "/ip/black",
            "plugins": {
                "ip-restriction": {
                    "blacklist": ["127.0.0.1", "::1"],
                    "message": "blocked here",
                    "response_code": 404,
                }
            },
        },
        {
            "id": "ip-real",
            "uri": "/ip/real",
            "plugins": {
                "real-ip": {
                    "source": "http_x_forwarded_for",
                    "trusted_addresses": ["127.0.0.1"],
                    "recursive": True,
                },
                "ip-restriction": {"whitelist": ["10.0.0.0/8", "2001:db8::/32"]},
            },
        },
        {
            "id": "real-tcip",
            "uri": "/real/tcip",
            "plugins": {
                "real-ip": {"source": "http_true_client_ip"},
                "ip-restriction": {"blacklist": ["192.0.2.66"]},
            },
        },
        {
            "id": "csrf",
            "uri": "/csrf",
            "plugins": {"csrf": {"key": "edge-csrf-key", "expires": 60}},
        },
    ]
    yield from start_gateway(routes)


def test_cors_preflight_fields(gw: Gateway, pages: PageServer) -> None:
    r = gw.request(
        "OPTIONS",
        "/cors/ok",
        headers={"Origin": "http://a.test", "Access-Control-Request-Method": "PUT"},
    )
    assert r.status_code == 200 and r.content == b""
    h = r.headers
    assert h["access-control-allow-origin"] == "http://a.test"
    assert h["access-control-allow-methods"] == "GET,PUT"
    assert h["access-control-allow-headers"] == "X-Custom"
    assert h["access-control-expose-headers"] == "X-Upstream"
    assert h["access-control-max-age"] == "30"
    assert h["access-control-allow-credentials"] == "true"
    assert h["vary"] == "Origin"
    # the preflight never reached the upstream
    assert not any(q["method"] == "OPTIONS" for q in gw.up.requests)


def test_cors_actual_any_echo_regex(gw: Gateway) -> None:
    r = gw.get("/cors/any", headers={"Origin": "http://z.test"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert "vary" not in r.headers
    r = gw.request(
        "OPTIONS",
        "/cors/echo",
        headers={"Origin": "http://q.test", "Access-Control-Request-Headers": "X-A, X-B"},
    )
    assert r.headers["access-control-allow-origin"] == "http://q.test"
    assert r.headers["access-control-allow-headers"] == "X-A, X-B"
    r = gw.get("/cors/rx", headers={"Origin": "https://api.good.test"})
    assert r.headers["access-control-allow-origin"] == "https://api.good.test"
    r = gw.get("/cors/rx", headers={"Origin": "https://api.good.test.evil"})
    assert "access-control-allow-origin" not in r.headers
    r = gw.get("/cors/deny", headers={"Origin": "http://a.test"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


PAGE = """<!doctype html><html><body><div id="out">pending</div><script>
var GW = %s, out = [];
function call(path) {
  var x = new XMLHttpRequest();
  x.open("PUT", GW + path, false);
  x.setRequestHeader("X-Custom", "1");
  try { x.send("hello"); return x; } catch (e) { return null; }
}
var ok = call("/cors/ok");
out.push(ok ? ("ok:" + ok.status + ":" + ok.getResponseHeader("X-Upstream") + ":" +
               JSON.parse(ok.responseText).method) : "ok:blocked");
var deny = call("/cors/deny");
out.push(deny ? ("deny:" + deny.status) : "deny:blocked");
document.getElementById("out").textContent = out.join("|");
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_cors_from_real_chromium(gw: Gateway, pages: PageServer) -> None:
    pages.pages["/cors.html"] = PAGE % json.dumps(gw.edge.url)
    before = len(gw.up.requests)
    dom = dump_dom(pages.origin + "/cors.html")
    # the allowed cross-origin PUT went through (preflight + request), the exposed
    # header was readable; the other origin's preflight was refused by the browser
    assert '<div id="out">ok:200:up:PUT|deny:blocked</div>' in dom, dom
    methods = [(q["method"], q["path"]) for q in gw.up.requests[before:]]
    assert methods == [("PUT", "/cors/ok")]  # preflights answered by the gateway
    for path in ("/cors/ok", "/cors/deny"):
        line = f'"method":"OPTIONS","host":"127.0.0.1","path":"{path}","status":200'
        wait_until(lambda line=line: line in gw.edge.log(), 10, f"preflight of {path} logged")


def test_uri_blocker(gw: Gateway) -> None:
    assert gw.get("/ub/fine").status_code == 200
    r = gw.get("/ub/x/root.exe")
    assert r.status_code == 403 and r.json() == {"error_msg": "access is not allowed"}
    assert gw.get("/ub/x?file=root.exe").status_code == 403  # the query string counts
    assert gw.get("/ub/admin/panel").status_code == 403
    r = gw.get("/ubci/a/secret")
    assert r.status_code == 410 and r.content == b""


def test_ip_restriction_and_real_ip(gw: Gateway) -> None:
    assert gw.get("/ip/white").status_code == 200
    r = gw.get("/ip/black")
    assert r.status_code == 404 and r.json() == {"message": "blocked here"}
    r = gw.get("/ip/real")
    assert r.status_code == 403 and r.json() == {"message": "Your IP address is not allowed"}
    xff = {"X-Forwarded-For": "8.8.8.8, 10.1.2.3"}
    assert gw.get("/ip/real", headers=xff).status_code == 200
    assert gw.get("/ip/real", headers={"X-Forwarded-For": "2001:db8::5"}).status_code == 200
    # recursive with only 127.0.0.1 trusted: the right-most untrusted hop is the client
    assert gw.get("/ip/real", headers={"X-Forwarded-For": "10.1.2.3, 8.8.8.8"}).status_code == 403
    assert gw.get("/ip/real", headers={"X-Forwarded-For": "not-an-ip"}).status_code == 403
    assert gw.get("/real/tcip", headers={"True-Client-IP": "192.0.2.66"}).status_code == 403
    assert gw.get("/real/tcip", headers={"True-Client-IP": "192.0.2.67"}).status_code == 200
    # the access log carries the real client address
    wait_until(lambda: '"client":"192.0.2.67"' in gw.edge.log(), 10, "access log line")


def test_csrf_double_submit(gw: Gateway) -> None:
    r = gw.get("/csrf")
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("apisix-csrf-token=") and "path=/;SameSite=Lax;Expires=" in cookie
    token = cookie.split("=", 1)[1].split(";", 1)[0]
    r = gw.request("POST", "/csrf")
    assert r.status_code == 401 and r.json() == {"error_msg": "no csrf token in headers"}
    r = gw.request("POST", "/csrf", headers={"apisix-csrf-token": token})
    assert r.status_code == 401 and r.json() == {"error_msg": "no csrf cookie"}
    r = gw.request(
        "POST", "/csrf", headers={"apisix-csrf-token": token, "Cookie": "apisix-csrf-token=other"}
    )
    assert r.status_code == 401 and r.json() == {"error_msg": "csrf token mismatch"}
    bad = "eyJyYW5kb20iOjEsImV4cGlyZXMiOjEsInNpZ24iOiJ4In0="
    r = gw.request(
        "POST", "/csrf", headers={"apisix-csrf-token": bad, "Cookie": f"apisix-csrf-token={bad}"}
    )
    assert r.status_code == 401
    assert r.json() == {"error_msg": "Failed to verify the csrf token signature"}
    r = gw.request(
        "POST",
        "/csrf",
        headers={"apisix-csrf-token": token, "Cookie": f"apisix-csrf-token={token}"},
    )
    assert r.status_code == 200
