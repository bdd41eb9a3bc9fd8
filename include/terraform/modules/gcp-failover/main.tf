locals {
  is_mysql        = startswith(var.database_version, "MYSQL")
  database_engine = local.is_mysql ? "mysql" : "postgres"

  # Hardening flags per engine (CIS benchmarks for Cloud SQL).
  mysql_flags = {
    local_infile             = "off"
    skip_show_database       = "on"
    require_secure_transport = "on"
  }

  postgres_flags = {
    log_checkpoints               = "on"
    log_connections               = "on"
    log_disconnections            = "on"
    log_lock_waits                = "on"
    log_duration                  = "on"
    log_hostname                  = "on"
    log_min_messages              = "error"
    log_min_error_statement       = "error"
    log_min_duration_statement    = "-1"
    log_temp_files                = "0"
    log_statement                 = "ddl"
    log_error_verbosity           = "default"
    log_executor_stats            = "off"
    log_parser_stats              = "off"
    log_planner_stats             = "off"
    log_statement_stats           = "off"
    "cloudsql.enable_pgaudit"     = "on"
    "pgaudit.log"                 = "ddl,role"
    "cloudsql.iam_authentication" = "on"
  }

  node_pools = {
    web = var.web_node_pool
    app = var.app_node_pool
  }
}

# --- GKE: regional, private nodes ------------------------------------------------------------

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-gke-nodes"
  display_name = "GKE nodes of ${var.name}"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Workspace domain with a gke-security-groups group; the site binds roles to IAM principals instead.
  provider = google

  project             = var.project_id
  name                = "${var.name}-gke"
  location            = var.region
  network             = var.network_id
  subnetwork          = var.subnet_id
  deletion_protection = var.deletion_protection

  # Node pools are managed below; the default one only exists during creation.
  remove_default_node_pool = true
  initial_node_count       = 1

  networking_mode             = "VPC_NATIVE"
  datapath_provider           = "ADVANCED_DATAPATH"
  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  enable_legacy_abac          = false

  # Dataplane V2 (ADVANCED_DATAPATH) enforces NetworkPolicy itself; the Calico add-on stays off.
  network_policy {
    enabled = false
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.enable_private_endpoint
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block

    master_global_access_config {
      enabled = true
    }
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks

      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  database_encryption {
    state    = "ENCRYPTED"
    key_name = var.gke_kms_key_id
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
  }

  maintenance_policy {
    recurring_window {
      start_time = "2024-01-07T03:00:00Z"
      end_time   = "2024-01-07T07:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }

  # The default pool is deleted right after creation; these settings only apply to it.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    metadata = {
      disable-legacy-endpoints = "true"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  resource_labels = merge(var.labels, { site = "dr", tier = "gke" })

  lifecycle {
    ignore_changes = [node_config, initial_node_count]
  }
}

resource "google_container_node_pool" "tier" {
  for_each = local.node_pools

  project  = var.project_id
  name     = each.key
  location = var.region
  cluster  = google_container_cluster.this.name

  autoscaling {
    min_node_count = each.value.min_node_count
    max_node_count = each.value.max_node_count
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = each.value.machine_type
    disk_size_gb    = each.value.disk_size_gb
    disk_type       = "pd-balanced"
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    labels = merge(var.labels, { tier = each.key })

    metadata = {
      disable-legacy-endpoints = "true"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  # The cluster autoscaler owns the node count.
  lifecycle {
    ignore_changes = [initial_node_count, node_count]
  }
}

# --- Cloud SQL: private IP only --------------------------------------------------------------

# Instance names cannot be reused for a week after deletion; a suffix lets a drill's cleanup be
# followed by a new drill at once.
resource "random_id" "database_suffix" {
  byte_length = 3

  keepers = {
    version = var.database_version
  }
}

resource "google_sql_database_instance" "this" {
  #checkov:skip=CKV2_GCP_20:Point-in-time recovery is on for both engines: binary_log_enabled = local.is_mysql for MySQL, point_in_time_recovery_enabled for PostgreSQL; checkov cannot evaluate startswith() in the local.
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses every unencrypted connection; client certificates (TRUSTED_CLIENT_CERTIFICATE_REQUIRED) are replaced by the Cloud SQL connectors' own mTLS and IAM.
  project             = var.project_id
  name                = "${var.name}-${local.database_engine}-${random_id.database_suffix.hex}"
  region              = var.region
  database_version    = var.database_version
  encryption_key_name = var.cloudsql_kms_key_id
  deletion_protection = var.deletion_protection

  settings {
    tier                        = var.database_tier
    edition                     = "ENTERPRISE"
    availability_type           = var.database_high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.database_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = var.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.network_id
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      start_time                     = "02:00"
      binary_log_enabled             = local.is_mysql
      point_in_time_recovery_enabled = !local.is_mysql
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.backup_retained_count
      }
    }

    dynamic "database_flags" {
      for_each = local.is_mysql ? local.mysql_flags : local.postgres_flags

      content {
        name  = database_flags.key
        value = database_flags.value
      }
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    maintenance_window {
      day  = 7
      hour = 4
    }
  }

  # The private IP comes from the private services access peering of the always-on stack.
  lifecycle {
    precondition {
      condition     = var.private_services_connection != ""
      error_message = "Cloud SQL needs private services access: apply the always-on stack first and pass its private_services_connection output."
    }
  }
}

resource "google_sql_database" "app" {
  project  = var.project_id
  name     = var.database_name
  instance = google_sql_database_instance.this.name
}

resource "random_password" "admin" {
  length           = 32
  special          = true
  override_special = "!#%*()-_=+[]{}:?"
}

resource "google_sql_user" "admin" {
  project  = var.project_id
  name     = "dradmin"
  instance = google_sql_database_instance.this.name
  host     = local.is_mysql ? "%" : null
  password = random_password.admin.result
}

# The password never leaves Terraform's state except into Secret Manager; the restore and
# failover DAGs read it from there.
resource "google_secret_manager_secret" "admin_password" {
  project   = var.project_id
  secret_id = "${var.name}-db-admin-password"

  replication {
    auto {}
  }

  labels = var.labels
}

resource "google_secret_manager_secret_version" "admin_password" {
  secret      = google_secret_manager_secret.admin_password.id
  secret_data = random_password.admin.result
}
