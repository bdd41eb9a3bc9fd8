output "cluster_name" {
  description = "Name of the AKS cluster (what the failover DAG scales)."
  value       = azurerm_kubernetes_cluster.this.name
}

output "cluster_id" {
  description = "ID of the AKS cluster."
  value       = azurerm_kubernetes_cluster.this.id
}

output "cluster_api_fqdn" {
  description = "Host name of the Kubernetes API server (private when aks_private_cluster)."
  value       = var.aks_private_cluster ? azurerm_kubernetes_cluster.this.private_fqdn : azurerm_kubernetes_cluster.this.fqdn
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster, for workload identity federation."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "node_pool_names" {
  description = "User node pools by tier (web, app)."
  value       = { for tier, pool in azurerm_kubernetes_cluster_node_pool.tier : tier => pool.name }
}

output "mysql_server_name" {
  description = "Name of the MySQL Flexible Server."
  value       = azurerm_mysql_flexible_server.this.name
}

output "mysql_fqdn" {
  description = "Private host name of the MySQL Flexible Server (resolves inside the VNet and over the VPN)."
  value       = azurerm_mysql_flexible_server.this.fqdn
}

output "mysql_admin_username" {
  description = "Administrator login of the DR database."
  value       = azurerm_mysql_flexible_server.this.administrator_login
}

output "mysql_admin_password_secret_id" {
  description = "Key Vault secret (versionless ID) holding the administrator password: the DAGs read it from there."
  value       = azurerm_key_vault_secret.mysql_admin.versionless_id
}

output "database_name" {
  description = "Application database on the DR server."
  value       = azurerm_mysql_flexible_database.app.name
}

output "app_gateway_id" {
  description = "ID of the Application Gateway."
  value       = azurerm_application_gateway.this.id
}

output "app_gateway_backend_addresses" {
  description = "What the backend pool points at (from the variable, i.e. from another module's output)."
  value       = var.app_backend_addresses
}
