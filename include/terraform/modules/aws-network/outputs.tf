output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in availability-zone order."
  value       = [for zone in var.availability_zones : aws_subnet.public[zone].id]
}

output "web_subnet_ids" {
  description = "IDs of the private web-tier subnets, in availability-zone order."
  value       = [for zone in var.availability_zones : aws_subnet.private["web-${zone}"].id]
}

output "app_subnet_ids" {
  description = "IDs of the private app-tier subnets, in availability-zone order."
  value       = [for zone in var.availability_zones : aws_subnet.private["app-${zone}"].id]
}

output "app_subnet_cidrs" {
  description = "CIDRs of the app-tier subnets: the only sources the database security group admits."
  value       = [for zone in var.availability_zones : aws_subnet.private["app-${zone}"].cidr_block]
}

output "db_subnet_ids" {
  description = "IDs of the isolated database subnets, in availability-zone order."
  value       = [for zone in var.availability_zones : aws_subnet.db[zone].id]
}

output "private_route_table_ids" {
  description = "Route tables of the web, app and database subnets (where a VPN propagates its routes)."
  value       = concat([for zone in var.availability_zones : aws_route_table.private[zone].id], [aws_route_table.db.id])
}

output "nat_public_ips" {
  description = "Public IPs of the NAT gateways: what other clouds see as this VPC's source address."
  value       = [for zone in local.nat_zones : aws_eip.nat[zone].public_ip]
}

output "flow_log_group_name" {
  description = "CloudWatch Logs group that receives the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
