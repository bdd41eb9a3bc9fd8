output "aws_vpn_gateway_id" {
  description = "ID of the AWS virtual private gateway."
  value       = aws_vpn_gateway.this.id
}

output "aws_vpn_connection_id" {
  description = "ID of the AWS site-to-site VPN connection (its tunnel status is what the replication checks look at first)."
  value       = aws_vpn_connection.azure.id
}

output "aws_tunnel_addresses" {
  description = "Outside IPs of the two AWS tunnel endpoints."
  value       = [aws_vpn_connection.azure.tunnel1_address, aws_vpn_connection.azure.tunnel2_address]
}

output "azure_vpn_gateway_id" {
  description = "ID of the Azure VPN gateway."
  value       = azurerm_virtual_network_gateway.this.id
}

output "azure_vpn_public_ip" {
  description = "Public IP of the Azure VPN gateway (the AWS customer gateway)."
  value       = azurerm_public_ip.vpn.ip_address
}
