variable "project_id" {
  description = "GCP project."
  type        = string
}

variable "region" {
  description = "Region of the fleet."
  type        = string
  default     = "europe-west1"
}

variable "zones" {
  description = "Zones of the region to spread nodes over."
  type        = list(string)
  default     = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]
}

variable "name" {
  description = "Name prefix of the fleet's resources."
  type        = string
  default     = "edge"
}

variable "network" {
  description = "Existing VPC network (name or self link)."
  type        = string
}

variable "subnetwork" {
  description = "Existing subnetwork in var.region, with Cloud NAT for first-boot package installs."
  type        = string
}

variable "machine_type" {
  description = "Machine type of the nodes."
  type        = string
  default     = "e2-standard-2"
}

variable "target_size" {
  description = "Number of nodes."
  type        = number
  default     = 3
}

variable "lb_mode" {
  description = "passthrough (client IP preserved, no PROXY header) or tcp_proxy (PROXY v1)."
  type        = string
  default     = "passthrough"
}

variable "cdn_cidrs" {
  description = "The CDN's origin-facing ranges (for Akamai: the SiteShield map's CIDRs)."
  type        = list(string)
}

variable "listen_port" {
  description = "Node HTTP port (with passthrough also the port the CDN connects to)."
  type        = number
  default     = 8080
}

variable "tls_listen_port" {
  description = "Node TLS port (with passthrough also the port the CDN connects to); null for none."
  type        = number
  default     = 8443
}

variable "bundle_bucket_name" {
  description = "Globally unique name of the bundle bucket to create."
  type        = string
}

variable "bundle_bucket_location" {
  description = "Location of the bundle bucket."
  type        = string
  default     = "EU"
}

variable "access_log_bucket" {
  description = "Existing bucket for the bundle bucket's usage logs."
  type        = string
}

variable "trusted_root_file" {
  description = "Path of the root.json written by `edge bundle init --keys DIR` (DIR/root.json)."
  type        = string
  default     = "keys/root.json"
}

variable "wheel_object" {
  description = "Object name of the edge wheel uploaded to the bundle bucket."
  type        = string
  default     = "dist/edge_gateway-0.1.0-py3-none-any.whl"
}

variable "pip_index_url" {
  description = "Package index for edge's dependencies (a private mirror); empty for PyPI."
  type        = string
  default     = ""
}
