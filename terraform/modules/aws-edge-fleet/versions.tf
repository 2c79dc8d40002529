terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x: NLB security groups and aws_vpc_security_group_*_rule resources.
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}
