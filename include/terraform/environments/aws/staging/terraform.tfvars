# aws/staging - staging: production-like topology at reduced size.
environment = "staging"
region      = "eu-west-1"

network = {
  vpc_cidr            = "10.20.0.0/16"
  availability_zones  = ["eu-west-1a", "eu-west-1b"]
  public_subnet_cidrs = ["10.20.0.0/24", "10.20.1.0/24"]
  web_subnet_cidrs    = ["10.20.10.0/23", "10.20.12.0/23"]
  app_subnet_cidrs    = ["10.20.20.0/22", "10.20.24.0/22"]
  db_subnet_cidrs     = ["10.20.30.0/24", "10.20.31.0/24"]
  single_nat_gateway  = false
}

web_node_group = {
  instance_types = ["m6i.large"]
  min_size       = 2
  desired_size   = 2
  max_size       = 4
}

app_node_group = {
  instance_types = ["m6i.large"]
  min_size       = 2
  desired_size   = 2
  max_size       = 6
}

database = {
  instance_class           = "db.r6g.large"
  allocated_storage_gb     = 100
  max_allocated_storage_gb = 500
  multi_az                 = true
  backup_retention_days    = 7
  deletion_protection      = true
}

backup_bucket_name = "mcdr-staging-backups"

# primary_origin_domain is kept by external-dns for the EKS ingress load balancer;
# dr_origin_domain = the azure/staging root's output app_gateway_fqdn (for a GCP DR site: a DNS
# name of the gcp root's ingress_ip).
traffic = {
  app_domain                    = "app.staging.example.com"
  route53_zone_id               = "Z0123456789EXAMPLE"
  origin_record_name            = "origin.app.staging.example.com"
  primary_origin_domain         = "aws-origin.app.staging.example.com"
  dr_origin_domain              = "mcdr-staging-dr-appgw.westeurope.cloudapp.azure.com"
  enable_route53                = true
  enable_cloudfront             = true
  acm_certificate_arn           = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  web_acl_arn                   = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/mcdr-edge/00000000-0000-0000-0000-000000000000"
  access_log_bucket_domain_name = "mcdr-edge-logs.s3.amazonaws.com"
}
