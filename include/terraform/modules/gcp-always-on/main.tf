data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "this" {
  project = var.project_id
}

locals {
  project_number = data.google_project.this.number

  # Service agents that encrypt with the site's keys.
  key_users = {
    backups  = ["serviceAccount:${data.google_storage_project_service_account.this.email_address}"]
    gke      = ["serviceAccount:service-${local.project_number}@container-engine-robot.iam.gserviceaccount.com"]
    cloudsql = ["serviceAccount:service-${local.project_number}@gcp-sa-cloud-sql.iam.gserviceaccount.com"]
  }
}

# --- Network ----------------------------------------------------------------------------------

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_subnetwork" "this" {
  project                  = var.project_id
  name                     = "${var.name}-gke"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Explicit, logged default deny for ingress (the implied rule logs nothing). GKE adds its own
# narrower allow rules (control plane to nodes, load balancer health checks) above it.
resource "google_compute_firewall" "deny_all_ingress" {
  project   = var.project_id
  name      = "${var.name}-deny-all-ingress"
  network   = google_compute_network.this.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Private GKE nodes reach the internet (image pulls, APIs) through Cloud NAT only.
resource "google_compute_router" "this" {
  project = var.project_id
  name    = "${var.name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Private services access: Cloud SQL gets a private IP in this VNet and no public one.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "this" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

# Reserved now so that the DR origin's address is known before a failover creates the ingress
# (the GKE ingress names it in kubernetes.io/ingress.global-static-ip-name).
resource "google_compute_global_address" "ingress" {
  project = var.project_id
  name    = "${var.name}-ingress"
}

# --- KMS: keys of the DR site (key rings cannot be deleted, so they live in the always-on stack)

resource "google_kms_key_ring" "this" {
  project  = var.project_id
  name     = "${var.name}-keys"
  location = lower(var.bucket_location) == lower(var.region) ? var.region : lower(var.bucket_location)
}

resource "google_kms_key_ring" "regional" {
  project  = var.project_id
  name     = "${var.name}-regional-keys"
  location = var.region
}

resource "google_kms_crypto_key" "backups" {
  name            = "backups"
  key_ring        = google_kms_key_ring.this.id
  rotation_period = "7776000s"

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "regional" {
  for_each = toset(["gke", "cloudsql"])

  name            = each.key
  key_ring        = google_kms_key_ring.regional.id
  rotation_period = "7776000s"

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key_iam_member" "backups" {
  for_each = toset(local.key_users.backups)

  crypto_key_id = google_kms_crypto_key.backups.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.key
}

resource "google_kms_crypto_key_iam_member" "regional" {
  for_each = {
    for pair in flatten([
      for key in ["gke", "cloudsql"] : [for member in local.key_users[key] : { key = key, member = member }]
    ]) : "${pair.key}/${pair.member}" => pair
  }

  crypto_key_id = google_kms_crypto_key.regional[each.value.key].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value.member
}

# --- Backup bucket ----------------------------------------------------------------------------

resource "google_storage_bucket" "backup" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs for Cloud Storage), not by the legacy usage-log bucket.
  project                     = var.project_id
  name                        = var.backup_bucket_name
  location                    = var.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.backups.id
  }

  soft_delete_policy {
    retention_duration_seconds = 604800
  }

  # Backstop behind the backup DAG's 30-day retention (which never deletes the newest verified
  # backup): live objects older than lifecycle_delete_after_days become noncurrent...
  lifecycle_rule {
    condition {
      age        = var.lifecycle_delete_after_days
      with_state = "LIVE"
    }

    action {
      type = "Delete"
    }
  }

  # ...and noncurrent versions are removed after noncurrent_version_days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }

    action {
      type = "Delete"
    }
  }

  labels = var.labels

  depends_on = [google_kms_crypto_key_iam_member.backups]
}

resource "google_storage_bucket_iam_member" "backup_writer" {
  for_each = toset(var.backup_writer_members)

  bucket = google_storage_bucket.backup.name
  role   = "roles/storage.objectUser"
  member = each.key
}
