variable "stack" {
  type        = string
  description = "Which stack of the pilot light to plan: always-on (network, KMS, backup bucket, reserved ingress IP) or failover (GKE, Cloud SQL)."

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

variable "project_id" {
  type        = string
  description = "GCP project of the DR site."
}

variable "region" {
  type        = string
  description = "GCP region of the DR site."
}

variable "network" {
  type = object({
    subnet_cidr            = string
    pods_cidr              = string
    services_cidr          = string
    master_ipv4_cidr_block = string
  })
  description = "Address plan of the DR VPC: node subnet, GKE secondary ranges, control-plane /28."
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "Ranges admitted to the GKE API (operators, CI); never 0.0.0.0/0."
  default     = []
}

variable "backup_bucket_name" {
  type        = string
  description = "Globally unique name of the backup bucket."
}

variable "bucket_location" {
  type        = string
  description = "Location of the backup bucket (region, dual- or multi-region)."
  default     = "EU"
}

variable "backup_writer_members" {
  type        = list(string)
  description = "IAM members allowed to write backups to the bucket (the backup job's workload identity principal)."
  default     = []
}

variable "app_hostname" {
  type        = string
  description = "Public host name of the application."
}

variable "web_node_pool" {
  type = object({
    machine_type   = string
    min_node_count = number
    max_node_count = number
  })
  description = "GKE web-tier node pool size (per zone)."
}

variable "app_node_pool" {
  type = object({
    machine_type   = string
    min_node_count = number
    max_node_count = number
  })
  description = "GKE app-tier node pool size (per zone)."
}

variable "database" {
  type = object({
    version             = string
    tier                = string
    disk_size_gb        = number
    high_availability   = bool
    retained_backups    = number
    deletion_protection = bool
  })
  description = "Cloud SQL of the DR site: version (MYSQL_8_0, POSTGRES_16...), size and protection."
}

variable "labels" {
  type        = map(string)
  description = "Extra labels for every resource that takes them."
  default     = {}
}
