# Published for the other DAGs (environment_provision reads `terraform output -json`). The
# failover stack repeats the always-on values it read, so one stack's outputs are enough; values
# a stack does not have are null.

output "stack" {
  description = "Stack this state holds (always-on or failover)."
  value       = var.stack
}

output "environment" {
  description = "Environment name."
  value       = var.environment
}

output "app_endpoint" {
  description = "HTTPS URL of the application on the DR site; null until the failover stack exists."
  value       = local.failover ? "https://${var.app_hostname}" : null
}

output "network_id" {
  description = "DR VPC network."
  value       = local.always_on ? one(module.always_on[*].network_id) : try(local.always_on_outputs.network_id, null)
}

output "subnet_id" {
  description = "DR subnet of the GKE nodes."
  value       = local.always_on ? one(module.always_on[*].subnet_id) : try(local.always_on_outputs.subnet_id, null)
}

output "pods_range_name" {
  description = "Secondary range of the GKE pods."
  value       = local.always_on ? one(module.always_on[*].pods_range_name) : try(local.always_on_outputs.pods_range_name, null)
}

output "services_range_name" {
  description = "Secondary range of the GKE services."
  value       = local.always_on ? one(module.always_on[*].services_range_name) : try(local.always_on_outputs.services_range_name, null)
}

output "private_services_connection" {
  description = "Private services access peering (Cloud SQL private IP)."
  value       = local.always_on ? one(module.always_on[*].private_services_connection) : try(local.always_on_outputs.private_services_connection, null)
}

output "ingress_address_name" {
  description = "Reserved global address of the GKE ingress (kubernetes.io/ingress.global-static-ip-name)."
  value       = local.always_on ? one(module.always_on[*].ingress_address_name) : try(local.always_on_outputs.ingress_address_name, null)
}

output "ingress_ip" {
  description = "Reserved global IP of the DR ingress: the DR origin of the traffic layers."
  value       = local.always_on ? one(module.always_on[*].ingress_ip) : try(local.always_on_outputs.ingress_ip, null)
}

output "backup_bucket" {
  description = "Backup bucket."
  value       = local.always_on ? one(module.always_on[*].backup_bucket_name) : try(local.always_on_outputs.backup_bucket, null)
}

output "backup_bucket_url" {
  description = "gs:// URL of the backup bucket."
  value       = local.always_on ? one(module.always_on[*].backup_bucket_url) : try(local.always_on_outputs.backup_bucket_url, null)
}

output "gke_kms_key_id" {
  description = "KMS key of GKE secrets encryption."
  value       = local.always_on ? one(module.always_on[*].gke_kms_key_id) : try(local.always_on_outputs.gke_kms_key_id, null)
}

output "cloudsql_kms_key_id" {
  description = "KMS key of Cloud SQL."
  value       = local.always_on ? one(module.always_on[*].cloudsql_kms_key_id) : try(local.always_on_outputs.cloudsql_kms_key_id, null)
}

output "cluster_name" {
  description = "Name of the DR GKE cluster."
  value       = one(module.failover[*].cluster_name)
}

output "cluster_endpoint" {
  description = "Address of the DR GKE API server."
  value       = one(module.failover[*].cluster_endpoint)
}

output "node_pool_names" {
  description = "GKE node pools by tier (web, app)."
  value       = one(module.failover[*].node_pool_names)
}

output "database_endpoint" {
  description = "Private IP of the DR Cloud SQL instance (it has no public one)."
  value       = one(module.failover[*].database_private_ip)
}

output "database_connection_name" {
  description = "Connection name of the DR Cloud SQL instance."
  value       = one(module.failover[*].database_connection_name)
}

output "database_engine" {
  description = "Engine of the DR database (mysql or postgres)."
  value       = one(module.failover[*].database_engine)
}

output "database_admin_username" {
  description = "Administrator user of the DR database."
  value       = one(module.failover[*].admin_username)
}

output "database_admin_secret_id" {
  description = "Secret Manager secret of the DR database's admin password (the ID, not the password)."
  value       = one(module.failover[*].admin_password_secret_id)
}
