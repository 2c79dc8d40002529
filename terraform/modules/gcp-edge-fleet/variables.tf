# --- naming and placement

variable "name" {
  description = "Name prefix for every resource of the fleet."
  type        = string
  default     = "edge"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name: lower-case letters, digits and dashes, starting with a letter, at most 20 characters (GCE names derived from it are capped at 63)."
  }
}

variable "project_id" {
  description = "GCP project of the fleet."
  type        = string
}

variable "region" {
  description = "Region of the managed instance group (and of the passthrough load balancer)."
  type        = string
}

variable "zones" {
  description = "Zones of the region the instance group spreads over; empty lets GCE pick."
  type        = list(string)
  default     = []
}

variable "network" {
  description = "Self link or name of the VPC network."
  type        = string
}

variable "subnetwork" {
  description = "Self link or name of the subnetwork of the instances (in var.region), with Cloud NAT or Private Google Access plus a package mirror for first boot."
  type        = string
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

# --- instances

variable "machine_type" {
  description = "Machine type of the nodes."
  type        = string
  default     = "e2-standard-2"
}

variable "source_image" {
  description = "Boot image: any image with cloud-init, systemd and Python >= 3.11 (Ubuntu 24.04 LTS by default; Debian images do not run cloud-init)."
  type        = string
  default     = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"
}

variable "boot_disk_size_gb" {
  description = "Boot disk size in GB."
  type        = number
  default     = 20
}

variable "boot_disk_kms_key" {
  description = "Cloud KMS key (self link) encrypting the boot disks; null for Google-managed encryption."
  type        = string
  default     = null
}

variable "target_size" {
  description = "Number of nodes."
  type        = number
  default     = 3
  validation {
    condition     = var.target_size >= 1
    error_message = "target_size: at least one node."
  }
}

variable "autohealing_initial_delay_sec" {
  description = "Seconds after boot before autohealing judges a node by /readyz (first boot installs edge and fetches a bundle)."
  type        = number
  default     = 600
}

# --- traffic

variable "lb_mode" {
  description = "passthrough: external passthrough network LB, client (CDN edge) IP preserved, no PROXY header. tcp_proxy: global TCP proxy LB sending PROXY v1 from Google's proxy ranges. The node config follows the choice."
  type        = string
  default     = "passthrough"
  validation {
    condition     = contains(["passthrough", "tcp_proxy"], var.lb_mode)
    error_message = "lb_mode: one of passthrough, tcp_proxy."
  }
}

variable "cdn_cidrs" {
  description = "CIDRs allowed to reach the listeners: the CDN's origin-facing ranges (the whole internet is refused). With passthrough the node firewall admits only them; with tcp_proxy the nodes only see Google's proxy ranges, so enforce them with ip-restriction on the PROXY-carried client address in the bundle (see README)."
  type        = list(string)
  validation {
    condition     = length(var.cdn_cidrs) > 0 && alltrue([for c in var.cdn_cidrs : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/") && !startswith(c, "::/")])
    error_message = "cdn_cidrs: a non-empty list of valid CIDRs, none of them the whole internet (list the CDN's ranges)."
  }
}

variable "listen_port" {
  description = "Node port of the plain HTTP listener. With passthrough it is also the port clients (the CDN) connect to, as a passthrough LB does not translate ports."
  type        = number
  default     = 8080
}

variable "tls_listen_port" {
  description = "Node port of the TLS listener (certificates from the bundle); null for none."
  type        = number
  default     = null
}

variable "lb_port" {
  description = "Frontend port of the TCP proxy LB for HTTP (tcp_proxy only)."
  type        = number
  default     = 80
}

variable "lb_tls_port" {
  description = "Frontend port of the TCP proxy LB for TLS passthrough (tcp_proxy only, with tls_listen_port)."
  type        = number
  default     = 443
}

variable "admin_port" {
  description = "Node admin port; health checks probe /readyz on it."
  type        = number
  default     = 9090
}

# --- bundles and logs

variable "bundle_bucket_name" {
  description = "Name of the GCS bucket created for signed configuration bundles."
  type        = string
}

variable "bundle_bucket_location" {
  description = "Location of the bundle bucket (a region, dual-region or multi-region)."
  type        = string
  default     = "EU"
}

variable "bundle_bucket_kms_key" {
  description = "Cloud KMS key (self link) for the bundle bucket's default encryption; null for Google-managed keys."
  type        = string
  default     = null
}

variable "bundle_prefix" {
  description = "Object prefix of the bundle repository (bundle source gs://BUCKET/PREFIX)."
  type        = string
  default     = "bundles"
  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.bundle_prefix))
    error_message = "bundle_prefix: path segments of [A-Za-z0-9._-] without leading or trailing slash."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten bundle object version is kept."
  type        = number
  default     = 90
}

variable "access_log_bucket" {
  description = "Existing bucket receiving the usage and storage logs of the bundle bucket."
  type        = string
}

variable "trusted_root" {
  description = "Content of the TUF root.json the nodes pin (written by `edge bundle init --keys DIR` to DIR/root.json)."
  type        = string
  validation {
    condition     = try(jsondecode(var.trusted_root).signed._type, "") == "root"
    error_message = "trusted_root: must be the JSON of a TUF root metadata file (signed._type = root)."
  }
}

# --- node software

variable "install_from" {
  description = "wheel: install the edge wheel at wheel_object in the bundle bucket. index: install package_spec from the package index."
  type        = string
  default     = "wheel"
  validation {
    condition     = contains(["wheel", "index"], var.install_from)
    error_message = "install_from: one of wheel, index."
  }
}

variable "wheel_object" {
  description = "Object name of the edge wheel in the bundle bucket (install_from = wheel)."
  type        = string
  default     = "dist/edge_gateway-0.1.0-py3-none-any.whl"
  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+\\.whl$", var.wheel_object))
    error_message = "wheel_object: an object name ending in .whl ([A-Za-z0-9._/-])."
  }
}

variable "package_spec" {
  description = "pip requirement installed when install_from = index."
  type        = string
  default     = "edge-gateway==0.1.0"
}

variable "pip_index_url" {
  description = "https URL of the package index (a private mirror); empty for pip's default."
  type        = string
  default     = ""
  validation {
    condition     = var.pip_index_url == "" || can(regex("^https://[A-Za-z0-9._~/%+=@:-]+$", var.pip_index_url))
    error_message = "pip_index_url: empty or an https:// URL."
  }
}

variable "workers" {
  description = "Worker processes per node; null for one per CPU."
  type        = number
  default     = null
}

variable "log_level" {
  description = "Node log level."
  type        = string
  default     = "info"
  validation {
    condition     = contains(["debug", "info", "warning", "error"], var.log_level)
    error_message = "log_level: one of debug, info, warning, error."
  }
}

variable "poll_interval" {
  description = "Seconds between bundle checks on each node."
  type        = number
  default     = 30
}
