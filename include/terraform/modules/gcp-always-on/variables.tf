variable "name" {
  type        = string
  description = "Name prefix for every resource, e.g. mcdr-production-dr (lowercase letters, digits and hyphens)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "project_id" {
  type        = string
  description = "GCP project of the DR site."
}

variable "region" {
  type        = string
  description = "GCP region of the DR site, e.g. europe-west1."
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the DR subnet (GKE nodes)."
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for GKE pods."
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for GKE services."
}

variable "private_services_prefix_length" {
  type        = number
  description = "Prefix length of the range reserved for private services access (Cloud SQL private IP)."
  default     = 20
}

variable "backup_bucket_name" {
  type        = string
  description = "Globally unique name of the GCS bucket that receives the copy of each backup."
}

variable "bucket_location" {
  type        = string
  description = "Location of the backup bucket: a region, dual-region or multi-region (e.g. EU)."
  default     = "EU"
}

variable "lifecycle_delete_after_days" {
  type        = number
  description = "Backstop: backup objects older than this are deleted by GCS (the backup DAG's 30-day retention runs first; keep this above 30)."
  default     = 35

  validation {
    condition     = var.lifecycle_delete_after_days > 30
    error_message = "lifecycle_delete_after_days must exceed the 30-day retention of the backup DAG."
  }
}

variable "noncurrent_version_days" {
  type        = number
  description = "Days an overwritten or deleted object version is kept before GCS deletes it."
  default     = 14
}

variable "backup_writer_members" {
  type        = list(string)
  description = "IAM members that may write and read backup objects (e.g. the backup job's workload identity principal); bucket-level, no project roles."
  default     = []
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes them."
  default     = {}
}
