variable "name" {
  type        = string
  description = "Name prefix for every resource, e.g. mcdr-production-dr (the same as azure-always-on's)."
}

variable "location" {
  type        = string
  description = "Azure region (azure-always-on output location)."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group of the DR site (azure-always-on output resource_group_name)."
}

variable "vnet_id" {
  type        = string
  description = "DR VNet (azure-always-on output vnet_id); the MySQL private DNS zone is linked to it."
}

variable "aks_subnet_id" {
  type        = string
  description = "Subnet of the AKS nodes (azure-always-on output subnet_ids.aks)."
}

variable "ingress_subnet_id" {
  type        = string
  description = "Subnet of the ingress controller's internal load balancer (azure-always-on output subnet_ids.ingress)."
}

variable "app_gateway_subnet_id" {
  type        = string
  description = "Dedicated subnet of the Application Gateway (azure-always-on output subnet_ids.app_gateway)."
}

variable "mysql_subnet_id" {
  type        = string
  description = "Subnet delegated to MySQL Flexible Server (azure-always-on output subnet_ids.mysql)."
}

variable "app_gateway_public_ip_id" {
  type        = string
  description = "Static public IP of the Application Gateway (azure-always-on output app_gateway_public_ip_id)."
}

variable "app_backend_addresses" {
  type        = list(string)
  description = "Backend pool of the Application Gateway: IPs or FQDNs of the AKS ingress, fed from a module output (azure-always-on's ingress_private_ip), never typed in."

  validation {
    condition     = length(var.app_backend_addresses) > 0
    error_message = "app_backend_addresses needs at least one address: pass the ingress IP output of azure-always-on."
  }
}

variable "app_hostname" {
  type        = string
  description = "Public host name of the application (e.g. app.example.com): the TLS certificate's name, the probe's and backend's Host header."
}

variable "health_probe_path" {
  type        = string
  description = "Path the Application Gateway probes on the ingress."
  default     = "/healthz"
}

variable "tls_certificate_secret_id" {
  type        = string
  description = "Versionless Key Vault secret ID of the application's TLS certificate (PFX) served by the Application Gateway."
}

variable "key_vault_id" {
  type        = string
  description = "Key Vault holding the TLS certificate; the database admin password is stored there too (azure-always-on output key_vault_id)."
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Log Analytics workspace for AKS and Application Gateway logs (azure-always-on output log_analytics_workspace_id)."
}

variable "app_gateway_capacity" {
  type = object({
    min = number
    max = number
  })
  description = "Autoscaling bounds of the Application Gateway (capacity units)."
  default = {
    min = 1
    max = 10
  }
}

variable "waf_mode" {
  type        = string
  description = "WAF mode: Prevention (blocks) or Detection (logs only)."
  default     = "Prevention"

  validation {
    condition     = contains(["Prevention", "Detection"], var.waf_mode)
    error_message = "waf_mode must be Prevention or Detection."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of AKS, e.g. \"1.31\"."
  default     = "1.31"
}

variable "aks_sku_tier" {
  type        = string
  description = "AKS control-plane tier: Standard (uptime SLA) or Free."
  default     = "Standard"
}

variable "aks_private_cluster" {
  type        = bool
  description = "Private API server (reached over the VPN or from inside the VNet)."
  default     = true
}

variable "aks_authorized_ip_ranges" {
  type        = list(string)
  description = "Source ranges admitted to a public API server when aks_private_cluster is false; never 0.0.0.0/0."
  default     = []

  validation {
    condition     = !contains(var.aks_authorized_ip_ranges, "0.0.0.0/0")
    error_message = "aks_authorized_ip_ranges must not contain 0.0.0.0/0."
  }
}

variable "system_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "System node pool (critical add-ons only)."
}

variable "web_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "Web-tier user node pool; the failover DAG scales the deployments, the autoscaler the nodes."
}

variable "app_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "App-tier user node pool."
}

variable "mysql_version" {
  type        = string
  description = "MySQL Flexible Server version: 8.0.21 or 8.4."
  default     = "8.0.21"
}

variable "mysql_sku_name" {
  type        = string
  description = "MySQL Flexible Server SKU, e.g. B_Standard_B2ms (dev) or GP_Standard_D4ds_v4 (production)."
}

variable "mysql_storage_gb" {
  type        = number
  description = "Initial MySQL storage in GB (grows automatically)."
}

variable "mysql_high_availability" {
  type        = bool
  description = "Zone-redundant standby (General Purpose or Business Critical SKUs only)."
  default     = true
}

variable "mysql_backup_retention_days" {
  type        = number
  description = "Automated backup retention of the DR database in days (1-35)."
  default     = 14

  validation {
    condition     = var.mysql_backup_retention_days >= 1 && var.mysql_backup_retention_days <= 35
    error_message = "mysql_backup_retention_days must be between 1 and 35."
  }
}

variable "mysql_geo_redundant_backup" {
  type        = bool
  description = "Copy the DR database's automated backups to the paired region."
  default     = true
}

variable "mysql_admin_username" {
  type        = string
  description = "Administrator login of the DR database; its generated password goes to the Key Vault."
  default     = "dradmin"
}

variable "database_name" {
  type        = string
  description = "Application database the restore fills."
  default     = "app"
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
