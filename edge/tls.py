"""TLS termination: certificates from the bundle's ``ssls``, chosen by SNI.

``compile_tls`` runs when a snapshot is compiled and builds one ``ssl.SSLContext`` per
``ssls`` object, plus a base context whose SNI callback picks among them. A TLS listener
wraps each new connection with the *current* snapshot's ``table.base``, so a reload swaps
certificates for new handshakes without touching open connections.

Selection: an exact SNI match, then the longest ``*.suffix`` wildcard, then the object whose
``snis`` holds ``"*"`` (the default certificate). With no match the handshake fails with
``unrecognized_name``.

Client certificates (mTLS) are per SNI. Python cannot change the verify mode of a
handshake after the SNI callback switched contexts (it only calls ``SSL_set_SSL_CTX``,
which keeps the first context's verify mode), so when any ``ssls`` object asks for client
certificates the base context requests one (``CERT_OPTIONAL``) and OpenSSL verifies a
presented chain against the union of the configured CAs; ``check_client_cert`` then
enforces, per SNI, that a certificate was given and that one of *that* SNI's CAs issued it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

# TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate" minus CBC);
# TLS 1.3 suites are all modern and not configurable through this API.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)


class TlsConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(slots=True)
class CertEntry:
    ssl_id: str
    context: ssl.SSLContext
    client_cas: list[x509.Certificate] = field(default_factory=list)


@dataclass(slots=True)
class TlsTable:
    exact: dict[str, CertEntry]
    # wildcard suffixes (".example.com"), longest first
    wildcards: list[tuple[str, CertEntry]]
    default: CertEntry | None
    wants_client_cert: bool
    # what a TLS listener wraps new connections with (set by compile_tls)
    base: ssl.SSLContext = field(init=False)

    def select(self, server_name: str | None) -> CertEntry | None:
        if server_name:
            name = server_name.lower().rstrip(".")
            hit = self.exact.get(name)
            if hit is not None:
                return hit
            for suffix, entry in self.wildcards:
                # "*.example.com" covers one label: a.example.com, not a.b.example.com
                if name.endswith(suffix) and "." not in name[: -len(suffix)]:
                    return entry
        return self.default


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def load_chain(ctx: ssl.SSLContext, cert_pem: str, key_pem: str, path: str) -> None:
    """Load a PEM certificate chain and key into ``ctx``; TlsConfigError ``(path, reason)``.

    Shared by server certificates (``ssls``) and upstream client certificates.
    """
    # ssl only loads certificates from files: write them to a private directory, load,
    # and remove them at once so the key never stays on disk.
    with tempfile.TemporaryDirectory(prefix="edge-tls-") as d:
        os.chmod(d, 0o700)
        cert_file, key_file = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key_pem)
        with open(cert_file, "w") as f:
            f.write(cert_pem)
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except ssl.SSLError as e:
            reason = (
                "certificate and key do not match"
                if "KEY_VALUES_MISMATCH" in str(e)
                else ("certificate or key is not valid PEM")
            )
            raise TlsConfigError(path, reason) from None


def _load_cas(pem: str, path: str) -> list[x509.Certificate]:
    try:
        cas = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise TlsConfigError(path, "client CA is not valid PEM") from None
    if not cas:
        raise TlsConfigError(path, "client CA bundle is empty")
    return cas


def compile_tls(ssls: list[dict], resolve_secret: Callable[[str, str], str]) -> TlsTable | None:
    """Build the SNI table from ``ssls`` objects (``id``, ``snis``, ``cert``, ``key``,
    ``client{ca, depth}``, ``status``). ``resolve_secret(ref, field_path)`` turns a secret
    reference into the key PEM. Raises TlsConfigError naming the field."""
    if not any(o.get("status", 1) != 0 for o in ssls):
        return None
    exact: dict[str, CertEntry] = {}
    wildcards: dict[str, CertEntry] = {}
    default: CertEntry | None = None
    all_cas: list[x509.Certificate] = []
    for i, obj in enumerate(ssls):
        if obj.get("status", 1) == 0:
            continue
        base = f"ssls[{i}]"
        ctx = _context()
        key_pem = resolve_secret(obj["key"], f"{base}.key")
        load_chain(ctx, obj["cert"], key_pem, f"{base}.cert")
        entry = CertEntry(str(obj.get("id") or i), ctx)
        client = obj.get("client") or {}
        if client.get("ca"):
            entry.client_cas = _load_cas(client["ca"], f"{base}.client.ca")
            all_cas += entry.client_cas
        for j, sni in enumerate(obj.get("snis") or []):
            sni = sni.lower().rstrip(".")
            where = f"{base}.snis[{j}]"
            if sni == "*":
                if default is not None:
                    raise TlsConfigError(where, "a second default certificate ('*')")
                default = entry
            elif sni.startswith("*."):
                if sni[1:] in wildcards:
                    raise TlsConfigError(where, f"duplicate SNI {sni!r}")
                wildcards[sni[1:]] = entry
            elif "*" in sni:
                raise TlsConfigError(where, "a wildcard may only be the first label ('*.x')")
            else:
                if sni in exact:
                    raise TlsConfigError(where, f"duplicate SNI {sni!r}")
                exact[sni] = entry
    bundle = "".join(c.public_bytes(Encoding.PEM).decode() for c in all_cas)
    if bundle:
        for e in {id(e): e for e in [*exact.values(), *wildcards.values(), default] if e}.values():
            e.context.verify_mode = ssl.CERT_OPTIONAL
            e.context.load_verify_locations(cadata=bundle)
    table = TlsTable(
        exact=exact,
        wildcards=sorted(wildcards.items(), key=lambda kv: -len(kv[0])),
        default=default,
        wants_client_cert=bool(all_cas),
    )
    table.base = _base_context(table, bundle)
    return table


def _base_context(table: TlsTable, cas_pem: str) -> ssl.SSLContext:
    """The context every handshake of this snapshot starts with.

    It holds no certificate of its own: the SNI callback moves the handshake to the entry
    chosen from this table. Its verify mode is the one the handshake keeps (see the module
    docstring), so it asks for a client certificate whenever any entry wants one.
    """
    base = _context()
    if cas_pem:
        base.verify_mode = ssl.CERT_OPTIONAL
        base.load_verify_locations(cadata=cas_pem)

    def on_sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        entry = table.select(server_name)
        if entry is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = entry.context
        # the server side's server_hostname stays None: keep the name for check_client_cert
        sslobj.edge_sni = server_name  # type: ignore[attr-defined]
        return None

    base.sni_callback = on_sni
    return base


def check_client_cert(table: TlsTable | None, sslobj: ssl.SSLObject) -> tuple[bool, str | None]:
    """After the handshake: ``(mtls_ok, subject)``. ``mtls_ok`` is False when the chosen
    SNI requires a client certificate that is absent or not issued by its CAs."""
    if table is None or not table.wants_client_cert:
        return True, None
    entry = table.select(getattr(sslobj, "edge_sni", None))
    der = sslobj.getpeercert(binary_form=True)
    if entry is None or not entry.client_cas:
        return True, None
    if not der:
        return False, None
    leaf = x509.load_der_x509_certificate(der)
    for ca in entry.client_cas:
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # any failure (wrong issuer, bad signature, key type) means "not this CA"
            continue
        return True, leaf.subject.rfc4514_string()
    return False, None
