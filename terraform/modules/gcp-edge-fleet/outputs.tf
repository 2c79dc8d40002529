output "lb_ip_address" {
  description = "Public IP address of the load balancer: the origin to configure in the CDN."
  value       = local.passthrough ? google_compute_address.passthrough[0].address : google_compute_global_address.proxy[0].address
}

output "lb_ports" {
  description = "Ports the CDN connects to (node ports with passthrough, frontend ports with tcp_proxy)."
  value       = { for k, p in local.ports : k => (local.passthrough ? p.node : p.lb) }
}

output "proxy_protocol" {
  description = "PROXY protocol the node listeners expect (off for passthrough, v1 for tcp_proxy)."
  value       = local.proxy_protocol
}

output "trusted_proxies" {
  description = "CIDRs the node listeners trust for PROXY headers."
  value       = local.trusted_proxies
}

output "bundle_bucket" {
  description = "Name of the bundle bucket."
  value       = google_storage_bucket.bundle.name
}

output "bundle_source" {
  description = "Bundle source URL the nodes poll; use it as --store for `edge bundle init/publish`."
  value       = local.bundle_source
}

output "service_account_email" {
  description = "Service account of the nodes."
  value       = google_service_account.node.email
}

output "instance_group_manager" {
  description = "Regional managed instance group of the nodes."
  value       = google_compute_region_instance_group_manager.node.name
}

output "instance_group" {
  description = "Instance group URL of the nodes."
  value       = google_compute_region_instance_group_manager.node.instance_group
}
