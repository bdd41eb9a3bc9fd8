output "app_endpoint" {
  description = "HTTPS URL of the application."
  value       = "https://${var.app_domain}"
}

output "route53_health_check_ids" {
  description = "Route 53 health check IDs by site (primary, dr); empty when Route 53 is off."
  value       = { for site, check in aws_route53_health_check.origin : site => check.id }
}

output "origin_record_name" {
  description = "Name of the Route 53 failover record pair (null when Route 53 is off)."
  value       = var.enable_route53 ? var.origin_record_name : null
}

output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution (the failover DAG's switch_cloudfront_origin uses it); null when off."
  value       = one(aws_cloudfront_distribution.this[*].id)
}

output "cloudfront_domain_name" {
  description = "*.cloudfront.net name of the distribution; null when off."
  value       = one(aws_cloudfront_distribution.this[*].domain_name)
}

output "cloudflare_load_balancer_id" {
  description = "ID of the Cloudflare load balancer; null when off."
  value       = one(cloudflare_load_balancer.this[*].id)
}

output "cloudflare_pool_ids" {
  description = "Cloudflare pool IDs by site (primary, dr); empty when off."
  value       = { for site, pool in cloudflare_load_balancer_pool.site : site => pool.id }
}
