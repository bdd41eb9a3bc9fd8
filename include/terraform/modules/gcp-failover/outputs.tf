output "cluster_name" {
  description = "Name of the GKE cluster (what the failover DAG scales)."
  value       = google_container_cluster.this.name
}

output "cluster_endpoint" {
  description = "Address of the GKE API server (private when enable_private_endpoint)."
  value       = google_container_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64 CA certificate of the GKE API server."
  value       = google_container_cluster.this.master_auth[0].cluster_ca_certificate
}

output "node_pool_names" {
  description = "Node pools by tier (web, app)."
  value       = { for tier, pool in google_container_node_pool.tier : tier => pool.name }
}

output "database_instance_name" {
  description = "Name of the Cloud SQL instance."
  value       = google_sql_database_instance.this.name
}

output "database_connection_name" {
  description = "Connection name of the Cloud SQL instance (project:region:instance)."
  value       = google_sql_database_instance.this.connection_name
}

output "database_private_ip" {
  description = "Private IP of the Cloud SQL instance (it has no public one)."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database_engine" {
  description = "Engine of the DR database (mysql or postgres)."
  value       = local.database_engine
}

output "database_name" {
  description = "Application database on the DR instance."
  value       = google_sql_database.app.name
}

output "admin_username" {
  description = "Administrator user of the DR database."
  value       = google_sql_user.admin.name
}

output "admin_password_secret_id" {
  description = "Secret Manager secret holding the administrator password: the DAGs read it from there."
  value       = google_secret_manager_secret.admin_password.id
}
