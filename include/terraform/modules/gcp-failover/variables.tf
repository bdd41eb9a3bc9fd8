variable "name" {
  type        = string
  description = "Name prefix for every resource (the same as gcp-always-on's)."
}

variable "project_id" {
  type        = string
  description = "GCP project of the DR site."
}

variable "region" {
  type        = string
  description = "GCP region of the DR site (regional GKE cluster and Cloud SQL instance)."
}

variable "network_id" {
  type        = string
  description = "DR VPC (gcp-always-on output network_id)."
}

variable "subnet_id" {
  type        = string
  description = "DR subnet of the GKE nodes (gcp-always-on output subnet_id)."
}

variable "pods_range_name" {
  type        = string
  description = "Secondary range for pods (gcp-always-on output pods_range_name)."
}

variable "services_range_name" {
  type        = string
  description = "Secondary range for services (gcp-always-on output services_range_name)."
}

variable "private_services_connection" {
  type        = string
  description = "Private services access peering (gcp-always-on output private_services_connection); Cloud SQL's private IP needs it."
}

variable "gke_kms_key_id" {
  type        = string
  description = "KMS key for application-layer secrets encryption (gcp-always-on output gke_kms_key_id)."
}

variable "cloudsql_kms_key_id" {
  type        = string
  description = "KMS key of the Cloud SQL instance (gcp-always-on output cloudsql_kms_key_id)."
}

variable "master_ipv4_cidr_block" {
  type        = string
  description = "/28 range of the GKE control plane's private endpoint."
}

variable "enable_private_endpoint" {
  type        = bool
  description = "Reach the GKE API only through its private endpoint (over the VPN or from inside the VPC)."
  default     = true
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "Ranges admitted to the GKE API endpoint; never 0.0.0.0/0."
  default     = []

  validation {
    condition     = alltrue([for network in var.master_authorized_networks : !endswith(network.cidr_block, "/0")])
    error_message = "master_authorized_networks must not contain a /0 range."
  }
}

variable "release_channel" {
  type        = string
  description = "GKE release channel: RAPID, REGULAR or STABLE."
  default     = "REGULAR"
}

variable "web_node_pool" {
  type = object({
    machine_type   = string
    min_node_count = number
    max_node_count = number
    disk_size_gb   = optional(number, 50)
  })
  description = "Web-tier node pool (counts are per zone of the regional cluster)."
}

variable "app_node_pool" {
  type = object({
    machine_type   = string
    min_node_count = number
    max_node_count = number
    disk_size_gb   = optional(number, 50)
  })
  description = "App-tier node pool (counts are per zone of the regional cluster)."
}

variable "database_version" {
  type        = string
  description = "Cloud SQL engine and version of the DR database, matching the primary: MYSQL_8_0, MYSQL_8_4, POSTGRES_15, POSTGRES_16..."
  default     = "MYSQL_8_0"

  validation {
    condition     = can(regex("^(MYSQL|POSTGRES)_[0-9_]+$", var.database_version))
    error_message = "database_version must be a MySQL or PostgreSQL version of Cloud SQL, e.g. MYSQL_8_0 or POSTGRES_16."
  }
}

variable "database_tier" {
  type        = string
  description = "Cloud SQL machine tier, e.g. db-custom-2-7680."
}

variable "database_disk_size_gb" {
  type        = number
  description = "Initial Cloud SQL disk size in GB (grows automatically)."
}

variable "database_high_availability" {
  type        = bool
  description = "Regional (HA) instance with a standby in a second zone."
  default     = true
}

variable "backup_retained_count" {
  type        = number
  description = "Number of automated Cloud SQL backups kept."
  default     = 14
}

variable "database_name" {
  type        = string
  description = "Application database the restore fills."
  default     = "app"
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the GKE cluster and the Cloud SQL instance from deletion. Drills turn it off so that cleanup can destroy them."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes them."
  default     = {}
}
