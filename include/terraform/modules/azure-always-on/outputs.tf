output "resource_group_name" {
  description = "Resource group of the DR site."
  value       = azurerm_resource_group.this.name
}

output "location" {
  description = "Azure region of the DR site."
  value       = azurerm_resource_group.this.location
}

output "vnet_id" {
  description = "ID of the DR VNet."
  value       = azurerm_virtual_network.this.id
}

output "vnet_name" {
  description = "Name of the DR VNet."
  value       = azurerm_virtual_network.this.name
}

output "address_space" {
  description = "Address space of the DR VNet (routed over the VPN)."
  value       = var.address_space
}

output "subnet_ids" {
  description = "Subnet IDs by role: aks, ingress, app_gateway, mysql, private_endpoints, gateway."
  value = {
    aks               = azurerm_subnet.aks.id
    ingress           = azurerm_subnet.ingress.id
    app_gateway       = azurerm_subnet.app_gateway.id
    mysql             = azurerm_subnet.mysql.id
    private_endpoints = azurerm_subnet.private_endpoints.id
    gateway           = azurerm_subnet.gateway.id
  }
}

output "ingress_private_ip" {
  description = "Private IP reserved for the ingress controller's internal load balancer (set as its loadBalancerIP); the App Gateway's backend."
  value       = cidrhost(var.subnet_cidrs.ingress, var.ingress_host_number)
}

output "app_gateway_public_ip_id" {
  description = "ID of the App Gateway's static public IP (used by azure-failover)."
  value       = azurerm_public_ip.app_gateway.id
}

output "app_gateway_public_ip" {
  description = "The App Gateway's static public IP address."
  value       = azurerm_public_ip.app_gateway.ip_address
}

output "app_gateway_fqdn" {
  description = "DNS name of the App Gateway's public IP: the DR origin of the traffic layer."
  value       = azurerm_public_ip.app_gateway.fqdn
}

output "storage_account_name" {
  description = "Name of the backup storage account."
  value       = azurerm_storage_account.backup.name
}

output "storage_account_id" {
  description = "ID of the backup storage account."
  value       = azurerm_storage_account.backup.id
}

output "blob_endpoint" {
  description = "Blob service endpoint of the backup storage account."
  value       = azurerm_storage_account.backup.primary_blob_endpoint
}

output "backup_container_name" {
  description = "Private container the backups are written to."
  value       = azurerm_storage_container.backup.name
}

output "key_vault_id" {
  description = "ID of the DR site's Key Vault."
  value       = azurerm_key_vault.this.id
}

output "key_vault_uri" {
  description = "URI of the DR site's Key Vault."
  value       = azurerm_key_vault.this.vault_uri
}

output "log_analytics_workspace_id" {
  description = "Log Analytics workspace for the DR site's logs (AKS uses it after a failover)."
  value       = azurerm_log_analytics_workspace.this.id
}
