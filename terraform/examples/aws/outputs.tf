output "origin_hostname" {
  description = "Origin hostname for the CDN property (the NLB DNS name)."
  value       = module.edge.nlb_dns_name
}

output "bundle_source" {
  description = "--store URL for `edge bundle` commands."
  value       = module.edge.bundle_source
}

output "bundle_bucket" {
  description = "Bundle bucket (upload the wheel here)."
  value       = module.edge.bundle_bucket
}

output "bundle_kms_key_arn" {
  description = "Key the publisher needs kms:GenerateDataKey/kms:Decrypt on."
  value       = module.edge.bundle_kms_key_arn
}

output "node_role_arn" {
  description = "IAM role of the nodes."
  value       = module.edge.node_role_arn
}

output "autoscaling_group_name" {
  description = "Auto scaling group (instance refresh target)."
  value       = module.edge.autoscaling_group_name
}

output "trusted_proxies" {
  description = "CIDRs the listeners trust for PROXY v2 headers."
  value       = module.edge.trusted_proxies
}
