data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_vpc" "this" {
  id = var.vpc_id
}

locals {
  tags          = merge({ "edge:fleet" = var.name }, var.tags)
  bundle_source = "s3://${aws_s3_bucket.bundle.bucket}/${var.bundle_prefix}"
  tls_enabled   = var.tls_listen_port != null

  # The NLB reaches the nodes from its private addresses in the VPC, so the VPC CIDR is what
  # the listeners trust to send PROXY headers (and nothing else can reach them: see network.tf).
  trusted_proxies = var.proxy_protocol == "v2" ? [data.aws_vpc.this.cidr_block] : []

  # KEY=VALUE lines read by bootstrap/edge-bootstrap.sh (its header documents each key).
  bootstrap_settings = {
    EDGE_INSTALL_FROM    = var.install_from
    EDGE_WHEEL_URL       = var.install_from == "wheel" ? "s3://${aws_s3_bucket.bundle.bucket}/${var.wheel_object_key}" : ""
    EDGE_PACKAGE         = var.package_spec
    EDGE_INDEX_URL       = var.pip_index_url
    EDGE_BUNDLE_SOURCE   = local.bundle_source
    EDGE_TRUSTED_ROOT    = "/etc/edge/trusted-root.json"
    EDGE_PROXY_PROTOCOL  = var.proxy_protocol
    EDGE_TRUSTED_PROXIES = join(",", local.trusted_proxies)
    EDGE_HTTP_PORT       = tostring(var.listen_port)
    EDGE_TLS_PORT        = local.tls_enabled ? tostring(var.tls_listen_port) : ""
    # The NLB health checks come from the VPC; network.tf admits only the NLB to this port.
    EDGE_ADMIN_ADDRESS = "0.0.0.0:${var.admin_port}"
    EDGE_WORKERS       = var.workers == null ? "" : tostring(var.workers)
    EDGE_LOG_LEVEL     = var.log_level
    EDGE_POLL_INTERVAL = tostring(var.poll_interval)
    EDGE_AWS_REGION    = data.aws_region.current.name
  }

  user_data = templatefile("${path.module}/../../bootstrap/cloud-init.yaml.tftpl", {
    bootstrap_script = file("${path.module}/../../bootstrap/edge-bootstrap.sh")
    settings         = join("", [for k, v in local.bootstrap_settings : "${k}=${v}\n"])
    trusted_root     = var.trusted_root
  })
}
