# DR site on GCP. Thin root: wiring only, every resource lives in ../../../modules.
#
# Stacks (var.stack, one state each, see backend-*.hcl):
#   always-on  gcp-always-on (network, private services access, KMS, backup bucket, ingress IP)
#   failover   gcp-failover (GKE, Cloud SQL), reading the always-on stack's outputs through
#              terraform_remote_state.

locals {
  name      = "mcdr-${var.environment}-dr"
  always_on = var.stack == "always-on"
  failover  = var.stack == "failover"

  labels = merge(var.labels, {
    project     = "multicloud-dr"
    environment = var.environment
    stack       = var.stack
    managed-by  = "terraform"
  })

  # Same bucket as the backend block in versions.tf.
  state_bucket           = "mcdr-terraform-state-gcp"
  always_on_state_prefix = "gcp/${var.environment}/always-on"

  always_on_outputs = one(data.terraform_remote_state.always_on[*].outputs)
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "terraform_remote_state" "always_on" {
  count = local.failover ? 1 : 0

  backend = "gcs"
  config = {
    bucket = local.state_bucket
    prefix = local.always_on_state_prefix
  }

  lifecycle {
    postcondition {
      condition     = try(self.outputs.network_id, null) != null
      error_message = "The always-on stack of this root has no state yet: apply it first (terraform init -backend-config=backend-always-on.hcl, then apply -var=stack=always-on)."
    }
  }
}

module "always_on" {
  source = "../../../modules/gcp-always-on"
  count  = local.always_on ? 1 : 0

  name                  = local.name
  project_id            = var.project_id
  region                = var.region
  subnet_cidr           = var.network.subnet_cidr
  pods_cidr             = var.network.pods_cidr
  services_cidr         = var.network.services_cidr
  backup_bucket_name    = var.backup_bucket_name
  bucket_location       = var.bucket_location
  backup_writer_members = var.backup_writer_members
  labels                = local.labels
}

module "failover" {
  source = "../../../modules/gcp-failover"
  count  = local.failover ? 1 : 0

  name                        = local.name
  project_id                  = var.project_id
  region                      = var.region
  network_id                  = local.always_on_outputs.network_id
  subnet_id                   = local.always_on_outputs.subnet_id
  pods_range_name             = local.always_on_outputs.pods_range_name
  services_range_name         = local.always_on_outputs.services_range_name
  private_services_connection = local.always_on_outputs.private_services_connection
  gke_kms_key_id              = local.always_on_outputs.gke_kms_key_id
  cloudsql_kms_key_id         = local.always_on_outputs.cloudsql_kms_key_id
  master_ipv4_cidr_block      = var.network.master_ipv4_cidr_block
  master_authorized_networks  = var.master_authorized_networks

  web_node_pool = var.web_node_pool
  app_node_pool = var.app_node_pool

  database_version           = var.database.version
  database_tier              = var.database.tier
  database_disk_size_gb      = var.database.disk_size_gb
  database_high_availability = var.database.high_availability
  backup_retained_count      = var.database.retained_backups
  deletion_protection        = var.database.deletion_protection

  labels = local.labels
}
