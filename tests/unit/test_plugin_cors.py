from edge.plugins.cors import Cors
from tests.support.plugins import build, config_error, request, upstream_response


def run(conf: dict, method: str = "GET", headers: dict | None = None):
    p = build(Cors, conf)
    req = request(method, "/x", headers or {})
    local = p.rewrite(req)
    resp = local if local is not None else upstream_response()
    p.header_filter(req, resp)
    return local, resp


def test_preflight_answered_locally_with_defaults() -> None:
    local, resp = run({}, "OPTIONS", {"Origin": "http://a.test"})
    assert local is not None and local.status == 200
    h = resp.headers
    assert h.get("access-control-allow-origin") == "*"
    assert h.get("access-control-allow-methods") == "*"
    assert h.get("access-control-allow-headers") == "*"
    assert h.get("access-control-max-age") == "5"
    assert "vary" not in h
    assert "access-control-allow-credentials" not in h


def test_listed_origin_echoed_with_vary() -> None:
    conf = {
        "allow_origins": "http://a.test,http://b.test",
        "allow_credential": True,
        "allow_methods": "GET,POST",
        "allow_headers": "X-A",
        "expose_headers": "X-B",
        "max_age": 60,
    }
    _, resp = run(conf, headers={"Origin": "http://b.test"})
    h = resp.headers
    assert h.get("access-control-allow-origin") == "http://b.test"
    assert h.get("vary") == "Origin"
    assert h.get("access-control-allow-credentials") == "true"
    assert h.get("access-control-expose-headers") == "X-B"
    assert h.get("access-control-allow-methods") == "GET,POST"
    assert h.get("access-control-max-age") == "60"


def test_disallowed_origin_gets_no_headers() -> None:
    _, resp = run({"allow_origins": "http://a.test"}, headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in resp.headers
    _, resp = run({"allow_origins": "http://a.test"})
    assert "access-control-allow-origin" not in resp.headers


def test_double_star_echoes_origin_and_request_headers() -> None:
    conf = {"allow_origins": "**", "allow_headers": "**", "allow_methods": "**"}
    hdrs = {"Origin": "http://x.test", "Access-Control-Request-Headers": "X-Foo, X-Bar"}
    _, resp = run(conf, "OPTIONS", hdrs)
    h = resp.headers
    assert h.get("access-control-allow-origin") == "http://x.test"
    assert h.get("access-control-allow-headers") == "X-Foo, X-Bar"
    assert "TRACE" in (h.get("access-control-allow-methods") or "")


def test_origin_regex_is_anchored() -> None:
    conf = {"allow_origins": "http://a.test", "allow_origins_by_regex": [r"https://.*\.good\.test"]}
    _, resp = run(conf, headers={"Origin": "https://api.good.test"})
    assert resp.headers.get("access-control-allow-origin") == "https://api.good.test"
    _, resp = run(conf, headers={"Origin": "https://api.good.test.evil.test"})
    assert "access-control-allow-origin" not in resp.headers


def test_non_options_is_proxied() -> None:
    local, _ = run({}, "POST", {"Origin": "http://a.test"})
    assert local is None


def test_timing_allow_origin() -> None:
    conf = {"allow_origins": "http://a.test", "timing_allow_origins": "http://a.test"}
    _, resp = run(conf, headers={"Origin": "http://a.test"})
    assert resp.headers.get("timing-allow-origin") == "http://a.test"


def test_config_errors() -> None:
    assert config_error(Cors, {"allow_credential": True}).startswith("allow_origins:")
    assert "allow_methods" in config_error(
        Cors, {"allow_credential": True, "allow_origins": "http://a.test"}
    )
    assert config_error(Cors, {"allow_origins_by_regex": ["("]}).startswith(
        "allow_origins_by_regex[0]:"
    )
    assert config_error(Cors, {"allow_origins": "not an origin"}).startswith("allow_origins:")
    assert config_error(Cors, {"bogus": 1}).startswith("schema:")
