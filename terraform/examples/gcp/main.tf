# A complete edge fleet on GCP: a regional managed instance group in an existing subnetwork,
# behind an external passthrough network load balancer (or a TCP proxy LB with PROXY v1).

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "edge" {
  source = "../../modules/gcp-edge-fleet"

  name       = var.name
  project_id = var.project_id
  region     = var.region
  zones      = var.zones
  network    = var.network
  subnetwork = var.subnetwork

  machine_type = var.machine_type
  target_size  = var.target_size

  lb_mode         = var.lb_mode
  cdn_cidrs       = var.cdn_cidrs
  listen_port     = var.listen_port
  tls_listen_port = var.tls_listen_port

  bundle_bucket_name     = var.bundle_bucket_name
  bundle_bucket_location = var.bundle_bucket_location
  access_log_bucket      = var.access_log_bucket
  trusted_root           = file(var.trusted_root_file)

  install_from  = "wheel"
  wheel_object  = var.wheel_object
  pip_index_url = var.pip_index_url
}
