"""Properties a guest reads with proxy_get_property, encoded as Envoy does.

Supported paths (see docs/wasm.md): request.path (with query), request.url_path,
request.host, request.method, request.scheme, request.id, request.protocol,
request.useragent, request.time (ns since the epoch, int), request.headers (map),
request.headers.<name>, response.code (int), response.headers (map),
source.address ("ip:port"), source.port (int), destination.address,
destination.port, connection.mtls (bool), plugin_name, plugin_root_id, plugin_vm_id,
route_name, cluster_name, node.id, edge.tenant, edge.proxy_protocol (map) and
edge.proxy_protocol.<tlv>.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.wasm.abi import encode_property, split_property_path

if TYPE_CHECKING:
    from edge.wasm.context import StreamState
    from edge.wasm.vm import PluginVM

split = split_property_path


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def lookup(vm: PluginVM, st: StreamState | None, path: tuple[str, ...]) -> bytes | None:
    v = _value(vm, st, path)
    return None if v is None else encode_property(v)


def _value(vm: PluginVM, st: StreamState | None, path: tuple[str, ...]) -> Any:
    spec = vm.spec
    head = path[0] if path else ""
    if len(path) == 1:
        if head == "plugin_name":
            return spec.plugin
        if head == "plugin_root_id":
            return vm.cur_root.name if vm.cur_root is not None else ""
        if head == "plugin_vm_id":
            return spec.vm_id
        if head in spec.extra_properties:
            return spec.extra_properties[head]
    if head == "node" and path[1:] == ("id",):
        return spec.node_id
    if head == "edge" and path[1:] == ("tenant",):
        return spec.tenant
    if st is None:
        return None
    req = st.req
    if head in ("route_name", "cluster_name") and len(path) == 1:
        obj = req.route if head == "route_name" else req.service
        if head == "cluster_name":
            up = getattr(req.route, "upstream_id", None) or getattr(
                req.service, "upstream_id", None
            )
            return str(up) if up else None
        if obj is None:
            return None
        return str(getattr(obj, "name", None) or getattr(obj, "id", "") or "")
    sub = path[1] if len(path) > 1 else ""
    if head == "request":
        if sub == "path":
            return req.uri
        if sub == "url_path":
            return req.path
        if sub == "host":
            return req.headers.get("host") or req.host
        if sub == "method":
            return req.method
        if sub == "scheme":
            return req.scheme
        if sub == "id":
            return req.request_id or req.headers.get("x-request-id")
        if sub == "protocol":
            return f"HTTP/{req.version}"
        if sub == "useragent":
            return req.headers.get("user-agent")
        if sub == "time":
            return int(req.start_wall * 1e9)
        if sub == "headers":
            if len(path) == 3:
                return req.headers.get(path[2].lower())
            return list(req.headers.lower_items())
        return None
    if head == "response" and st.resp is not None:
        if sub == "code":
            return st.resp.status
        if sub == "headers":
            if len(path) == 3:
                return st.resp.headers.get(path[2].lower())
            return list(st.resp.headers.lower_items())
        return None
    conn = req.conn
    if head == "source":
        if sub == "address":
            return _addr(req.client_addr, req.client_port)
        if sub == "port":
            return req.client_port
        return None
    if head == "destination":
        if sub == "address":
            return _addr(conn.server_addr, conn.server_port)
        if sub == "port":
            return conn.server_port
        return None
    if head == "edge" and sub == "proxy_protocol":
        # PROXY protocol v2 TLVs of the connection (alpn, authority, unique_id,
        # aws_vpce_id, ...): the whole map, or one TLV by name
        tlvs = conn.proxy_tlvs
        return dict(tlvs) if len(path) == 2 else tlvs.get(path[2]) if len(path) == 3 else None
    if head == "connection":
        if sub == "mtls":
            return bool(conn.mtls)
        if sub == "tls_version":
            return None
        if sub == "requested_server_name":
            return conn.sni
    return None
