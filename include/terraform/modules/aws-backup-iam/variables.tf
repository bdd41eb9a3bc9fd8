variable "name" {
  type        = string
  description = "Name prefix of the role and policy, e.g. mcdr-production."
}

variable "backup_bucket_name" {
  type        = string
  description = "S3 bucket that receives the optional copy of each backup (the primary copy goes to Azure Blob)."
}

variable "backup_prefix" {
  type        = string
  description = "Key prefix the backup job writes under; the role can touch nothing else in the bucket."
  default     = "mysql/"

  validation {
    condition     = length(var.backup_prefix) > 0 && endswith(var.backup_prefix, "/") && !startswith(var.backup_prefix, "/")
    error_message = "backup_prefix must be a non-empty relative prefix ending in \"/\", e.g. mysql/."
  }
}

variable "backup_bucket_kms_key_arn" {
  type        = string
  description = "KMS key of the bucket's default encryption (SSE-KMS); null when the bucket uses SSE-S3."
  default     = null
}

variable "database_secret_arns" {
  type        = list(string)
  description = "Secrets Manager secrets the job may read (the RDS master secret, or the backup user's secret)."
  default     = []
}

variable "eks_cluster_name" {
  type        = string
  description = "EKS cluster whose pod identity may assume the role; null to skip the pod identity association."
  default     = null
}

variable "kubernetes_namespace" {
  type        = string
  description = "Namespace of the backup job's service account."
  default     = "airflow"
}

variable "kubernetes_service_account" {
  type        = string
  description = "Service account the backup job runs as (the Airflow worker's, with the KubernetesExecutor)."
  default     = "airflow-worker"
}

variable "trusted_role_arns" {
  type        = list(string)
  description = "Other IAM roles that may assume the backup role (e.g. the role of a backup VM during migration)."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource (on top of the provider's default_tags)."
  default     = {}
}
