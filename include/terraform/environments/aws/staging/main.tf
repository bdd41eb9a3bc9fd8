# Primary site on AWS. Thin root: wiring only, every resource lives in ../../../modules.
#
# Stacks (var.stack, one state each, see backend-*.hcl):
#   always-on  network, EKS, RDS MySQL, backup IAM role, traffic layers
#   failover   empty on AWS: in a disaster the DR root (azure/ or gcp/) applies its failover
#              stack; traffic moves by health checks, and writes by the failover DAG or by
#              re-applying always-on with traffic.active_site = "dr".

locals {
  name      = "mcdr-${var.environment}"
  always_on = var.stack == "always-on"

  tags = merge(var.tags, {
    project     = "multicloud-dr"
    environment = var.environment
    stack       = var.stack
    managed-by  = "terraform"
  })
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# API token from CLOUDFLARE_API_TOKEN; used only when traffic.enable_cloudflare is true.
provider "cloudflare" {}

module "network" {
  source = "../../../modules/aws-network"
  count  = local.always_on ? 1 : 0

  name                = local.name
  vpc_cidr            = var.network.vpc_cidr
  availability_zones  = var.network.availability_zones
  public_subnet_cidrs = var.network.public_subnet_cidrs
  web_subnet_cidrs    = var.network.web_subnet_cidrs
  app_subnet_cidrs    = var.network.app_subnet_cidrs
  db_subnet_cidrs     = var.network.db_subnet_cidrs
  single_nat_gateway  = var.network.single_nat_gateway
}

module "eks" {
  source = "../../../modules/aws-eks"
  count  = local.always_on ? 1 : 0

  cluster_name       = local.name
  kubernetes_version = var.kubernetes_version
  vpc_id             = module.network[0].vpc_id
  web_subnet_ids     = module.network[0].web_subnet_ids
  app_subnet_ids     = module.network[0].app_subnet_ids
  web_node_group     = var.web_node_group
  app_node_group     = var.app_node_group
}

module "database" {
  source = "../../../modules/aws-rds-mysql"
  count  = local.always_on ? 1 : 0

  identifier               = "${local.name}-mysql"
  instance_class           = var.database.instance_class
  allocated_storage_gb     = var.database.allocated_storage_gb
  max_allocated_storage_gb = var.database.max_allocated_storage_gb
  multi_az                 = var.database.multi_az
  backup_retention_days    = var.database.backup_retention_days
  deletion_protection      = var.database.deletion_protection
  vpc_id                   = module.network[0].vpc_id
  db_subnet_ids            = module.network[0].db_subnet_ids
  allowed_cidr_blocks      = concat(module.network[0].app_subnet_cidrs, var.database_extra_allowed_cidrs)
}

module "backup_iam" {
  source = "../../../modules/aws-backup-iam"
  count  = local.always_on ? 1 : 0

  name                 = local.name
  backup_bucket_name   = var.backup_bucket_name
  database_secret_arns = compact([module.database[0].master_user_secret_arn])
  eks_cluster_name     = module.eks[0].cluster_name
}

module "traffic" {
  source = "../../../modules/traffic"
  count  = local.always_on ? 1 : 0

  name                          = local.name
  app_domain                    = var.traffic.app_domain
  primary_origin_domain         = var.traffic.primary_origin_domain
  dr_origin_domain              = var.traffic.dr_origin_domain
  active_site                   = var.traffic.active_site
  enable_route53                = var.traffic.enable_route53
  route53_zone_id               = var.traffic.route53_zone_id
  origin_record_name            = var.traffic.origin_record_name
  enable_cloudfront             = var.traffic.enable_cloudfront
  acm_certificate_arn           = var.traffic.acm_certificate_arn
  web_acl_arn                   = var.traffic.web_acl_arn
  access_log_bucket_domain_name = var.traffic.access_log_bucket_domain_name
  enable_cloudflare             = var.traffic.enable_cloudflare
  cloudflare_account_id         = var.traffic.cloudflare_account_id
  cloudflare_zone_id            = var.traffic.cloudflare_zone_id
  cloudflare_hostname           = var.traffic.cloudflare_hostname
}
