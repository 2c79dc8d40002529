# The bundle bucket: signed TUF metadata and bundle archives under var.bundle_prefix, and the
# edge wheel at var.wheel_object_key. Signatures protect integrity; the bucket settings below
# protect availability and confidentiality (bundles may name internal upstreams).

resource "aws_kms_key" "bundle" {
  description             = "${var.name}: encryption of the edge bundle bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  # Key policy: the account administers and uses the key through IAM (the instance role gets
  # kms:Decrypt in iam.tf, publishers through their own IAM policies). In a key policy the
  # resource "*" means this key only.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministersThroughIAM"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags                    = local.tags
}

resource "aws_kms_alias" "bundle" {
  name          = "alias/${var.name}-bundles"
  target_key_id = aws_kms_key.bundle.key_id
}

resource "aws_s3_bucket" "bundle" {
  #checkov:skip=CKV_AWS_144: Cross-region replication is not needed: bundles are reproducible from the publisher's config directory and signing keys, and nodes keep serving their last-known-good bundle while S3 is unavailable.
  #checkov:skip=CKV2_AWS_62: Event notifications have no consumer: nodes poll the timestamp role on their own schedule.
  bucket = var.bundle_bucket_name
  tags   = local.tags
}

resource "aws_s3_bucket_ownership_controls" "bundle" {
  bucket = aws_s3_bucket.bundle.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "bundle" {
  bucket                  = aws_s3_bucket.bundle.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "bundle" {
  bucket = aws_s3_bucket.bundle.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bundle" {
  bucket = aws_s3_bucket.bundle.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.bundle.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "bundle" {
  bucket        = aws_s3_bucket.bundle.id
  target_bucket = var.access_log_bucket
  target_prefix = "${var.access_log_prefix}/s3/${var.bundle_bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "bundle" {
  bucket = aws_s3_bucket.bundle.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.bundle]
}

data "aws_iam_policy_document" "bundle_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.bundle.arn,
      "${aws_s3_bucket.bundle.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOutdatedTLS"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.bundle.arn,
      "${aws_s3_bucket.bundle.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "bundle" {
  bucket = aws_s3_bucket.bundle.id
  policy = data.aws_iam_policy_document.bundle_bucket.json

  # A bucket policy is refused while the public access block is being created.
  depends_on = [aws_s3_bucket_public_access_block.bundle]
}
