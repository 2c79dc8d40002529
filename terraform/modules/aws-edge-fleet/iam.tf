# The node's identity: it may read the bundle prefix (and the one wheel object) and decrypt with
# the bucket key through S3, nothing else. No SSH keys and no SSM: nodes are cattle, replaced by
# an instance refresh rather than repaired in place.

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-node"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = local.tags
}

data "aws_iam_policy_document" "node" {
  statement {
    sid     = "ReadBundles"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = concat(
      ["${aws_s3_bucket.bundle.arn}/${var.bundle_prefix}/*"],
      var.install_from == "wheel" ? ["${aws_s3_bucket.bundle.arn}/${var.wheel_object_key}"] : [],
    )
  }

  # Listing (limited to the prefix) makes S3 answer 404 rather than 403 for a missing key,
  # which the TUF client relies on when it probes for the next root version.
  statement {
    sid       = "ListBundlePrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.bundle.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.bundle_prefix}/*"]
    }
  }

  statement {
    sid       = "DecryptBundlesThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.bundle.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "node" {
  name   = "read-bundles"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_instance_profile" "node" {
  name = "${var.name}-node"
  role = aws_iam_role.node.name
  tags = local.tags
}
