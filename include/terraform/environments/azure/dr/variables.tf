variable "stack" {
  type        = string
  description = "Which stack of the pilot light to plan: always-on (network, backup storage, Key Vault, VPN) or failover (MySQL Flexible Server, AKS, Application Gateway)."

  validation {
    condition     = contains(["always-on", "failover"], var.stack)
    error_message = "stack must be always-on or failover (and match the backend file given to terraform init)."
  }
}

variable "environment" {
  type        = string
  description = "Environment name: dev, staging, production or dr (the drill environment)."

  validation {
    condition     = contains(["dev", "staging", "production", "dr"], var.environment)
    error_message = "environment must be dev, staging, production or dr."
  }
}

variable "subscription_id" {
  type        = string
  description = "Azure subscription of the DR site; null takes ARM_SUBSCRIPTION_ID from the environment."
  default     = null
}

variable "location" {
  type        = string
  description = "Azure region of the DR site."
}

variable "address_space" {
  type        = string
  description = "Address space of the DR VNet (disjoint from the primary VPC)."
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
  description = "Subnets of the DR VNet (see modules/azure-always-on)."
}

variable "storage_account_name" {
  type        = string
  description = "Globally unique name of the backup storage account."
}

variable "storage_replication_type" {
  type        = string
  description = "Replication of the backup storage account (ZRS, GRS, RAGRS, GZRS, RAGZRS)."
  default     = "GZRS"
}

variable "operator_ip_ranges" {
  type        = list(string)
  description = "Operators' and CI's public ranges admitted by the storage and Key Vault firewalls (the primary site's NAT IPs are added from its state)."
  default     = []
}

variable "app_hostname" {
  type        = string
  description = "Public host name of the application (App Gateway certificate and probes)."
}

variable "tls_certificate_secret_id" {
  type        = string
  description = "Versionless Key Vault secret ID of the application's TLS certificate, uploaded to this site's Key Vault."
}

variable "enable_vpn" {
  type        = bool
  description = "Build the site-to-site VPN to the primary VPC (always-on stack)."
  default     = true
}

variable "aws_region" {
  type        = string
  description = "AWS region of the primary site (its VPN side and its state bucket)."
  default     = "eu-west-1"
}

variable "vpn_preshared_key" {
  type        = string
  description = "IPsec pre-shared key of the VPN. Pass TF_VAR_vpn_preshared_key from the secrets backend; never put it in a file."
  default     = null
  sensitive   = true
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of AKS."
  default     = "1.31"
}

variable "aks_sku_tier" {
  type        = string
  description = "AKS control-plane tier (Free or Standard)."
  default     = "Standard"
}

variable "system_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "AKS system node pool size."
}

variable "web_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "AKS web-tier node pool size."
}

variable "app_node_pool" {
  type = object({
    vm_size   = string
    min_count = number
    max_count = number
  })
  description = "AKS app-tier node pool size."
}

variable "app_gateway_capacity" {
  type = object({
    min = number
    max = number
  })
  description = "Autoscaling bounds of the Application Gateway."
}

variable "mysql" {
  type = object({
    sku_name              = string
    storage_gb            = number
    high_availability     = bool
    geo_redundant_backup  = bool
    backup_retention_days = number
  })
  description = "Size and resilience of the DR MySQL Flexible Server."
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource."
  default     = {}
}
