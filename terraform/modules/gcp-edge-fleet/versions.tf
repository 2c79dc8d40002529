terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 5.x: proxy_header on target TCP proxies, regional backend services for external
      # passthrough NLBs, public_access_prevention on buckets.
      version = ">= 5.0.0, < 7.0.0"
    }
  }
}
