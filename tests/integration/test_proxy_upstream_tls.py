"""HTTPS upstreams: the certificate is verified against the node's name and SNI is sent;
a name mismatch is a 502, ``tls.verify: false`` accepts it."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.procs import EdgeProcess
from tests.support.proxy import route
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def up(ca: trustme.CA) -> Iterator[Upstream]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    with Upstream("tls", tls=ctx) as u:
        yield u


@pytest.fixture(scope="module")
def edge(
    ca: trustme.CA, up: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeProcess]:
    ca_file = Path(tmp_path_factory.mktemp("ca")) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    https = {"scheme": "https", "pass_host": "node"}
    routes = [
        route("ok", "/ok/*", f"localhost:{up.port}", upstream=https),
        route("mismatch", "/bad/*", f"127.0.0.1:{up.port}", upstream=https),
        route(
            "noverify",
            "/noverify/*",
            f"127.0.0.1:{up.port}",
            upstream={**https, "tls": {"verify": False}},
        ),
    ]
    # the private CA is trusted the way an operator would: SSL_CERT_FILE
    p = EdgeProcess({"routes": routes}, env={"SSL_CERT_FILE": str(ca_file)})
    with p:
        yield p


def test_verified_https_upstream(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/ok/x")
    assert r.status_code == 200
    hdrs = {k.lower(): v.strip() for k, v in json.loads(r.content)["headers"]}
    assert hdrs["host"].startswith("localhost:")


def test_certificate_name_mismatch_is_502(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/bad/x")
    assert r.status_code == 502 and r.json() == {"error_msg": "502 Bad Gateway"}


def test_verify_false_accepts_any_certificate(edge: EdgeProcess) -> None:
    assert httpx.get(edge.url + "/noverify/x").status_code == 200
