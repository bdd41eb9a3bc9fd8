variable "name" {
  type        = string
  description = "Name prefix for every resource, e.g. mcdr-production-dr."
}

variable "location" {
  type        = string
  description = "Azure region of the DR site, e.g. westeurope."
}

variable "address_space" {
  type        = string
  description = "Address space of the VNet; must not overlap the primary VPC (the VPN routes between them)."

  validation {
    condition     = can(cidrhost(var.address_space, 0))
    error_message = "address_space must be a valid IPv4 CIDR block, e.g. 10.20.0.0/16."
  }
}

variable "subnet_cidrs" {
  type = object({
    aks               = string
    ingress           = string
    app_gateway       = string
    mysql             = string
    private_endpoints = string
    gateway           = string
  })
  description = "CIDRs of the subnets: aks (nodes and pods), ingress (internal load balancer of the ingress controller), app_gateway, mysql (delegated to MySQL Flexible Server), private_endpoints, gateway (GatewaySubnet of the VPN gateway)."
}

variable "ingress_host_number" {
  type        = number
  description = "Host number, inside the ingress subnet, of the ingress controller's internal load balancer IP (the App Gateway backend)."
  default     = 10
}

variable "storage_account_name" {
  type        = string
  description = "Globally unique name of the backup storage account (3-24 lowercase letters and digits)."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  type        = string
  description = "Replication of the backup storage account: ZRS, GRS, RAGRS, GZRS or RAGZRS (LRS is refused for backups)."
  default     = "GZRS"

  validation {
    condition     = contains(["ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be ZRS, GRS, RAGRS, GZRS or RAGZRS: backups must survive the loss of one datacenter."
  }
}

variable "backup_container_name" {
  type        = string
  description = "Name of the private container the nightly backups are written to."
  default     = "mysql-backups"
}

variable "blob_soft_delete_days" {
  type        = number
  description = "Days a deleted or overwritten blob (and a deleted container) can still be recovered."
  default     = 14

  validation {
    condition     = var.blob_soft_delete_days >= 7 && var.blob_soft_delete_days <= 365
    error_message = "blob_soft_delete_days must be between 7 and 365."
  }
}

variable "lifecycle_delete_after_days" {
  type        = number
  description = "Backstop: blobs (and old versions) in the backup container older than this are deleted by Azure. The backup DAG's 30-day retention runs first and never deletes the newest verified backup; keep this above 30."
  default     = 35

  validation {
    condition     = var.lifecycle_delete_after_days > 30
    error_message = "lifecycle_delete_after_days must exceed the 30-day retention of the backup DAG, or Azure would delete backups the DAG still keeps."
  }
}

variable "allowed_ip_ranges" {
  type        = list(string)
  description = "Public source ranges admitted by the storage account's and Key Vault's firewalls: the primary site's NAT IPs (the backup job writes from there) and the operators' ranges."
  default     = []

  validation {
    condition     = alltrue([for range in var.allowed_ip_ranges : !endswith(range, "/0")])
    error_message = "allowed_ip_ranges must not contain a /0 range."
  }
}

variable "app_gateway_dns_label" {
  type        = string
  description = "DNS label of the App Gateway's public IP: <label>.<location>.cloudapp.azure.com becomes the DR origin of the traffic layer."
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Log Analytics workspace (storage access logs, AKS logs)."
  default     = 90
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
