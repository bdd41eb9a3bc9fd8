# aws/dev - dev: smallest sizes, no high availability, no deletion protection.
environment = "dev"
region      = "eu-west-1"

network = {
  vpc_cidr            = "10.10.0.0/16"
  availability_zones  = ["eu-west-1a", "eu-west-1b"]
  public_subnet_cidrs = ["10.10.0.0/24", "10.10.1.0/24"]
  web_subnet_cidrs    = ["10.10.10.0/23", "10.10.12.0/23"]
  app_subnet_cidrs    = ["10.10.20.0/22", "10.10.24.0/22"]
  db_subnet_cidrs     = ["10.10.30.0/24", "10.10.31.0/24"]
  single_nat_gateway  = true
}

web_node_group = {
  instance_types = ["t3.medium"]
  min_size       = 1
  desired_size   = 1
  max_size       = 2
}

app_node_group = {
  instance_types = ["t3.large"]
  min_size       = 1
  desired_size   = 1
  max_size       = 3
}

database = {
  instance_class           = "db.t4g.medium"
  allocated_storage_gb     = 20
  max_allocated_storage_gb = 100
  multi_az                 = false
  backup_retention_days    = 3
  deletion_protection      = false
}

backup_bucket_name = "mcdr-dev-backups"

# primary_origin_domain is kept by external-dns for the EKS ingress load balancer;
# dr_origin_domain = the azure/dev root's output app_gateway_fqdn (for a GCP DR site: a DNS
# name of the gcp root's ingress_ip).
traffic = {
  app_domain            = "app.dev.example.com"
  route53_zone_id       = "Z0123456789EXAMPLE"
  origin_record_name    = "origin.app.dev.example.com"
  primary_origin_domain = "aws-origin.app.dev.example.com"
  dr_origin_domain      = "mcdr-dev-dr-appgw.westeurope.cloudapp.azure.com"
  enable_route53        = true
}
