# A dedicated identity whose only grant is reading objects of the bundle bucket (the bundles and
# the wheel). storage.objectViewer includes listing, so a missing object is a 404 for the TUF
# client rather than a 403.

resource "google_service_account" "node" {
  project      = var.project_id
  account_id   = "${var.name}-node"
  display_name = "edge gateway node (${var.name})"
}

resource "google_storage_bucket_iam_member" "node_reads_bundles" {
  bucket = google_storage_bucket.bundle.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.node.email}"
}
