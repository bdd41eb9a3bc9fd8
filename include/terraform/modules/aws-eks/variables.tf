variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster, e.g. mcdr-production."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the control plane and the node groups, e.g. \"1.31\"."
  default     = "1.31"
}

variable "vpc_id" {
  type        = string
  description = "VPC the cluster lives in (aws-network output vpc_id)."
}

variable "web_subnet_ids" {
  type        = list(string)
  description = "Private subnets of the web node group (aws-network output web_subnet_ids)."
}

variable "app_subnet_ids" {
  type        = list(string)
  description = "Private subnets of the app node group (aws-network output app_subnet_ids)."
}

variable "endpoint_public_access" {
  type        = bool
  description = "Expose the Kubernetes API endpoint on the internet too. Off by default: the API is reached from inside the VPC (or over the VPN)."
  default     = false
}

variable "public_access_cidrs" {
  type        = list(string)
  description = "Source CIDRs admitted to the public API endpoint when endpoint_public_access is true; never 0.0.0.0/0."
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "public_access_cidrs must not contain 0.0.0.0/0: list the operators' and CI's egress ranges."
  }
}

variable "web_node_group" {
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gb   = optional(number, 50)
  })
  description = "Instance types and sizes of the web-tier managed node group."

  validation {
    condition     = var.web_node_group.min_size <= var.web_node_group.desired_size && var.web_node_group.desired_size <= var.web_node_group.max_size
    error_message = "web_node_group needs min_size <= desired_size <= max_size."
  }
}

variable "app_node_group" {
  type = object({
    instance_types = list(string)
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_size_gb   = optional(number, 50)
  })
  description = "Instance types and sizes of the app-tier managed node group."

  validation {
    condition     = var.app_node_group.min_size <= var.app_node_group.desired_size && var.app_node_group.desired_size <= var.app_node_group.max_size
    error_message = "app_node_group needs min_size <= desired_size <= max_size."
  }
}

variable "log_retention_days" {
  type        = number
  description = "How many days the control-plane logs are kept in CloudWatch Logs."
  default     = 365
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource (on top of the provider's default_tags)."
  default     = {}
}
