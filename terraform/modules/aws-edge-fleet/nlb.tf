resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20: HTTP to HTTPS redirect applies to ALBs; this NLB forwards TCP and the node (or the CDN) owns redirects.
  #checkov:skip=CKV2_AWS_28: WAF cannot attach to an NLB; the WAF sits in the CDN in front of it.
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  internal                         = var.nlb_internal
  subnets                          = var.public_subnet_ids
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.enable_deletion_protection

  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "${var.access_log_prefix}/nlb"
    enabled = true
  }

  tags = local.tags
}

resource "aws_lb_target_group" "node" {
  for_each    = local.lb_ports
  name        = "${var.name}-${each.key}"
  port        = each.value.node
  protocol    = "TCP"
  target_type = "instance"
  vpc_id      = var.vpc_id

  # With PROXY v2 the client address travels in the header, so the node sees the NLB as peer
  # (inside the VPC CIDR it trusts) and the header as the client.
  proxy_protocol_v2  = var.proxy_protocol == "v2"
  preserve_client_ip = var.proxy_protocol == "v2" ? "false" : "true"

  # The node's drain (grace period 30 s) finishes in-flight requests before it goes.
  deregistration_delay = 35

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = tostring(var.admin_port)
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = local.tags
}

# TCP listeners only: with TLS passthrough the node terminates TLS with certificates from the
# bundle, so the NLB never holds a key.
resource "aws_lb_listener" "node" {
  #checkov:skip=CKV_AWS_2: TCP passthrough by design; TLS is terminated on the node (certificates from the signed bundle).
  #checkov:skip=CKV_AWS_103: No TLS on the NLB (TCP passthrough), so there is no TLS policy to set.
  for_each          = local.lb_ports
  load_balancer_arn = aws_lb.this.arn
  port              = each.value.lb
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.node[each.key].arn
  }

  tags = local.tags
}
