"""The four plugins of plugins_wasm/, built from source, through the real gateway.

One `edge run` process serves routes that use each plugin with different
configurations; a real upstream (tests/support/upstream.py) echoes what reached it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import EdgeProcess, http_get, wait_until
from tests.support.upstream import Upstream
from tests.support.wasm_build import plugin

SECRET = "gateway-test-secret-0123"
PLUGINS = ("request-guard", "json-redact", "signed-request", "form-to-json")


def wasm_entries(dest: Path) -> list[dict]:
    out = []
    for i, name in enumerate(PLUGINS):
        data = plugin(name).read_bytes()
        (dest / f"{name}.wasm").write_bytes(data)
        out.append(
            {
                "name": f"acme/{name}",
                "file": f"{name}.wasm",
                "sha256": hashlib.sha256(data).hexdigest(),
                "tenant": "acme",
                "priority": 1000 - i,
                "failure_policy": "fail_closed",
                "limits": {"max_body_bytes": 1 << 20, "cpu_ms_per_call": 200},
            }
        )
    return out


def route(rid: str, plugins: dict) -> dict:
    return {
        "id": rid,
        "uri": f"/{rid}/*",
        "upstream_id": "app",
        "plugins": {f"acme/{k}": {"conf": v} for k, v in plugins.items()},
    }


@pytest.fixture(scope="module")
def gw() -> Iterator[tuple[EdgeProcess, Upstream]]:
    with Upstream("app") as up:
        cfg = {
            "tenants": [{"id": "acme", "limits": {"memory_mb": 64}}],
            "upstreams": [{"id": "app", "nodes": {up.addr: 1}}],
            "routes": [
                route("guard", {"request-guard": {}}),
                route("monitor", {"request-guard": {"mode": "monitor", "tag_header": "x-guard"}}),
                route(
                    "guard-body",
                    {
                        "request-guard": {
                            "inspect_body": True,
                            "allowed_methods": ["GET", "POST"],
                            "block_status": 400,
                            "block_body": "no",
                        }
                    },
                ),
                route(
                    "redact",
                    {"json-redact": {"paths": ["upstream", "headers[0]"], "max_body_bytes": 65536}},
                ),
                route(
                    "signed",
                    {
                        "signed-request": {
                            "keys": {"acme": SECRET},
                            "signed_headers": ["content-type"],
                        }
                    },
                ),
                route("form", {"form-to-json": {"max_body_bytes": 65536}}),
                route(
                    "chain",
                    {
                        "request-guard": {"inspect_body": True},
                        "form-to-json": {},
                        "json-redact": {"paths": ["upstream"]},
                    },
                ),
            ],
        }
        p = EdgeProcess(cfg)
        cfg["wasm_plugins"] = wasm_entries(p.tmp)
        p.write_config(cfg)
        with p:
            yield p, up


def call(
    p: EdgeProcess, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def echoed(body: bytes) -> dict:
    doc = json.loads(body)
    doc["hdrs"] = {k.lower(): v.strip() for k, v in doc["headers"]}
    return doc


def test_request_guard(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    assert call(p, "GET", "/guard/users/1?sort=name")[0] == 200
    status, _h, body = call(p, "GET", "/guard/x?id=1%27%20or%20%271%27=%271")
    assert (status, body) == (403, b"request blocked\n")
    # the router normalises the path itself; a traversal in the query reaches the guard
    assert call(p, "GET", "/guard/file?name=..%2f..%2fetc%2fpasswd")[0] == 403
    status, _h, body = call(p, "GET", "/monitor/x?q=%3Cscript%3E")
    assert status == 200 and echoed(body)["hdrs"]["x-guard"] == "rule=xss"
    assert call(p, "DELETE", "/guard-body/x")[0] == 405
    assert call(p, "POST", "/guard-body/x", body=b"a=<script>")[:3:2] == (400, b"no")
    status, _h, body = call(p, "POST", "/guard-body/x", body=b"a=hello")
    assert status == 200 and echoed(body)["body"] == "a=hello"
    assert "request-guard: blocked rule=sql_injection" in p.log()


def test_json_redact(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    status, h, body = call(p, "GET", "/redact/doc", {"X-First": "1"})
    assert status == 200
    doc = json.loads(body)
    assert doc["upstream"] == "***" and doc["headers"][0] == "***"
    assert doc["method"] == "GET" and len(doc["headers"]) > 1
    assert "content-length" not in h or int(h["content-length"]) == len(body)
    # not JSON: streamed through untouched, however large
    status, _h, body = call(p, "GET", "/redact/stream?n=3000000")
    assert status == 200 and len(body) == 3_000_000
    # a JSON response over the plugin's buffer limit is refused, not leaked
    status, _h, body = call(p, "POST", "/redact/big", body=b"x" * 100_000)
    assert status in (502, 200) and b'"upstream": "app"' not in body


def signed_headers(method: str, path: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    text = f"{method}\n{path}\n{ts}\ncontent-type:application/json\n"
    text += hashlib.sha256(body).hexdigest()
    sig = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Edge-Timestamp": ts,
        "X-Edge-Signature": sig,
        "X-Edge-Key-Id": "acme",
    }


def test_signed_request(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    body = json.dumps({"amount": 10}).encode() * 50
    status, _h, got = call(
        p, "POST", "/signed/pay?x=1", signed_headers("POST", "/signed/pay?x=1", body), body
    )
    assert status == 200 and echoed(got)["body"] == body.decode()
    hs = signed_headers("POST", "/signed/pay", body)
    status, h, got = call(p, "POST", "/signed/pay", hs, body + b" ")
    assert status == 401 and b"signature mismatch" in got
    assert h["www-authenticate"].startswith("HMAC-SHA256")
    status, _h, _b = call(
        p,
        "POST",
        "/signed/pay",
        signed_headers("POST", "/signed/pay", body, "wrong-secret-123456"),
        body,
    )
    assert status == 401
    assert call(p, "GET", "/signed/pay")[0] == 401


def test_form_to_json(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _h, body = call(p, "POST", "/form/submit", form, b"a=1&b=two+words&a=3")
    doc = echoed(body)
    assert status == 200 and json.loads(doc["body"]) == {"a": ["1", "3"], "b": "two words"}
    assert doc["hdrs"]["content-type"] == "application/json"
    assert int(doc["hdrs"]["content-length"]) == len(doc["body"])
    status, _h, body = call(p, "POST", "/form/submit", form, b"a=%zz")
    assert status == 400 and b"bad percent escape" in body
    status, _h, _b = call(p, "POST", "/form/submit", form, b"a=" + b"x" * 70_000)
    assert status == 413
    status, _h, body = call(p, "POST", "/form/raw", {"Content-Type": "text/plain"}, b"a=1")
    assert status == 200 and echoed(body)["body"] == "a=1"


def test_plugins_chain_on_one_route(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _h, body = call(p, "POST", "/chain/x", form, b"q=hello")
    doc = json.loads(body)
    assert status == 200 and doc["upstream"] == "***" and json.loads(doc["body"]) == {"q": "hello"}
    assert call(p, "POST", "/chain/x", form, b"q=%3Cscript%3E")[0] == 403


def test_guest_metrics_are_exported(gw: tuple[EdgeProcess, Upstream]) -> None:
    p, _up = gw
    call(p, "GET", "/guard/x?q=<script>")

    def blocked() -> list[str]:
        text = http_get(p.admin_url + "/metrics")[1].decode()
        prefix = "edge_wasm_acme_request_guard_blocked"
        return [ln for ln in text.splitlines() if ln.startswith(prefix)]

    # metrics reach /metrics when the worker flushes them: poll
    wait_until(lambda: bool(blocked()), 10, "the guest's metric")
    lines = blocked()
    assert 'tenant="acme"' in lines[0] and float(lines[0].split()[-1]) >= 1


def test_a_rejected_plugin_configuration_names_plugin_and_field(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    cfg = {
        "tenants": [{"id": "acme"}],
        "upstreams": [{"id": "app", "nodes": {"127.0.0.1:9": 1}}],
        "routes": [route("guard", {"request-guard": {"mode": "strict"}})],
        "wasm_plugins": wasm_entries(tmp_path),
    }
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run(
        [sys.executable, "-m", "edge", "validate", str(tmp_path / "edge.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "acme/request-guard" in out and "config field 'mode'" in out, out
    shutil.rmtree(tmp_path, ignore_errors=True)
