variable "name" {
  type        = string
  description = "Name prefix for every resource, e.g. mcdr-production."
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC; the subnet CIDRs below must lie inside it."

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block, e.g. 10.10.0.0/16."
  }
}

variable "availability_zones" {
  type        = list(string)
  description = "The two availability zones the subnets are spread over, e.g. [\"eu-west-1a\", \"eu-west-1b\"]."

  validation {
    condition     = length(var.availability_zones) == 2
    error_message = "Exactly two availability zones are expected (one subnet per tier per zone)."
  }
}

variable "public_subnet_cidrs" {
  type        = list(string)
  description = "CIDRs of the public subnets (load balancers, NAT gateways), one per availability zone."

  validation {
    condition     = length(var.public_subnet_cidrs) == 2
    error_message = "Give one public subnet CIDR per availability zone (two)."
  }
}

variable "web_subnet_cidrs" {
  type        = list(string)
  description = "CIDRs of the private web-tier subnets (EKS web node group), one per availability zone."

  validation {
    condition     = length(var.web_subnet_cidrs) == 2
    error_message = "Give one web subnet CIDR per availability zone (two)."
  }
}

variable "app_subnet_cidrs" {
  type        = list(string)
  description = "CIDRs of the private app-tier subnets (EKS app node group); the only sources the database admits."

  validation {
    condition     = length(var.app_subnet_cidrs) == 2
    error_message = "Give one app subnet CIDR per availability zone (two)."
  }
}

variable "db_subnet_cidrs" {
  type        = list(string)
  description = "CIDRs of the isolated database subnets (no route to the internet), one per availability zone."

  validation {
    condition     = length(var.db_subnet_cidrs) == 2
    error_message = "Give one database subnet CIDR per availability zone (two)."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for both zones (cheaper, for dev) instead of one per zone (survives a zone outage)."
  default     = false
}

variable "flow_log_retention_days" {
  type        = number
  description = "How many days VPC flow logs are kept in CloudWatch Logs."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be one of the values CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "flow_log_traffic_type" {
  type        = string
  description = "Which traffic the flow logs record: ACCEPT, REJECT or ALL."
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource (on top of the provider's default_tags)."
  default     = {}
}
