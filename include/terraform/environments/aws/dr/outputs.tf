# Published for the other DAGs (environment_provision reads `terraform output -json`). Values a
# stack does not create are null.

output "stack" {
  description = "Stack this state holds (always-on or failover)."
  value       = var.stack
}

output "environment" {
  description = "Environment name."
  value       = var.environment
}

output "app_endpoint" {
  description = "HTTPS URL of the application (through the traffic layers)."
  value       = one(module.traffic[*].app_endpoint)
}

output "cluster_name" {
  description = "Name of the primary EKS cluster."
  value       = one(module.eks[*].cluster_name)
}

output "cluster_endpoint" {
  description = "Kubernetes API URL of the primary EKS cluster."
  value       = one(module.eks[*].cluster_endpoint)
}

output "node_group_names" {
  description = "EKS node groups by tier (web, app)."
  value       = one(module.eks[*].node_group_names)
}

output "database_endpoint" {
  description = "Host name of the RDS MySQL primary."
  value       = one(module.database[*].endpoint)
}

output "database_port" {
  description = "Port of the RDS MySQL primary."
  value       = one(module.database[*].port)
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret of the RDS master password (the ARN, not the password)."
  value       = one(module.database[*].master_user_secret_arn)
}

output "backup_role_arn" {
  description = "IAM role of the backup job's S3 copy."
  value       = one(module.backup_iam[*].role_arn)
}

output "backup_bucket" {
  description = "S3 bucket of the backup copy."
  value       = local.always_on ? var.backup_bucket_name : null
}

output "vpc_id" {
  description = "Primary VPC (read by the Azure roots' VPN)."
  value       = one(module.network[*].vpc_id)
}

output "vpc_cidr" {
  description = "CIDR of the primary VPC."
  value       = one(module.network[*].vpc_cidr)
}

output "app_subnet_cidrs" {
  description = "App-tier subnets, the database's admitted sources."
  value       = one(module.network[*].app_subnet_cidrs)
}

output "private_route_table_ids" {
  description = "Route tables that learn the DR ranges from the VPN."
  value       = one(module.network[*].private_route_table_ids)
}

output "nat_public_ips" {
  description = "Source IPs of the primary site on the internet (admitted by the DR storage firewalls)."
  value       = one(module.network[*].nat_public_ips)
}

output "cloudfront_distribution_id" {
  description = "CloudFront distribution (switch_cloudfront_origin); null when CloudFront is off."
  value       = one(module.traffic[*].cloudfront_distribution_id)
}

output "route53_health_check_ids" {
  description = "Route 53 health checks by site (primary, dr)."
  value       = one(module.traffic[*].route53_health_check_ids)
}

output "cloudflare_load_balancer_id" {
  description = "Cloudflare load balancer; null when Cloudflare is off."
  value       = one(module.traffic[*].cloudflare_load_balancer_id)
}
