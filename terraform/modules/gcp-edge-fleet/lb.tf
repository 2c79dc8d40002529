# One of two load balancers, chosen by var.lb_mode.

# --- passthrough: regional external passthrough NLB; packets reach the node unchanged.

resource "google_compute_region_health_check" "readyz" {
  count               = local.passthrough ? 1 : 0
  project             = var.project_id
  region              = var.region
  name                = "${var.name}-readyz"
  description         = "edge /readyz on the admin port (passthrough NLB)"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 2

  http_health_check {
    port         = var.admin_port
    request_path = "/readyz"
  }

  log_config {
    enable = true
  }
}

resource "google_compute_region_backend_service" "passthrough" {
  count                 = local.passthrough ? 1 : 0
  project               = var.project_id
  region                = var.region
  name                  = "${var.name}-passthrough"
  protocol              = "TCP"
  load_balancing_scheme = "EXTERNAL"
  health_checks         = [google_compute_region_health_check.readyz[0].id]
  # The node's drain finishes in-flight requests within its grace period.
  connection_draining_timeout_sec = 35

  backend {
    group          = google_compute_region_instance_group_manager.node.instance_group
    balancing_mode = "CONNECTION"
  }
}

resource "google_compute_address" "passthrough" {
  count        = local.passthrough ? 1 : 0
  project      = var.project_id
  region       = var.region
  name         = "${var.name}-lb"
  address_type = "EXTERNAL"
}

resource "google_compute_forwarding_rule" "passthrough" {
  count                 = local.passthrough ? 1 : 0
  project               = var.project_id
  region                = var.region
  name                  = "${var.name}-lb"
  ip_address            = google_compute_address.passthrough[0].address
  ip_protocol           = "TCP"
  load_balancing_scheme = "EXTERNAL"
  # A passthrough LB does not translate ports: clients connect to the node ports.
  ports           = [for p in local.ports : tostring(p.node)]
  backend_service = google_compute_region_backend_service.passthrough[0].id
  labels          = local.labels
}

# --- tcp_proxy: global external proxy NLB; Google's proxies connect to the node and send PROXY v1.

resource "google_compute_backend_service" "proxy" {
  for_each              = local.proxy_ports
  project               = var.project_id
  name                  = "${var.name}-proxy-${each.key}"
  protocol              = "TCP"
  port_name             = "edge-${each.key}"
  load_balancing_scheme = "EXTERNAL"
  timeout_sec           = 300
  health_checks         = [google_compute_health_check.readyz.id]

  connection_draining_timeout_sec = 35

  backend {
    group           = google_compute_region_instance_group_manager.node.instance_group
    balancing_mode  = "UTILIZATION"
    max_utilization = 0.8
  }
}

resource "google_compute_target_tcp_proxy" "proxy" {
  for_each        = google_compute_backend_service.proxy
  project         = var.project_id
  name            = "${var.name}-proxy-${each.key}"
  backend_service = each.value.id
  proxy_header    = "PROXY_V1"
}

resource "google_compute_global_address" "proxy" {
  count   = local.passthrough ? 0 : 1
  project = var.project_id
  name    = "${var.name}-lb"
}

resource "google_compute_global_forwarding_rule" "proxy" {
  for_each              = google_compute_target_tcp_proxy.proxy
  project               = var.project_id
  name                  = "${var.name}-proxy-${each.key}"
  ip_address            = google_compute_global_address.proxy[0].address
  ip_protocol           = "TCP"
  load_balancing_scheme = "EXTERNAL"
  port_range            = tostring(local.ports[each.key].lb)
  target                = each.value.id
  labels                = local.labels
}
