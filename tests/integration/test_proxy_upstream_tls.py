"""HTTPS upstreams: the certificate is verified against the node's name and SNI is sent;
a name mismatch is a 502, ``tls.verify: false`` accepts it. An upstream that requires a
client certificate from its CA gets the one in ``tls.client_cert`` / ``tls.client_key``;
without one, or with one from another CA, the handshake fails and the answer is 502."""

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
def client_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def mtls_up(ca: trustme.CA, client_ca: trustme.CA) -> Iterator[Upstream]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    client_ca.configure_trust(ctx)
    with Upstream("mtls", tls=ctx) as u:
        yield u


def _client_pair(issuer: trustme.CA) -> tuple[str, str]:
    cert = issuer.issue_cert("edge-client")
    chain = "".join(b.bytes().decode() for b in cert.cert_chain_pems)
    return chain, cert.private_key_pem.bytes().decode()


@pytest.fixture(scope="module")
def edge(
    ca: trustme.CA,
    client_ca: trustme.CA,
    up: Upstream,
    mtls_up: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EdgeProcess]:
    tmp = Path(tmp_path_factory.mktemp("ca"))
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    https = {"scheme": "https", "pass_host": "node"}
    cert_pem, key_pem = _client_pair(client_ca)
    # a client certificate from a CA the upstream does not trust; its key from a file
    other_cert, other_key = _client_pair(trustme.CA())
    other_key_file = tmp / "other-key.pem"
    other_key_file.write_text(other_key)
    mtls = f"localhost:{mtls_up.port}"
    routes = [
        route("ok", "/ok/*", f"localhost:{up.port}", upstream=https),
        route("mismatch", "/bad/*", f"127.0.0.1:{up.port}", upstream=https),
        route(
            "noverify",
            "/noverify/*",
            f"127.0.0.1:{up.port}",
            upstream={**https, "tls": {"verify": False}},
        ),
        route(
            "mtls",
            "/mtls/*",
            mtls,
            upstream={
                **https,
                "tls": {"client_cert": cert_pem, "client_key": "$env://EDGE_TEST_UPSTREAM_KEY"},
            },
        ),
        route("mtls-none", "/mtls-none/*", mtls, upstream=https),
        route(
            "mtls-other",
            "/mtls-other/*",
            mtls,
            upstream={
                **https,
                "tls": {"client_cert": other_cert, "client_key": f"$file://{other_key_file}"},
            },
        ),
    ]
    # the private CA is trusted the way an operator would: SSL_CERT_FILE
    p = EdgeProcess(
        {"routes": routes},
        env={"SSL_CERT_FILE": str(ca_file), "EDGE_TEST_UPSTREAM_KEY": key_pem},
    )
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


def test_client_certificate_presented(edge: EdgeProcess) -> None:
    for _ in range(2):  # a new connection or a pooled one: both carry the identity
        assert httpx.get(edge.url + "/mtls/x").status_code == 200


def test_missing_client_certificate_is_502(edge: EdgeProcess) -> None:
    r = httpx.get(edge.url + "/mtls-none/x")
    assert r.status_code == 502 and r.json() == {"error_msg": "502 Bad Gateway"}


def test_client_certificate_from_untrusted_ca_is_502(edge: EdgeProcess) -> None:
    assert httpx.get(edge.url + "/mtls-other/x").status_code == 502
    # the routes share one node: the failures did not poison the configured identity
    assert httpx.get(edge.url + "/mtls/y").status_code == 200
