locals {
  labels        = merge({ "edge-fleet" = var.name }, var.labels)
  bundle_source = "gs://${google_storage_bucket.bundle.name}/${var.bundle_prefix}"
  tls_enabled   = var.tls_listen_port != null
  passthrough   = var.lb_mode == "passthrough"

  # Where probes come from. Google documents 35.191.0.0/16 and 130.211.0.0/22 for health checks
  # and for the proxy LB's connections to backends; the regional passthrough NLB's health
  # checks also come from 209.85.152.0/22 and 209.85.204.0/22.
  google_proxy_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
  health_check_ranges = local.passthrough ? concat(local.google_proxy_ranges, ["209.85.152.0/22", "209.85.204.0/22"]) : local.google_proxy_ranges

  # The passthrough LB delivers the CDN's packets untouched (its address is the client, refined
  # by real-ip from True-Client-IP); the TCP proxy LB terminates TCP and prepends PROXY v1.
  proxy_protocol  = local.passthrough ? "off" : "v1"
  trusted_proxies = local.passthrough ? [] : local.google_proxy_ranges
  traffic_sources = local.passthrough ? var.cdn_cidrs : local.google_proxy_ranges

  # port name (the MIG's named ports, used by the proxy backend services) => node, frontend
  # port; a filter rather than a conditional, whose branches would be objects of different types
  ports = {
    for k, v in {
      http = { node = var.listen_port, lb = var.lb_port }
      tls  = { node = var.tls_listen_port, lb = var.lb_tls_port }
    } : k => v if k == "http" || local.tls_enabled
  }
  proxy_ports = { for k, v in local.ports : k => v if !local.passthrough }

  # KEY=VALUE lines read by bootstrap/edge-bootstrap.sh (its header documents each key).
  bootstrap_settings = {
    EDGE_INSTALL_FROM    = var.install_from
    EDGE_WHEEL_URL       = var.install_from == "wheel" ? "gs://${google_storage_bucket.bundle.name}/${var.wheel_object}" : ""
    EDGE_PACKAGE         = var.package_spec
    EDGE_INDEX_URL       = var.pip_index_url
    EDGE_BUNDLE_SOURCE   = local.bundle_source
    EDGE_TRUSTED_ROOT    = "/etc/edge/trusted-root.json"
    EDGE_PROXY_PROTOCOL  = local.proxy_protocol
    EDGE_TRUSTED_PROXIES = join(",", local.trusted_proxies)
    EDGE_HTTP_PORT       = tostring(var.listen_port)
    EDGE_TLS_PORT        = local.tls_enabled ? tostring(var.tls_listen_port) : ""
    # Health checks reach it from Google's ranges only (firewall.tf).
    EDGE_ADMIN_ADDRESS = "0.0.0.0:${var.admin_port}"
    EDGE_WORKERS       = var.workers == null ? "" : tostring(var.workers)
    EDGE_LOG_LEVEL     = var.log_level
    EDGE_POLL_INTERVAL = tostring(var.poll_interval)
  }

  user_data = templatefile("${path.module}/../../bootstrap/cloud-init.yaml.tftpl", {
    bootstrap_script = file("${path.module}/../../bootstrap/edge-bootstrap.sh")
    settings         = join("", [for k, v in local.bootstrap_settings : "${k}=${v}\n"])
    trusted_root     = var.trusted_root
  })
}
