variable "region" {
  description = "AWS region of the fleet."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name prefix of the fleet's resources."
  type        = string
  default     = "edge"
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (one per AZ) with a NAT gateway or S3 endpoint plus a package mirror."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets (one per AZ) for the NLB."
  type        = list(string)
}

variable "ami_id" {
  description = "Pinned AMI id; null to use the newest Ubuntu 24.04 LTS image."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Instance type of the nodes."
  type        = string
  default     = "c6i.large"
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
  description = "Number of nodes."
  type        = number
  default     = 3
}

variable "cdn_cidrs" {
  description = "The CDN's origin-facing ranges (for Akamai: the SiteShield map's CIDRs)."
  type        = list(string)
}

variable "bundle_bucket_name" {
  description = "Globally unique name of the bundle bucket to create."
  type        = string
}

variable "access_log_bucket" {
  description = "Existing bucket for S3 server access logs and NLB access logs (its policy must admit both log deliveries)."
  type        = string
}

variable "trusted_root_file" {
  description = "Path of the root.json written by `edge bundle init --keys DIR` (DIR/root.json)."
  type        = string
  default     = "keys/root.json"
}

variable "wheel_object_key" {
  description = "Key of the edge wheel uploaded to the bundle bucket."
  type        = string
  default     = "dist/edge_gateway-0.1.0-py3-none-any.whl"
}

variable "pip_index_url" {
  description = "Package index for edge's dependencies (a private mirror); empty for PyPI."
  type        = string
  default     = ""
}
