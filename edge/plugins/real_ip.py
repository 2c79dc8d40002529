"""real-ip (APISIX priority 23000): take the client address from a header or variable.

Only a request whose TCP peer (or PROXY-protocol client) is in ``trusted_addresses``
is believed (no list: every peer is trusted, as APISIX). For ``X-Forwarded-For`` the
last address is used, or with ``recursive`` the right-most one that is not itself
trusted (nginx ``real_ip_recursive``). A value that is not an IP address changes
nothing. The result replaces ``req.client_addr``, which every later plugin and the
access log read.
"""

from __future__ import annotations

from socket import AF_INET6, inet_ntop, inet_pton

import msgspec

from edge.context import Request, Response
from edge.plugins import _vars
from edge.plugins.base import CompileEnv, Plugin, PluginConfigError
from edge.plugins.ip_restriction import CidrSet, parse_ip

MAX_SOURCE_LEN = 4096  # longer forwarding chains are ignored whole
# source values remembered with their address: how many (the memory starts over when
# full) and how long each may be (longer ones, rare, are parsed every time), so a client
# sending new values cannot make it hold more than ~1 MiB
PARSED_CACHE_SIZE = 4096
PARSED_VALUE_MAX = 256


class Config(msgspec.Struct, forbid_unknown_fields=True):
    source: str
    trusted_addresses: list[str] | None = None
    recursive: bool = False


def split_host_port(value: str) -> tuple[str, int | None] | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80`` -> (ip, port); None if not an IP."""
    v = value.strip()
    port: int | None = None
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return None
        host, rest = v[1:end], v[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif v.count(":") == 1:
        host, _, p = v.partition(":")
        if not p.isdigit():
            return None
        port = int(p)
    else:
        host = v
    if parse_ip(host) is None:
        return None
    if port is not None and not 0 < port < 65536:
        return None
    return host, port


class RealIp(Plugin):
    name = "real-ip"
    priority = 23000
    Config = Config

    def __init__(self, conf: Config, env: CompileEnv) -> None:
        self.conf = conf
        if not conf.source:
            raise PluginConfigError("source", "must not be empty")
        self.trusted = (
            CidrSet(conf.trusted_addresses, "trusted_addresses") if conf.trusted_addresses else None
        )
        self.xff = conf.source == "http_x_forwarded_for"
        # CloudFront-Viewer-Address is always "ip:port", IPv6 unbracketed
        # ("2001:db8::1:46532"), so the port must be split off at the last colon
        self.ip_port = conf.source == "http_cloudfront_viewer_address"
        if self.xff:
            self.get = lambda r: r.headers.get_joined("x-forwarded-for")
        else:
            self.get = _vars.compile_var(conf.source, "source")
        self.parsed: dict[object, tuple[str, int | None] | tuple[()]] = {}

    def rewrite(self, req: Request) -> Response | None:
        trusted = self.trusted
        if trusted is not None and req.client_addr not in trusted:
            return None
        value = self.get(req)
        if not value or len(value) > MAX_SOURCE_LEN:
            return None
        # the address a value stands for depends on the value alone (and the fixed
        # configuration): clients and proxies repeat theirs, so it is parsed once
        hit = self.parsed.get(value)
        if hit is None:
            hit = self._address(str(value))
            if len(value) <= PARSED_VALUE_MAX:
                if len(self.parsed) >= PARSED_CACHE_SIZE:
                    self.parsed.clear()
                self.parsed[value] = hit
        if hit:
            req.client_addr = hit[0]
            if hit[1] is not None:
                req.client_port = hit[1]
        return None

    def _address(self, value: str) -> tuple[str, int | None] | tuple[()]:
        """(address, port or None) that ``value`` gives, or () when it is not one."""
        trusted = self.trusted
        if self.xff:
            hops = [h.strip() for h in value.split(",")]
            chosen = hops[-1]
            if self.conf.recursive and trusted is not None:
                chosen = hops[0]
                for hop in reversed(hops):
                    hp = split_host_port(hop)
                    if hp is None or hp[0] not in trusted:
                        chosen = hop
                        break
            value = chosen
        if self.ip_port:
            host, _, port = value.strip().rpartition(":")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            value = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        hp = split_host_port(value)
        if hp is None:
            return ()
        host = hp[0]
        if ":" in host:
            # one spelling per address, so logs, limit keys and allow lists agree
            host = inet_ntop(AF_INET6, inet_pton(AF_INET6, host))
        return host, hp[1]
