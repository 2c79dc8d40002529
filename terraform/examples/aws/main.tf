# A complete edge fleet on AWS: an internet-facing NLB in the public subnets of an existing VPC,
# nodes in its private subnets, the bundle bucket, and TLS passthrough on 443.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "managed-by" = "terraform"
      "service"    = "edge"
    }
  }
}

# Ubuntu 24.04 LTS (Python 3.12, cloud-init, systemd). Set var.ami_id to pin an image: a new AMI
# id here means a new launch template version and therefore an instance refresh.
data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

module "edge" {
  source = "../../modules/aws-edge-fleet"

  name               = var.name
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  public_subnet_ids  = var.public_subnet_ids

  ami_id           = coalesce(var.ami_id, data.aws_ami.ubuntu.id)
  instance_type    = var.instance_type
  min_size         = var.min_size
  max_size         = var.max_size
  desired_capacity = var.desired_capacity

  cdn_cidrs       = var.cdn_cidrs
  proxy_protocol  = "v2"
  lb_port         = 80
  listen_port     = 8080
  lb_tls_port     = 443
  tls_listen_port = 8443

  bundle_bucket_name = var.bundle_bucket_name
  access_log_bucket  = var.access_log_bucket
  trusted_root       = file(var.trusted_root_file)

  install_from     = "wheel"
  wheel_object_key = var.wheel_object_key
  pip_index_url    = var.pip_index_url
}
