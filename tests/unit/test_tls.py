"""SNI selection, defaults, wildcards, protocol floor and per-SNI client certificates,
with real handshakes over memory BIOs (no sockets)."""

from __future__ import annotations

import ssl

import pytest
import trustme
from cryptography import x509

from edge.tls import TlsConfigError, check_client_cert, compile_tls


def _ssl(ca: trustme.CA, *names: str, snis: list[str] | None = None, **extra: object) -> dict:
    cert = ca.issue_cert(*names)
    return {
        "id": names[0],
        "snis": snis if snis is not None else list(names),
        "cert": "".join(b.bytes().decode() for b in cert.cert_chain_pems),
        "key": "$test://" + cert.private_key_pem.bytes().decode(),
        **extra,
    }


def _resolve(ref: str, path: str) -> str:
    assert ref.startswith("$test://"), path
    return ref.removeprefix("$test://")


def handshake(
    table, sni: str | None, ca: trustme.CA, *, client_cert=None, max_version=None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    server_ctx = table.base
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client_ctx.check_hostname = False
    if max_version is not None:
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1
        client_ctx.maximum_version = max_version
        client_ctx.set_ciphers("ALL:@SECLEVEL=0")
    if client_cert is not None:
        client_cert.configure_cert(client_ctx)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, obj, out, peer_in in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            data = out.read()
            if data:
                peer_in.write(data)
        if done["c"] and done["s"]:
            return client, server
    raise AssertionError("handshake did not finish")


def served_name(client: ssl.SSLObject) -> str:
    cert = client.getpeercert()
    return next(v for k, v in cert["subjectAltName"] if k == "DNS")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def table(ca: trustme.CA):
    return compile_tls(
        [
            _ssl(ca, "api.example.com"),
            _ssl(ca, "*.example.com"),
            _ssl(ca, "deep.a.example.com"),
            _ssl(ca, "default.invalid", snis=["*"]),
        ],
        _resolve,
    )


@pytest.mark.parametrize(
    ("sni", "served"),
    [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM", "api.example.com"),
        ("www.example.com", "*.example.com"),
        ("deep.a.example.com", "deep.a.example.com"),
        ("x.a.example.com", "default.invalid"),  # a wildcard covers one label only
        ("other.test", "default.invalid"),
        (None, "default.invalid"),
    ],
)
def test_sni_selection(table, ca, sni, served) -> None:
    client, server = handshake(table, sni, ca)
    assert served_name(client) == served
    assert server.selected_alpn_protocol() in (None, "http/1.1")
    assert server.version() in ("TLSv1.2", "TLSv1.3")


def test_unknown_sni_without_default_is_refused(ca) -> None:
    t = compile_tls([_ssl(ca, "only.example.com")], _resolve)
    with pytest.raises(ssl.SSLError, match=r"CALLBACK_FAILED|UNRECOGNIZED_NAME"):
        handshake(t, "nope.example.com", ca)


def test_tls_1_1_is_refused(table, ca) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(table, "api.example.com", ca, max_version=ssl.TLSVersion.TLSv1_1)


def test_a_new_table_serves_new_handshakes(ca) -> None:
    old = compile_tls([_ssl(ca, "one.example.com", snis=["*"])], _resolve)
    c1, _ = handshake(old, "x.test", ca)
    new = compile_tls([_ssl(ca, "two.example.com", snis=["*"])], _resolve)
    c2, _ = handshake(new, "x.test", ca)
    # the connection made before the swap keeps working on its own session
    c1.write(b"ping")
    assert (served_name(c1), served_name(c2)) == ("one.example.com", "two.example.com")


def test_mtls_per_sni(ca) -> None:
    client_ca, other_ca = trustme.CA(), trustme.CA()
    pems = client_ca.cert_pem.bytes().decode()
    t = compile_tls(
        [
            _ssl(ca, "mtls.example.com", client={"ca": pems}),
            _ssl(ca, "open.example.com"),
        ],
        _resolve,
    )
    good = client_ca.issue_cert("client@example.com")
    bad = other_ca.issue_cert("client@example.com")
    _, server = handshake(t, "mtls.example.com", ca, client_cert=good)
    ok, subject = check_client_cert(t, server)
    leaf = x509.load_pem_x509_certificate(good.cert_chain_pems[0].bytes())
    assert (ok, subject) == (True, leaf.subject.rfc4514_string())
    _, server = handshake(t, "mtls.example.com", ca)
    assert check_client_cert(t, server) == (False, None)
    # a cert from an unknown CA fails inside OpenSSL's verification
    with pytest.raises(ssl.SSLError):
        handshake(t, "mtls.example.com", ca, client_cert=bad)
    _, server = handshake(t, "open.example.com", ca)
    assert check_client_cert(t, server) == (True, None)


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda o: o.update(cert="garbage"), "ssls[0].cert", "not valid PEM"),
        (lambda o: o.update(snis=["a.*.com"]), "ssls[0].snis[0]", "first label"),
        (lambda o: o.update(client={"ca": "nope"}), "ssls[0].client.ca", "not valid PEM"),
    ],
)
def test_bad_ssl_objects_name_the_field(ca, mutate, field, message) -> None:
    obj = _ssl(ca, "a.example.com")
    mutate(obj)
    with pytest.raises(TlsConfigError, match=message) as e:
        compile_tls([obj], _resolve)
    assert e.value.field == field


def test_mismatched_key_is_refused(ca) -> None:
    a, b = _ssl(ca, "a.example.com"), _ssl(ca, "b.example.com")
    a["key"] = b["key"]
    with pytest.raises(TlsConfigError, match="do not match"):
        compile_tls([a], _resolve)


def test_duplicate_sni_and_second_default(ca) -> None:
    with pytest.raises(TlsConfigError, match="duplicate SNI"):
        compile_tls([_ssl(ca, "a.example.com"), _ssl(ca, "a.example.com")], _resolve)
    with pytest.raises(TlsConfigError, match="second default"):
        compile_tls([_ssl(ca, "a.test", snis=["*"]), _ssl(ca, "b.test", snis=["*"])], _resolve)
