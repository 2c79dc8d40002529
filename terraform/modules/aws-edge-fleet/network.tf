# Two security groups: the NLB admits the CDN ranges on its listener ports and may only talk to
# the nodes; the nodes admit only the NLB (traffic and the /readyz health checks).
# With an NLB security group, target rules that reference it hold whether or not the client IP
# is preserved, so the node rules need no client ranges.

locals {
  # listener name => NLB port and node port; a filter rather than a conditional, whose two
  # branches would be objects of different types
  lb_ports = {
    for k, v in {
      http = { lb = var.lb_port, node = var.listen_port }
      tls  = { lb = var.lb_tls_port, node = var.tls_listen_port }
    } : k => v if k == "http" || local.tls_enabled
  }
  cdn_ingress = {
    for pair in setproduct(keys(local.lb_ports), var.cdn_cidrs) :
    "${pair[0]}-${pair[1]}" => { port = local.lb_ports[pair[0]].lb, cidr = pair[1] }
  }
  node_ports_by_name = merge(
    { for k, v in local.lb_ports : k => v.node },
    { admin = var.admin_port },
  )
  upstream_cidrs = distinct(concat([data.aws_vpc.this.cidr_block], var.upstream_cidrs))
}

resource "aws_security_group" "nlb" {
  name        = "${var.name}-nlb"
  description = "edge NLB: CDN ranges in, edge nodes out"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "nlb_from_cdn" {
  for_each          = local.cdn_ingress
  security_group_id = aws_security_group.nlb.id
  description       = "CDN ${each.value.cidr} to the ${split("-", each.key)[0]} listener"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_nodes" {
  for_each                     = local.node_ports_by_name
  security_group_id            = aws_security_group.nlb.id
  description                  = "NLB to edge nodes (${each.key} port)"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.node.id
}

resource "aws_security_group" "node" {
  name        = "${var.name}-node"
  description = "edge nodes: traffic and health checks from the NLB only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "node_from_nlb" {
  for_each                     = local.node_ports_by_name
  security_group_id            = aws_security_group.node.id
  description                  = "NLB to edge (${each.key} port)"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.nlb.id
}

# S3, STS and the package index speak HTTPS; nothing else leaves the VPC.
resource "aws_vpc_security_group_egress_rule" "node_https" {
  for_each          = toset(var.egress_https_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "HTTPS to S3, STS and the package index"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# Ubuntu's EC2 package mirrors serve plain HTTP (packages are signed): cloud-init installs
# python3-venv from them on first boot.
resource "aws_vpc_security_group_egress_rule" "node_apt" {
  for_each          = toset(var.egress_https_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "HTTP to the distribution package mirrors (signed packages)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "node_upstreams" {
  for_each          = toset(local.upstream_cidrs)
  security_group_id = aws_security_group.node.id
  description       = "Proxied traffic to upstream services"
  ip_protocol       = "tcp"
  from_port         = 1
  to_port           = 65535
  cidr_ipv4         = each.value
}
