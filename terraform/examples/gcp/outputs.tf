output "origin_ip" {
  description = "Origin IP address for the CDN property."
  value       = module.edge.lb_ip_address
}

output "origin_ports" {
  description = "Ports the CDN connects to."
  value       = module.edge.lb_ports
}

output "bundle_source" {
  description = "--store URL for `edge bundle` commands."
  value       = module.edge.bundle_source
}

output "bundle_bucket" {
  description = "Bundle bucket (upload the wheel here)."
  value       = module.edge.bundle_bucket
}

output "proxy_protocol" {
  description = "PROXY protocol the nodes expect."
  value       = module.edge.proxy_protocol
}

output "service_account_email" {
  description = "Service account of the nodes."
  value       = module.edge.service_account_email
}

output "instance_group_manager" {
  description = "Managed instance group (rolling update target)."
  value       = module.edge.instance_group_manager
}
