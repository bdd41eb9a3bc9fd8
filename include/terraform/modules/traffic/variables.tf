variable "name" {
  type        = string
  description = "Name prefix, e.g. mcdr-production."
}

variable "app_domain" {
  type        = string
  description = "Public host name of the application, e.g. app.example.com."
}

variable "primary_origin_domain" {
  type        = string
  description = "DNS name of the primary site's origin (the EKS ingress load balancer's name, kept by external-dns)."
}

variable "dr_origin_domain" {
  type        = string
  description = "DNS name of the DR site's origin: the azure-always-on app_gateway_fqdn or a name for the gcp-always-on ingress_ip."
}

variable "health_check_path" {
  type        = string
  description = "Path every traffic layer probes on both origins (HTTPS, expects 2xx/3xx)."
  default     = "/healthz"
}

variable "active_site" {
  type        = string
  description = "Site that receives writes (non-GET requests) through CloudFront: primary or dr. Reads fail over by themselves; the failover DAG (or -var active_site=dr) switches writes."
  default     = "primary"

  validation {
    condition     = contains(["primary", "dr"], var.active_site)
    error_message = "active_site must be primary or dr."
  }
}

# --- Route 53 ---------------------------------------------------------------------------------

variable "enable_route53" {
  type        = bool
  description = "Create the Route 53 health checks and failover records (PRIMARY/SECONDARY) on origin_record_name."
  default     = true
}

variable "route53_zone_id" {
  type        = string
  description = "Hosted zone of app_domain and origin_record_name."
}

variable "origin_record_name" {
  type        = string
  description = "Name of the failover record pair, e.g. origin.app.example.com (PRIMARY -> primary origin, SECONDARY -> DR origin)."
}

variable "health_check_failure_threshold" {
  type        = number
  description = "Consecutive failed Route 53 probes (30 s apart) before an origin counts as down."
  default     = 3
}

# --- CloudFront -------------------------------------------------------------------------------

variable "enable_cloudfront" {
  type        = bool
  description = "Create the CloudFront distribution (origin group primary -> DR) and point app_domain at it."
  default     = true
}

variable "acm_certificate_arn" {
  type        = string
  description = "ACM certificate for app_domain, in us-east-1 (required by CloudFront)."
  default     = null
}

variable "web_acl_arn" {
  type        = string
  description = "WAFv2 web ACL (scope CLOUDFRONT, us-east-1) attached to the distribution, owned by the account's firewall manager; required when enable_cloudfront."
  default     = null
}

variable "access_log_bucket_domain_name" {
  type        = string
  description = "S3 bucket (its bucket_domain_name) that receives CloudFront standard access logs; required when enable_cloudfront."
  default     = null
}

variable "dynamic_path_patterns" {
  type        = list(string)
  description = "Path patterns whose requests (all methods) go to the active site instead of the read-only origin group, e.g. [\"/api/*\"]."
  default     = ["/api/*"]
}

variable "price_class" {
  type        = string
  description = "CloudFront price class."
  default     = "PriceClass_100"
}

# --- Cloudflare -------------------------------------------------------------------------------

variable "enable_cloudflare" {
  type        = bool
  description = "Create the Cloudflare load balancer (pools and monitor) on cloudflare_hostname."
  default     = false
}

variable "cloudflare_account_id" {
  type        = string
  description = "Cloudflare account that owns the monitor and the pools."
  default     = null
}

variable "cloudflare_zone_id" {
  type        = string
  description = "Cloudflare zone of cloudflare_hostname."
  default     = null
}

variable "cloudflare_hostname" {
  type        = string
  description = "Host name of the Cloudflare load balancer; null uses app_domain (then do not enable CloudFront for the same name)."
  default     = null
}

variable "cloudflare_check_regions" {
  type        = list(string)
  description = "Cloudflare regions the monitors probe from."
  default     = ["WEU", "ENAM"]
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every AWS resource (on top of the provider's default_tags)."
  default     = {}
}
