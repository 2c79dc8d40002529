output "nlb_dns_name" {
  description = "DNS name of the NLB: the origin hostname to configure in the CDN."
  value       = aws_lb.this.dns_name
}

output "nlb_zone_id" {
  description = "Route 53 zone id of the NLB, for an alias record."
  value       = aws_lb.this.zone_id
}

output "bundle_bucket" {
  description = "Name of the bundle bucket."
  value       = aws_s3_bucket.bundle.bucket
}

output "bundle_source" {
  description = "Bundle source URL the nodes poll; use it as --store for `edge bundle init/publish`."
  value       = local.bundle_source
}

output "bundle_kms_key_arn" {
  description = "KMS key encrypting the bundle bucket; publishers need kms:GenerateDataKey and kms:Decrypt on it."
  value       = aws_kms_key.bundle.arn
}

output "node_role_arn" {
  description = "IAM role of the nodes."
  value       = aws_iam_role.node.arn
}

output "node_role_name" {
  description = "Name of the IAM role of the nodes."
  value       = aws_iam_role.node.name
}

output "node_security_group_id" {
  description = "Security group of the nodes (allow it in your upstreams' security groups)."
  value       = aws_security_group.node.id
}

output "autoscaling_group_name" {
  description = "Auto scaling group of the nodes (start an instance refresh on it to roll the fleet)."
  value       = aws_autoscaling_group.node.name
}

output "trusted_proxies" {
  description = "CIDRs the node listeners trust for PROXY headers."
  value       = local.trusted_proxies
}
