variable "identifier" {
  type        = string
  description = "RDS instance identifier, e.g. mcdr-production-mysql."
}

variable "engine_version" {
  type        = string
  description = "MySQL engine version, e.g. \"8.0\" (minor upgrades are applied automatically)."
  default     = "8.0"
}

variable "parameter_group_family" {
  type        = string
  description = "Parameter group family matching engine_version, e.g. mysql8.0."
  default     = "mysql8.0"
}

variable "instance_class" {
  type        = string
  description = "Instance class, e.g. db.t4g.medium (dev) or db.r6g.xlarge (production)."
}

variable "allocated_storage_gb" {
  type        = number
  description = "Initial storage in GB."

  validation {
    condition     = var.allocated_storage_gb >= 20
    error_message = "allocated_storage_gb must be at least 20 (the RDS minimum for gp3)."
  }
}

variable "max_allocated_storage_gb" {
  type        = number
  description = "Upper bound for storage autoscaling in GB; 0 turns autoscaling off."
  default     = 0
}

variable "database_name" {
  type        = string
  description = "Name of the application database created with the instance."
  default     = "app"
}

variable "master_username" {
  type        = string
  description = "Name of the master user."
  default     = "dbadmin"
}

variable "manage_master_user_password" {
  type        = bool
  description = "Let RDS generate the master password and keep it, rotated, in Secrets Manager (recommended). When false, master_password is used."
  default     = true
}

variable "master_password" {
  type        = string
  description = "Master password, used only when manage_master_user_password is false. Pass it as TF_VAR_master_password, never in a file."
  default     = null
  sensitive   = true
}

variable "vpc_id" {
  type        = string
  description = "VPC of the database (aws-network output vpc_id)."
}

variable "db_subnet_ids" {
  type        = list(string)
  description = "Isolated database subnets, one per availability zone (aws-network output db_subnet_ids)."
}

variable "allowed_cidr_blocks" {
  type        = list(string)
  description = "Source CIDRs admitted on the MySQL port: the app subnets' CIDRs (and the DR site's range over the VPN for replication). Never 0.0.0.0/0."

  validation {
    condition     = length(var.allowed_cidr_blocks) > 0 && alltrue([for cidr in var.allowed_cidr_blocks : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "allowed_cidr_blocks must list specific CIDRs (e.g. the app subnets); 0.0.0.0/0 and other /0 ranges are refused."
  }
}

variable "multi_az" {
  type        = bool
  description = "Keep a synchronous standby in a second availability zone."
  default     = true
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups (and point-in-time recovery) RDS keeps."
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35: binary logs (needed for CDC) require backups on."
  }
}

variable "backup_window" {
  type        = string
  description = "Daily UTC window of the automated backup, e.g. 02:00-03:00."
  default     = "02:00-03:00"
}

variable "maintenance_window" {
  type        = string
  description = "Weekly UTC maintenance window, e.g. sun:04:00-sun:05:00."
  default     = "sun:04:00-sun:05:00"
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse deletion of the instance until this is turned off."
  default     = true
}

variable "skip_final_snapshot" {
  type        = bool
  description = "Delete without a final snapshot (only sensible for throwaway dev instances)."
  default     = false
}

variable "monitoring_interval_seconds" {
  type        = number
  description = "Enhanced monitoring interval in seconds (0 turns it off; 1, 5, 10, 15, 30 or 60)."
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.monitoring_interval_seconds)
    error_message = "monitoring_interval_seconds must be 0, 1, 5, 10, 15, 30 or 60."
  }
}

variable "log_retention_days" {
  type        = number
  description = "How many days the exported MySQL logs (error, slow query, audit) are kept in CloudWatch Logs."
  default     = 365
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource (on top of the provider's default_tags)."
  default     = {}
}
