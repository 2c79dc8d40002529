# Ingress to the nodes: health checks on the admin port from Google's probe ranges, listener
# traffic from the CDN (passthrough) or from Google's proxies (tcp_proxy). Nothing else: no SSH
# rule (OS Login through IAP can be added by the operator when needed).

resource "google_compute_firewall" "health_checks" {
  project       = var.project_id
  name          = "${var.name}-allow-health-checks"
  description   = "Google health checks to edge /readyz"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = local.health_check_ranges
  target_tags   = ["${var.name}-node"]

  allow {
    protocol = "tcp"
    ports    = [tostring(var.admin_port)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "traffic" {
  project       = var.project_id
  name          = "${var.name}-allow-traffic"
  description   = local.passthrough ? "CDN ranges to the edge listeners (passthrough NLB)" : "Google TCP proxies to the edge listeners"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = local.traffic_sources
  target_tags   = ["${var.name}-node"]

  allow {
    protocol = "tcp"
    ports    = [for p in local.ports : tostring(p.node)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
