"""TLS termination through the real gateway: SNI selection, wildcard, default and unknown
names, the protocol floor, certificate swap on reload with a connection open, and mTLS,
with curl, openssl s_client and Python's ssl as clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from tests.support.procs import EdgeProcess, free_port, wait_until
from tests.support.upstream import Upstream


class Certs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ca = trustme.CA()
        self.client_ca = trustme.CA()
        self.ca_file = tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.n = 0

    def ssl_obj(self, *names: str, snis: list[str] | None = None, **extra: object) -> dict:
        cert = self.ca.issue_cert(*names)
        self.n += 1
        key_file = self.tmp / f"key{self.n}.pem"
        cert.private_key_pem.write_to_path(str(key_file))
        os.chmod(key_file, 0o600)
        return {
            "id": f"cert{self.n}",
            "snis": snis if snis is not None else list(names),
            "cert": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
            "key": f"$file://{key_file}",
            **extra,
        }


def _config(up: Upstream, ssls: list[dict]) -> dict:
    return {
        "routes": [
            {
                "id": "r",
                "uri": "/*",
                "upstream": {"nodes": [{"host": "127.0.0.1", "port": up.port, "weight": 1}]},
            }
        ],
        "ssls": ssls,
    }


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with Upstream("tls") as u:
        yield u


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("tls"))


def _ssls(certs: Certs) -> list[dict]:
    pem = certs.client_ca.cert_pem.bytes().decode()
    return [
        certs.ssl_obj("api.example.com"),
        certs.ssl_obj("*.example.com"),
        certs.ssl_obj("mtls.example.net", client={"ca": pem}),
        certs.ssl_obj("default.example.org", snis=["*"]),
    ]


@pytest.fixture(scope="module")
def edge(up: Upstream, certs: Certs) -> Iterator[EdgeProcess]:
    p = EdgeProcess(_config(up, _ssls(certs)))
    p.tls_port = free_port()  # type: ignore[attr-defined]
    p.node = {
        "listeners": [
            {"address": f"127.0.0.1:{p.port}"},
            {"address": f"127.0.0.1:{p.tls_port}", "tls": True},  # type: ignore[attr-defined]
        ]
    }
    with p:
        yield p


def _served_cert(port: int, sni: str | None, ca: Path) -> x509.Certificate:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            der = s.getpeercert(binary_form=True)
            assert s.selected_alpn_protocol() in (None, "http/1.1")
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _dns(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("sni", "served"),
    [
        ("api.example.com", "api.example.com"),
        ("shop.example.com", "*.example.com"),
        ("unknown.test", "default.example.org"),
        (None, "default.example.org"),
    ],
)
def test_sni_selection(edge: EdgeProcess, certs: Certs, sni: str | None, served: str) -> None:
    cert = _served_cert(edge.tls_port, sni, certs.ca_file)  # type: ignore[attr-defined]
    assert _dns(cert) == [served]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_over_tls(edge: EdgeProcess, certs: Certs) -> None:
    port = edge.tls_port  # type: ignore[attr-defined]
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(certs.ca_file),
            "--resolve",
            f"api.example.com:{port}:127.0.0.1",
            f"https://api.example.com:{port}/hello",
            "-w",
            "\n%{http_code} %{scheme}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = out.stdout.rpartition("\n")
    assert status == "200 HTTPS"
    echo = json.loads(body)
    assert echo["path"] == "/hello"
    assert {k.lower(): v.strip() for k, v in echo["headers"]}["x-forwarded-proto"] == "https"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_s_client_sees_tls13_and_the_wildcard(edge: EdgeProcess, certs: Certs) -> None:
    port = edge.tls_port  # type: ignore[attr-defined]
    out = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "www.example.com",
            "-CAfile",
            str(certs.ca_file),
            "-alpn",
            "http/1.1",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    text = out.stdout + out.stderr
    assert "New, TLSv1.3" in text
    assert "ALPN protocol: http/1.1" in text
    assert "Verify return code: 0 (ok)" in text
    assert (
        "*.example.com"
        in subprocess.run(
            ["openssl", "x509", "-noout", "-ext", "subjectAltName"],
            input=text[text.index("-----BEGIN CERTIFICATE-----") :],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    )


def test_tls_1_1_is_refused(edge: EdgeProcess, certs: Certs) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1  # TLS 1.0/1.1 on purpose: the server must refuse
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", edge.tls_port), timeout=10) as raw:  # type: ignore[attr-defined]
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            ctx.wrap_socket(raw, server_hostname="api.example.com")


def test_unknown_sni_without_default(up: Upstream, certs: Certs) -> None:
    p = EdgeProcess(_config(up, [certs.ssl_obj("only.example.com")]))
    tls_port = free_port()
    p.node = {
        "listeners": [
            {"address": f"127.0.0.1:{p.port}"},
            {"address": f"127.0.0.1:{tls_port}", "tls": True},
        ]
    }
    with p:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _served_cert(tls_port, "other.example.com", certs.ca_file)
        assert _dns(_served_cert(tls_port, "only.example.com", certs.ca_file)) == [
            "only.example.com"
        ]
        assert "no certificate for the requested SNI" in p.log()


def _request(s: ssl.SSLSocket, path: str) -> bytes:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: api.example.com\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += s.recv(65536)
    return head.split(b"\r\n")[0]


def test_certificate_swap_on_reload_keeps_open_connections(up: Upstream, certs: Certs) -> None:
    first = certs.ssl_obj("swap.example.com")
    p = EdgeProcess(_config(up, [first]))
    tls_port = free_port()
    p.node = {
        "listeners": [
            {"address": f"127.0.0.1:{p.port}"},
            {"address": f"127.0.0.1:{tls_port}", "tls": True},
        ]
    }
    with p:
        old_serial = _served_cert(tls_port, "swap.example.com", certs.ca_file).serial_number
        ctx = ssl.create_default_context(cafile=str(certs.ca_file))
        with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="swap.example.com") as kept:
                assert _request(kept, "/before") == b"HTTP/1.1 200 OK"
                p.write_config(_config(up, [certs.ssl_obj("swap.example.com")]))
                assert p.proc is not None
                p.proc.send_signal(1)  # SIGHUP
                wait_until(
                    lambda: (
                        _served_cert(tls_port, "swap.example.com", certs.ca_file).serial_number
                        != old_serial
                    ),
                    20,
                    "the new certificate",
                )
                # the connection made before the swap still serves requests
                assert _request(kept, "/after") == b"HTTP/1.1 200 OK"
                assert (
                    x509.load_der_x509_certificate(
                        kept.getpeercert(binary_form=True)  # type: ignore[arg-type]
                    ).serial_number
                    == old_serial
                )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_mtls_accepted_and_refused(edge: EdgeProcess, certs: Certs, tmp_path: Path) -> None:
    port = edge.tls_port  # type: ignore[attr-defined]
    good = certs.client_ca.issue_cert("client.example.net")
    stranger = trustme.CA().issue_cert("client.example.net")
    files = {}
    for name, cert in (("good", good), ("stranger", stranger)):
        c, k = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(str(c))
        cert.private_key_pem.write_to_path(str(k))
        files[name] = ["--cert", str(c), "--key", str(k)]

    def curl(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "curl",
                "-sS",
                "--cacert",
                str(certs.ca_file),
                "--resolve",
                f"mtls.example.net:{port}:127.0.0.1",
                f"https://mtls.example.net:{port}/m",
                "-w",
                "\n%{http_code}",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    ok = curl(*files["good"])
    assert ok.returncode == 0 and ok.stdout.endswith("\n200")
    missing = curl()
    assert missing.stdout.endswith("\n400") and "client certificate" in missing.stdout
    assert curl(*files["stranger"]).returncode != 0  # the handshake itself fails
    # the other names on the listener ask for no certificate
    other = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(certs.ca_file),
            "--resolve",
            f"api.example.com:{port}:127.0.0.1",
            f"https://api.example.com:{port}/",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other.stdout == "200"


def test_proxy_protocol_in_front_of_tls(up: Upstream, certs: Certs) -> None:
    # an NLB with TLS passthrough: the PROXY v2 header comes first, then the handshake
    from edge.http.proxy_protocol import build_v2

    p = EdgeProcess(_config(up, [certs.ssl_obj("pp.example.com")]))
    port = free_port()
    p.node = {
        "listeners": [
            {"address": f"127.0.0.1:{p.port}"},
            {
                "address": f"127.0.0.1:{port}",
                "tls": True,
                "proxy_protocol": "v2",
                "trusted_proxies": ["127.0.0.1/32"],
            },
        ]
    }
    with p:
        ctx = ssl.create_default_context(cafile=str(certs.ca_file))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(build_v2("198.51.100.20", "10.0.0.1", 50000, 443))
            with ctx.wrap_socket(raw, server_hostname="pp.example.com") as s:
                s.sendall(b"GET /pp HTTP/1.1\r\nHost: pp.example.com\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        echo = {k.lower(): v.strip() for k, v in json.loads(body)["headers"]}
        assert echo["x-real-ip"] == "198.51.100.20"
        assert echo["x-forwarded-proto"] == "https"
