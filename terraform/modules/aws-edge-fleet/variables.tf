# --- naming and placement

variable "name" {
  description = "Name prefix for every resource of the fleet."
  type        = string
  default     = "edge"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name: lower-case letters, digits and dashes, starting with a letter, at most 24 characters (it prefixes the NLB and target group names, which AWS caps at 32)."
  }
}

variable "vpc_id" {
  description = "VPC of the fleet. Its CIDR is the set of addresses trusted to send PROXY headers (the NLB's private addresses live there)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets for the instances, one per availability zone, with a route to S3 (gateway endpoint or NAT) and to the package index."
  type        = list(string)
  validation {
    condition     = length(var.private_subnet_ids) > 0
    error_message = "private_subnet_ids: at least one subnet is required."
  }
}

variable "public_subnet_ids" {
  description = "Subnets for the NLB (public subnets when nlb_internal is false), one per availability zone."
  type        = list(string)
  validation {
    condition     = length(var.public_subnet_ids) > 0
    error_message = "public_subnet_ids: at least one subnet is required."
  }
}

variable "nlb_internal" {
  description = "true for an internal NLB (the CDN reaches it over a private link); false for an internet-facing one."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- instances

variable "ami_id" {
  description = "AMI of the nodes: any image with cloud-init, systemd and Python >= 3.11 (Ubuntu 24.04 LTS is what the example uses)."
  type        = string
}

variable "root_device_name" {
  description = "Root device name of the AMI (/dev/sda1 on Ubuntu, /dev/xvda on Amazon Linux)."
  type        = string
  default     = "/dev/sda1"
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "c6i.large"
}

variable "root_volume_size_gb" {
  description = "Root volume size in GiB (encrypted gp3)."
  type        = number
  default     = 20
}

variable "min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 2
}

variable "max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 6
}

variable "desired_capacity" {
  description = "Number of nodes to run."
  type        = number
  default     = 3
  validation {
    condition     = var.desired_capacity >= 1
    error_message = "desired_capacity: at least one node."
  }
}

variable "instance_refresh_min_healthy_percentage" {
  description = "Share of the fleet kept in service while an instance refresh rolls a new launch template version."
  type        = number
  default     = 90
}

# --- traffic

variable "cdn_cidrs" {
  description = "CIDRs allowed to reach the NLB listeners: the CDN's origin-facing ranges (e.g. an Akamai SiteShield map). The whole internet (0.0.0.0/0, ::/0) is refused."
  type        = list(string)
  validation {
    condition     = length(var.cdn_cidrs) > 0 && alltrue([for c in var.cdn_cidrs : can(cidrhost(c, 0)) && !startswith(c, "0.0.0.0/") && !startswith(c, "::/")])
    error_message = "cdn_cidrs: a non-empty list of valid CIDRs, none of them the whole internet (list the CDN's ranges)."
  }
}

variable "proxy_protocol" {
  description = "v2: the target groups send PROXY protocol v2 and the nodes require it from the VPC CIDR (client address carried in the header). off: client IP preservation instead, no header."
  type        = string
  default     = "v2"
  validation {
    condition     = contains(["v2", "off"], var.proxy_protocol)
    error_message = "proxy_protocol: one of v2, off (an NLB cannot send v1)."
  }
}

variable "lb_port" {
  description = "NLB TCP listener port for HTTP."
  type        = number
  default     = 80
}

variable "listen_port" {
  description = "Node port of the plain HTTP listener (the NLB's target port)."
  type        = number
  default     = 8080
}

variable "lb_tls_port" {
  description = "NLB TCP listener port for TLS passthrough (used when tls_listen_port is set)."
  type        = number
  default     = 443
}

variable "tls_listen_port" {
  description = "Node port of the TLS listener (certificates come from the bundle). null: no TLS passthrough listener."
  type        = number
  default     = null
}

variable "admin_port" {
  description = "Node admin port (/healthz, /readyz, /status, /metrics); the target groups health-check /readyz on it."
  type        = number
  default     = 9090
}

variable "egress_https_cidrs" {
  description = "Where nodes may open HTTPS connections: S3, STS and the package index."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "upstream_cidrs" {
  description = "Extra CIDRs the nodes proxy to, besides the VPC CIDR (all TCP ports)."
  type        = list(string)
  default     = []
}

variable "enable_deletion_protection" {
  description = "Deletion protection on the NLB."
  type        = bool
  default     = true
}

# --- bundles and logs

variable "bundle_bucket_name" {
  description = "Name of the S3 bucket created for signed configuration bundles."
  type        = string
}

variable "bundle_prefix" {
  description = "Key prefix of the bundle repository in the bucket (the node's bundle source is s3://BUCKET/PREFIX)."
  type        = string
  default     = "bundles"
  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.bundle_prefix))
    error_message = "bundle_prefix: path segments of [A-Za-z0-9._-] without leading or trailing slash."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten bundle object version is kept (recovery window for a bad publish)."
  type        = number
  default     = 90
}

variable "access_log_bucket" {
  description = "Existing bucket receiving S3 server access logs of the bundle bucket and the NLB access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix for the access logs."
  type        = string
  default     = "edge"
}

variable "trusted_root" {
  description = "Content of the TUF root.json the nodes pin (written by `edge bundle init --keys DIR` to DIR/root.json). Public metadata, not a secret."
  type        = string
  validation {
    condition     = try(jsondecode(var.trusted_root).signed._type, "") == "root"
    error_message = "trusted_root: must be the JSON of a TUF root metadata file (signed._type = root)."
  }
}

# --- node software

variable "install_from" {
  description = "wheel: install the edge wheel stored at wheel_object_key in the bundle bucket. index: install package_spec from the package index."
  type        = string
  default     = "wheel"
  validation {
    condition     = contains(["wheel", "index"], var.install_from)
    error_message = "install_from: one of wheel, index."
  }
}

variable "wheel_object_key" {
  description = "Key of the edge wheel in the bundle bucket (install_from = wheel), e.g. dist/edge_gateway-0.1.0-py3-none-any.whl. The instance role may read this one object besides the bundle prefix."
  type        = string
  default     = "dist/edge_gateway-0.1.0-py3-none-any.whl"
  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+\\.whl$", var.wheel_object_key))
    error_message = "wheel_object_key: an object key ending in .whl ([A-Za-z0-9._/-])."
  }
}

variable "package_spec" {
  description = "pip requirement installed when install_from = index."
  type        = string
  default     = "edge-gateway==0.1.0"
}

variable "pip_index_url" {
  description = "https URL of the package index (a private mirror); empty for pip's default. Dependencies come from it in both install modes."
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
