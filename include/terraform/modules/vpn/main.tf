# Site-to-site IPsec between the primary VPC (AWS virtual private gateway) and the DR VNet
# (Azure VPN gateway): static routes, IKEv2, AES-256/SHA-256/DH group 14 on both sides, and
# AWS's two tunnels each with an Azure local network gateway, so that either tunnel carries
# replication (DMS, MySQL) and the restore traffic.

locals {
  tunnels = {
    tunnel1 = aws_vpn_connection.azure.tunnel1_address
    tunnel2 = aws_vpn_connection.azure.tunnel2_address
  }
}

# --- Azure side ------------------------------------------------------------------------------

resource "azurerm_public_ip" "vpn" {
  name                = "pip-${var.name}-vpn"
  location            = var.azure_location
  resource_group_name = var.azure_resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = ["1", "2", "3"]

  tags = var.tags
}

resource "azurerm_virtual_network_gateway" "this" {
  name                = "vgw-${var.name}"
  location            = var.azure_location
  resource_group_name = var.azure_resource_group_name
  type                = "Vpn"
  vpn_type            = "RouteBased"
  sku                 = var.azure_gateway_sku
  generation          = "Generation1"
  active_active       = false
  bgp_enabled         = false

  ip_configuration {
    name                          = "vpn"
    public_ip_address_id          = azurerm_public_ip.vpn.id
    private_ip_address_allocation = "Dynamic"
    subnet_id                     = var.azure_gateway_subnet_id
  }

  tags = var.tags
}

resource "azurerm_local_network_gateway" "aws" {
  for_each = local.tunnels

  name                = "lgw-${var.name}-aws-${each.key}"
  location            = var.azure_location
  resource_group_name = var.azure_resource_group_name
  gateway_address     = each.value
  address_space       = [var.aws_vpc_cidr]

  tags = var.tags
}

resource "azurerm_virtual_network_gateway_connection" "aws" {
  for_each = local.tunnels

  name                       = "cn-${var.name}-aws-${each.key}"
  location                   = var.azure_location
  resource_group_name        = var.azure_resource_group_name
  type                       = "IPsec"
  virtual_network_gateway_id = azurerm_virtual_network_gateway.this.id
  local_network_gateway_id   = azurerm_local_network_gateway.aws[each.key].id
  connection_protocol        = "IKEv2"
  shared_key                 = var.preshared_key

  ipsec_policy {
    ike_encryption   = "AES256"
    ike_integrity    = "SHA256"
    dh_group         = "DHGroup14"
    ipsec_encryption = "AES256"
    ipsec_integrity  = "SHA256"
    pfs_group        = "PFS2048"
    sa_lifetime      = 3600
  }

  tags = var.tags
}

# --- AWS side --------------------------------------------------------------------------------

resource "aws_vpn_gateway" "this" {
  vpc_id = var.aws_vpc_id

  tags = merge(var.tags, { Name = "${var.name}-azure" })
}

resource "aws_vpn_gateway_route_propagation" "this" {
  count = length(var.aws_route_table_ids)

  vpn_gateway_id = aws_vpn_gateway.this.id
  route_table_id = var.aws_route_table_ids[count.index]
}

resource "aws_customer_gateway" "azure" {
  bgp_asn    = 65000
  ip_address = azurerm_public_ip.vpn.ip_address
  type       = "ipsec.1"

  tags = merge(var.tags, { Name = "${var.name}-azure" })
}

resource "aws_vpn_connection" "azure" {
  vpn_gateway_id      = aws_vpn_gateway.this.id
  customer_gateway_id = aws_customer_gateway.azure.id
  type                = "ipsec.1"
  static_routes_only  = true

  tunnel1_preshared_key                = var.preshared_key
  tunnel1_ike_versions                 = ["ikev2"]
  tunnel1_phase1_encryption_algorithms = ["AES256"]
  tunnel1_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase1_dh_group_numbers      = [14]
  tunnel1_phase2_encryption_algorithms = ["AES256"]
  tunnel1_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel1_phase2_dh_group_numbers      = [14]

  tunnel2_preshared_key                = var.preshared_key
  tunnel2_ike_versions                 = ["ikev2"]
  tunnel2_phase1_encryption_algorithms = ["AES256"]
  tunnel2_phase1_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase1_dh_group_numbers      = [14]
  tunnel2_phase2_encryption_algorithms = ["AES256"]
  tunnel2_phase2_integrity_algorithms  = ["SHA2-256"]
  tunnel2_phase2_dh_group_numbers      = [14]

  tags = merge(var.tags, { Name = "${var.name}-azure" })
}

resource "aws_vpn_connection_route" "azure" {
  for_each = toset(var.azure_address_spaces)

  vpn_connection_id      = aws_vpn_connection.azure.id
  destination_cidr_block = each.key
}
