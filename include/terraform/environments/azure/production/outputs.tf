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

output "resource_group_name" {
  description = "Resource group of the DR site."
  value       = local.always_on ? one(module.always_on[*].resource_group_name) : try(local.always_on_outputs.resource_group_name, null)
}

output "location" {
  description = "Azure region of the DR site."
  value       = local.always_on ? one(module.always_on[*].location) : try(local.always_on_outputs.location, null)
}

output "vnet_id" {
  description = "DR VNet."
  value       = local.always_on ? one(module.always_on[*].vnet_id) : try(local.always_on_outputs.vnet_id, null)
}

output "address_space" {
  description = "Address space of the DR VNet."
  value       = local.always_on ? one(module.always_on[*].address_space) : try(local.always_on_outputs.address_space, null)
}

output "subnet_ids" {
  description = "Subnets of the DR VNet by role."
  value       = local.always_on ? one(module.always_on[*].subnet_ids) : try(local.always_on_outputs.subnet_ids, null)
}

output "ingress_private_ip" {
  description = "Internal load balancer IP reserved for the AKS ingress controller (its loadBalancerIP)."
  value       = local.always_on ? one(module.always_on[*].ingress_private_ip) : try(local.always_on_outputs.ingress_private_ip, null)
}

output "app_gateway_public_ip_id" {
  description = "ID of the App Gateway's static public IP."
  value       = local.always_on ? one(module.always_on[*].app_gateway_public_ip_id) : try(local.always_on_outputs.app_gateway_public_ip_id, null)
}

output "app_gateway_public_ip" {
  description = "Public IP of the DR site's entry (App Gateway)."
  value       = local.always_on ? one(module.always_on[*].app_gateway_public_ip) : try(local.always_on_outputs.app_gateway_public_ip, null)
}

output "app_gateway_fqdn" {
  description = "DNS name of the App Gateway's IP: the DR origin of the traffic layers."
  value       = local.always_on ? one(module.always_on[*].app_gateway_fqdn) : try(local.always_on_outputs.app_gateway_fqdn, null)
}

output "storage_account_name" {
  description = "Backup storage account."
  value       = local.always_on ? one(module.always_on[*].storage_account_name) : try(local.always_on_outputs.storage_account_name, null)
}

output "blob_endpoint" {
  description = "Blob endpoint of the backup storage account."
  value       = local.always_on ? one(module.always_on[*].blob_endpoint) : try(local.always_on_outputs.blob_endpoint, null)
}

output "backup_container" {
  description = "Private container of the nightly backups."
  value       = local.always_on ? one(module.always_on[*].backup_container_name) : try(local.always_on_outputs.backup_container, null)
}

output "key_vault_id" {
  description = "Key Vault of the DR site."
  value       = local.always_on ? one(module.always_on[*].key_vault_id) : try(local.always_on_outputs.key_vault_id, null)
}

output "key_vault_uri" {
  description = "URI of the DR site's Key Vault (TLS certificate, database admin password)."
  value       = local.always_on ? one(module.always_on[*].key_vault_uri) : try(local.always_on_outputs.key_vault_uri, null)
}

output "log_analytics_workspace_id" {
  description = "Log Analytics workspace of the DR site."
  value       = local.always_on ? one(module.always_on[*].log_analytics_workspace_id) : try(local.always_on_outputs.log_analytics_workspace_id, null)
}

output "vpn_connection_id" {
  description = "AWS VPN connection to the primary VPC; null without VPN."
  value       = local.always_on ? one(module.vpn[*].aws_vpn_connection_id) : try(local.always_on_outputs.vpn_connection_id, null)
}

output "cluster_name" {
  description = "Name of the DR AKS cluster."
  value       = one(module.failover[*].cluster_name)
}

output "node_pool_names" {
  description = "AKS user node pools by tier (web, app)."
  value       = one(module.failover[*].node_pool_names)
}

output "database_endpoint" {
  description = "Private host name of the DR MySQL Flexible Server."
  value       = one(module.failover[*].mysql_fqdn)
}

output "database_admin_username" {
  description = "Administrator login of the DR database."
  value       = one(module.failover[*].mysql_admin_username)
}

output "database_admin_secret_id" {
  description = "Key Vault secret holding the DR database's admin password (the ID, not the password)."
  value       = one(module.failover[*].mysql_admin_password_secret_id)
}

output "app_gateway_id" {
  description = "ID of the Application Gateway."
  value       = one(module.failover[*].app_gateway_id)
}
