locals {
  origins = {
    primary = var.primary_origin_domain
    dr      = var.dr_origin_domain
  }

  cloudflare_hostname = coalesce(var.cloudflare_hostname, var.app_domain)
}

# --- Route 53: health checks and the PRIMARY/SECONDARY failover pair --------------------------

resource "aws_route53_health_check" "origin" {
  for_each = var.enable_route53 ? local.origins : {}

  fqdn              = each.value
  type              = "HTTPS"
  port              = 443
  resource_path     = var.health_check_path
  enable_sni        = true
  failure_threshold = var.health_check_failure_threshold
  request_interval  = 30
  measure_latency   = true

  tags = merge(var.tags, { Name = "${var.name}-${each.key}-origin" })
}

resource "aws_route53_record" "origin_primary" {
  count = var.enable_route53 ? 1 : 0

  zone_id         = var.route53_zone_id
  name            = var.origin_record_name
  type            = "CNAME"
  ttl             = 60
  records         = [var.primary_origin_domain]
  set_identifier  = "primary"
  health_check_id = aws_route53_health_check.origin["primary"].id

  failover_routing_policy {
    type = "PRIMARY"
  }
}

resource "aws_route53_record" "origin_secondary" {
  count = var.enable_route53 ? 1 : 0

  zone_id         = var.route53_zone_id
  name            = var.origin_record_name
  type            = "CNAME"
  ttl             = 60
  records         = [var.dr_origin_domain]
  set_identifier  = "secondary"
  health_check_id = aws_route53_health_check.origin["dr"].id

  failover_routing_policy {
    type = "SECONDARY"
  }
}

# --- CloudFront: origin group primary -> DR ---------------------------------------------------

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer" {
  name = "Managed-AllViewer"
}

resource "aws_cloudfront_response_headers_policy" "security" {
  count = var.enable_cloudfront ? 1 : 0

  name    = "${var.name}-security-headers"
  comment = "Security headers of ${var.app_domain}"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_305:The origin is an application that serves "/" itself; a default root object only applies to S3-style origins.
  #checkov:skip=CKV_AWS_374:The application is served worldwide; no geo restriction.
  #checkov:skip=CKV2_AWS_47:The web ACL comes from web_acl_arn (required by a precondition below); it is the account's central ACL, which carries AWSManagedRulesKnownBadInputsRuleSet (Log4j). checkov cannot see its rules.
  #checkov:skip=CKV_AWS_86:logging_config is a dynamic block fed by access_log_bucket_domain_name, which a precondition below requires whenever CloudFront is enabled; checkov flags the roots where CloudFront is off.
  count = var.enable_cloudfront ? 1 : 0

  enabled         = true
  is_ipv6_enabled = true
  http_version    = "http2and3"
  comment         = "${var.name}: ${var.app_domain}, primary with DR failover"
  aliases         = [var.app_domain]
  price_class     = var.price_class
  web_acl_id      = var.web_acl_arn

  dynamic "origin" {
    for_each = local.origins

    content {
      origin_id   = origin.key
      domain_name = origin.value

      custom_origin_config {
        http_port                = 80
        https_port               = 443
        origin_protocol_policy   = "https-only"
        origin_ssl_protocols     = ["TLSv1.2"]
        origin_read_timeout      = 30
        origin_keepalive_timeout = 5
      }
    }
  }

  # Reads fail over by themselves: a 5xx or a timeout from the primary is retried on the DR
  # origin. CloudFront origin groups only take GET, HEAD and OPTIONS.
  origin_group {
    origin_id = "primary-then-dr"

    failover_criteria {
      status_codes = [500, 502, 503, 504]
    }

    member {
      origin_id = "primary"
    }

    member {
      origin_id = "dr"
    }
  }

  default_cache_behavior {
    target_origin_id           = "primary-then-dr"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security[0].id
  }

  # Writes go to the active site only (switched by the failover DAG).
  dynamic "ordered_cache_behavior" {
    for_each = var.dynamic_path_patterns

    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = var.active_site
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = true
      cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
      origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer.id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.security[0].id
    }
  }

  viewer_certificate {
    acm_certificate_arn      = var.acm_certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  dynamic "logging_config" {
    for_each = var.access_log_bucket_domain_name == null ? [] : [var.access_log_bucket_domain_name]

    content {
      bucket          = logging_config.value
      prefix          = "cloudfront/${var.name}/"
      include_cookies = false
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.acm_certificate_arn != null
      error_message = "CloudFront needs acm_certificate_arn (an ACM certificate for app_domain in us-east-1)."
    }

    precondition {
      condition     = var.web_acl_arn != null && var.access_log_bucket_domain_name != null
      error_message = "CloudFront needs web_acl_arn (WAFv2, scope CLOUDFRONT) and access_log_bucket_domain_name: no distribution without a WAF and access logs."
    }
  }
}

resource "aws_route53_record" "app" {
  for_each = var.enable_cloudfront ? toset(["A", "AAAA"]) : toset([])

  zone_id = var.route53_zone_id
  name    = var.app_domain
  type    = each.key

  alias {
    name                   = aws_cloudfront_distribution.this[0].domain_name
    zone_id                = aws_cloudfront_distribution.this[0].hosted_zone_id
    evaluate_target_health = false
  }
}

# --- Cloudflare load balancer: pools, monitor, failover order --------------------------------

resource "cloudflare_load_balancer_monitor" "https" {
  count = var.enable_cloudflare ? 1 : 0

  account_id       = var.cloudflare_account_id
  description      = "${var.name} HTTPS ${var.health_check_path}"
  type             = "https"
  method           = "GET"
  path             = var.health_check_path
  expected_codes   = "2xx"
  interval         = 60
  timeout          = 5
  retries          = 2
  allow_insecure   = false
  follow_redirects = false

  header {
    header = "Host"
    values = [local.cloudflare_hostname]
  }
}

resource "cloudflare_load_balancer_pool" "site" {
  for_each = var.enable_cloudflare ? local.origins : {}

  account_id      = var.cloudflare_account_id
  name            = "${var.name}-${each.key}"
  description     = "${each.key} site of ${local.cloudflare_hostname}"
  monitor         = cloudflare_load_balancer_monitor.https[0].id
  minimum_origins = 1
  check_regions   = var.cloudflare_check_regions

  origins {
    name    = each.key
    address = each.value
    enabled = true

    header {
      header = "Host"
      values = [local.cloudflare_hostname]
    }
  }
}

resource "cloudflare_load_balancer" "this" {
  count = var.enable_cloudflare ? 1 : 0

  zone_id          = var.cloudflare_zone_id
  name             = local.cloudflare_hostname
  description      = "${var.name}: primary, then DR"
  proxied          = true
  steering_policy  = "off"
  session_affinity = "none"
  # Pools in failover order: the DR pool takes traffic only while the primary is unhealthy.
  default_pool_ids = [cloudflare_load_balancer_pool.site["primary"].id, cloudflare_load_balancer_pool.site["dr"].id]
  fallback_pool_id = cloudflare_load_balancer_pool.site["dr"].id
}
