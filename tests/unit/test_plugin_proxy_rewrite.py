import pytest

from edge.plugins.proxy_rewrite import ProxyRewrite, lua_replacement
from tests.support.plugins import build, config_error, request


def rewrite(conf: dict, uri: str = "/old/path?a=1", **kw):
    req = request(uri=uri, **kw)
    assert build(ProxyRewrite, conf).rewrite(req) is None
    return req


def test_uri_template_keeps_query() -> None:
    req = rewrite({"uri": "/new/$arg_a"})
    assert req.uri == "/new/1?a=1"
    req = rewrite({"uri": "/n?x=2"})
    assert req.uri == "/n?x=2&a=1"
    req = rewrite({"uri": "/p"}, uri="/old")
    assert req.uri == "/p"


def test_client_value_cannot_break_the_request_line() -> None:
    req = rewrite({"uri": "/u/$http_x_v"}, headers={"X-V": "a b\r\nX: y"})
    assert " " not in req.uri and "\r" not in req.uri and "\n" not in req.uri


def test_regex_uri_pairs() -> None:
    conf = {"regex_uri": ["^/nomatch", "/x", r"^/old/(.*)", "/v2/$1", "^/o", "/never"]}
    assert rewrite(conf).uri == "/v2/path?a=1"
    assert rewrite({"regex_uri": ["^/zzz", "/x"]}).uri == "/old/path?a=1"
    assert lua_replacement("/a/${1}/$2\\") == "/a/\\g<1>/\\g<2>\\\\"


def test_method_host_headers() -> None:
    conf = {
        "method": "POST",
        "host": "up.internal",
        "headers": {
            "add": {"X-Added": "$remote_addr"},
            "set": {"X-Set": "v-$arg_a", "X-Api": "fixed"},
            "remove": ["X-Drop", "X-Api"],
        },
    }
    req = rewrite(conf, headers={"X-Drop": "1", "X-Set": "old", "X-Added": "first"})
    h = req.headers
    assert req.method == "POST" and h.get("host") == "up.internal" and req.host == "up.internal"
    assert h.get_all("x-added") == ["first", "127.0.0.1"]
    assert h.get_all("x-set") == ["v-1"]
    assert "x-drop" not in h and "x-api" not in h
    # the deprecated flat form sets headers
    assert rewrite({"headers": {"X-Flat": "1"}}).headers.get("x-flat") == "1"


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"regex_uri": ["(", "/x"]}, "regex_uri[0]"),
        ({"regex_uri": ["^/a"]}, "regex_uri"),
        ({"regex_uri": ["^/a", "/$2"]}, "regex_uri[1]"),
        ({"method": "BREW"}, "method"),
        ({"uri": "no-slash"}, "uri"),
        ({"uri": "/$no_such_var"}, "uri"),
        ({"headers": {"set": {"Bad Name": "x"}}}, "headers.set.Bad Name"),
        ({"headers": {"set": {"X": "a\r\nb"}}}, "headers.set.X"),
        ({"host": "a b"}, "host"),
    ],
)
def test_config_errors(conf: dict, field: str) -> None:
    assert config_error(ProxyRewrite, conf).startswith(field)
