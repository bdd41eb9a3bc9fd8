variable "name" {
  type        = string
  description = "Name prefix, e.g. mcdr-production."
}

variable "aws_vpc_id" {
  type        = string
  description = "Primary VPC (aws-network output vpc_id)."
}

variable "aws_vpc_cidr" {
  type        = string
  description = "CIDR of the primary VPC, announced to Azure (aws-network output vpc_cidr)."
}

variable "aws_route_table_ids" {
  type        = list(string)
  description = "Route tables of the primary VPC that learn the Azure ranges (aws-network output private_route_table_ids)."
}

variable "azure_resource_group_name" {
  type        = string
  description = "Resource group of the DR site (azure-always-on output resource_group_name)."
}

variable "azure_location" {
  type        = string
  description = "Azure region of the DR site (azure-always-on output location)."
}

variable "azure_gateway_subnet_id" {
  type        = string
  description = "GatewaySubnet of the DR VNet (azure-always-on output subnet_ids.gateway)."
}

variable "azure_address_spaces" {
  type        = list(string)
  description = "Ranges of the DR VNet routed to AWS (azure-always-on output address_space)."
}

variable "azure_gateway_sku" {
  type        = string
  description = "SKU of the Azure VPN gateway; the AZ SKUs are zone-redundant."
  default     = "VpnGw1AZ"
}

variable "preshared_key" {
  type        = string
  description = "IPsec pre-shared key of both tunnels: 8-64 letters, digits, '.' or '_', not starting with 0 (AWS rules). Pass it as TF_VAR_vpn_preshared_key, never in a file."
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z1-9._][A-Za-z0-9._]{7,63}$", var.preshared_key))
    error_message = "preshared_key must be 8-64 letters, digits, '.' or '_' and must not start with 0."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
