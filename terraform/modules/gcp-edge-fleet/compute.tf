resource "google_compute_instance_template" "node" {
  project      = var.project_id
  name_prefix  = "${var.name}-"
  description  = "edge gateway node"
  machine_type = var.machine_type
  region       = var.region
  tags         = ["${var.name}-node"]
  labels       = local.labels

  can_ip_forward = false

  disk {
    source_image = var.source_image
    boot         = true
    auto_delete  = true
    disk_type    = "pd-balanced"
    disk_size_gb = var.boot_disk_size_gb

    dynamic "disk_encryption_key" {
      for_each = var.boot_disk_kms_key == null ? [] : [var.boot_disk_kms_key]
      content {
        kms_key_self_link = disk_encryption_key.value
      }
    }
  }

  # No access_config block: no external IP. Egress goes through Cloud NAT.
  network_interface {
    subnetwork = var.subnetwork
  }

  service_account {
    email = google_service_account.node.email
    # Access is bounded by the service account's IAM grants (iam.tf), not by legacy scopes.
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    user-data              = local.user_data
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
    serial-port-enable     = "FALSE"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_health_check" "readyz" {
  project             = var.project_id
  name                = "${var.name}-readyz"
  description         = "edge /readyz on the admin port (autohealing and the TCP proxy LB)"
  check_interval_sec  = 10
  timeout_sec         = 5
  healthy_threshold   = 2
  unhealthy_threshold = 3

  http_health_check {
    port         = var.admin_port
    request_path = "/readyz"
  }

  log_config {
    enable = true
  }
}

resource "google_compute_region_instance_group_manager" "node" {
  project            = var.project_id
  name               = "${var.name}-mig"
  base_instance_name = "${var.name}-node"
  region             = var.region
  target_size        = var.target_size

  distribution_policy_zones = length(var.zones) > 0 ? var.zones : null

  version {
    instance_template = google_compute_instance_template.node.self_link_unique
  }

  dynamic "named_port" {
    for_each = local.ports
    content {
      name = "edge-${named_port.key}"
      port = named_port.value.node
    }
  }

  # A node whose /readyz fails (no verified bundle, workers down) is recreated.
  auto_healing_policies {
    health_check      = google_compute_health_check.readyz.id
    initial_delay_sec = var.autohealing_initial_delay_sec
  }

  # A new template (image, settings, trusted root) rolls through the group, surging new nodes
  # before old ones go so capacity never drops.
  update_policy {
    type                           = "PROACTIVE"
    minimal_action                 = "REPLACE"
    most_disruptive_allowed_action = "REPLACE"
    replacement_method             = "SUBSTITUTE"
    # A regional MIG needs 0 or at least one per zone; no region has more than 4 zones.
    max_surge_fixed                = max(length(var.zones), 4)
    max_unavailable_fixed          = 0
  }
}
