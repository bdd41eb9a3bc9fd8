variable "stack" {
  type        = string
  description = "Which stack of the pilot light to plan: always-on (network, EKS, RDS, backup IAM, traffic) or failover (nothing on AWS: the DR site's clouds hold it)."

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

variable "region" {
  type        = string
  description = "AWS region of the primary site."
}

variable "network" {
  type = object({
    vpc_cidr            = string
    availability_zones  = list(string)
    public_subnet_cidrs = list(string)
    web_subnet_cidrs    = list(string)
    app_subnet_cidrs    = list(string)
    db_subnet_cidrs     = list(string)
    single_nat_gateway  = bool
  })
  description = "Address plan of the primary VPC (two availability zones)."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes version of EKS."
  default     = "1.31"
}

variable "web_node_group" {
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
  })
  description = "EKS web-tier node group size."
}

variable "app_node_group" {
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
  })
  description = "EKS app-tier node group size."
}

variable "database" {
  type = object({
    instance_class           = string
    allocated_storage_gb     = number
    max_allocated_storage_gb = number
    multi_az                 = bool
    backup_retention_days    = number
    deletion_protection      = bool
  })
  description = "Size and protection of the RDS MySQL primary."
}

variable "database_extra_allowed_cidrs" {
  type        = list(string)
  description = "Ranges admitted to the database besides the app subnets, e.g. the DR VNet over the VPN during failback replication. Never 0.0.0.0/0."
  default     = []
}

variable "backup_bucket_name" {
  type        = string
  description = "S3 bucket of the optional backup copy (owned by the account baseline)."
}

variable "traffic" {
  type = object({
    app_domain                    = string
    route53_zone_id               = string
    origin_record_name            = string
    primary_origin_domain         = string
    dr_origin_domain              = string
    active_site                   = optional(string, "primary")
    enable_route53                = optional(bool, true)
    enable_cloudfront             = optional(bool, false)
    acm_certificate_arn           = optional(string)
    web_acl_arn                   = optional(string)
    access_log_bucket_domain_name = optional(string)
    enable_cloudflare             = optional(bool, false)
    cloudflare_account_id         = optional(string)
    cloudflare_zone_id            = optional(string)
    cloudflare_hostname           = optional(string)
  })
  description = "Traffic layers in front of the primary and DR origins (see modules/traffic). dr_origin_domain is the DR root's app_gateway_fqdn output (Azure) or a DNS name of its ingress_ip (GCP)."
}

variable "tags" {
  type        = map(string)
  description = "Extra tags for every resource."
  default     = {}
}
