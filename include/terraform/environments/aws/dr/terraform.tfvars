# aws/dr - dr: the drill environment (production-like, reduced size); drills never touch production.
environment = "dr"
region      = "eu-west-1"

network = {
  vpc_cidr            = "10.40.0.0/16"
  availability_zones  = ["eu-west-1a", "eu-west-1b"]
  public_subnet_cidrs = ["10.40.0.0/24", "10.40.1.0/24"]
  web_subnet_cidrs    = ["10.40.10.0/23", "10.40.12.0/23"]
  app_subnet_cidrs    = ["10.40.20.0/22", "10.40.24.0/22"]
  db_subnet_cidrs     = ["10.40.30.0/24", "10.40.31.0/24"]
  single_nat_gateway  = false
}

web_node_group = {
  instance_types = ["m6i.large"]
  min_size       = 2
  desired_size   = 2
  max_size       = 6
}

app_node_group = {
  instance_types = ["m6i.xlarge"]
  min_size       = 2
  desired_size   = 2
  max_size       = 10
}

database = {
  instance_class           = "db.r6g.xlarge"
  allocated_storage_gb     = 500
  max_allocated_storage_gb = 1000
  multi_az                 = true
  backup_retention_days    = 14
  deletion_protection      = true
}

backup_bucket_name = "mcdr-dr-backups"

# primary_origin_domain is kept by external-dns for the EKS ingress load balancer;
# dr_origin_domain = the azure/dr root's output app_gateway_fqdn (for a GCP DR site: a DNS
# name of the gcp root's ingress_ip).
traffic = {
  app_domain            = "app.dr.example.com"
  route53_zone_id       = "Z0123456789EXAMPLE"
  origin_record_name    = "origin.app.dr.example.com"
  primary_origin_domain = "aws-origin.app.dr.example.com"
  dr_origin_domain      = "mcdr-dr-dr-appgw.westeurope.cloudapp.azure.com"
  enable_route53        = true
  enable_cloudflare     = true
  cloudflare_account_id = "0123456789abcdef0123456789abcdef"
  cloudflare_zone_id    = "fedcba9876543210fedcba9876543210"
}
