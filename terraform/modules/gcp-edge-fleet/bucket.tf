resource "google_storage_bucket" "bundle" {
  name                        = var.bundle_bucket_name
  project                     = var.project_id
  location                    = var.bundle_bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket        = var.access_log_bucket
    log_object_prefix = "${var.name}-bundles"
  }

  dynamic "encryption" {
    for_each = var.bundle_bucket_kms_key == null ? [] : [var.bundle_bucket_kms_key]
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}
