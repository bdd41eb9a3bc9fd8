# DR site on Azure. Thin root: wiring only, every resource lives in ../../../modules.
#
# Stacks (var.stack, one state each, see backend-*.hcl):
#   always-on  azure-always-on (network, backup storage, Key Vault, App Gateway IP) + vpn
#   failover   azure-failover (MySQL Flexible Server, AKS, Application Gateway), reading the
#              always-on stack's outputs through terraform_remote_state.

locals {
  name      = "mcdr-${var.environment}-dr"
  always_on = var.stack == "always-on"
  failover  = var.stack == "failover"

  tags = merge(var.tags, {
    project     = "multicloud-dr"
    environment = var.environment
    stack       = var.stack
    managed-by  = "terraform"
  })

  # Same account and container as the backend block in versions.tf.
  state_backend = {
    resource_group_name  = "rg-mcdr-tfstate"
    storage_account_name = "stmcdrtfstate"
    container_name       = "tfstate"
    use_azuread_auth     = true
  }
  always_on_state_key = "azure/${var.environment}/always-on.tfstate"

  # The primary site's always-on state (the aws/<environment> root): NAT IPs for the firewalls
  # and the VPC for the VPN. Only the always-on stack reads it, so that a failover never
  # depends on AWS being reachable.
  primary_state = {
    bucket = "mcdr-terraform-state"
    key    = "aws/${var.environment}/always-on.tfstate"
    region = var.aws_region
  }
  primary = one(data.terraform_remote_state.primary[*].outputs)

  # Outputs of this root's always-on stack, for the failover stack.
  always_on_outputs = one(data.terraform_remote_state.always_on[*].outputs)
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true

  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }

    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
}

# Only the VPN (always-on) uses AWS. In the failover stack the provider is never called, and
# credential checks are skipped so that a failover plan works while AWS is down.
provider "aws" {
  region                      = var.aws_region
  skip_credentials_validation = local.failover
  skip_requesting_account_id  = local.failover
  skip_metadata_api_check     = local.failover
}

data "terraform_remote_state" "primary" {
  count = local.always_on ? 1 : 0

  backend = "s3"
  config  = local.primary_state
  defaults = {
    nat_public_ips          = []
    vpc_id                  = null
    vpc_cidr                = null
    private_route_table_ids = []
  }

  lifecycle {
    postcondition {
      condition     = !var.enable_vpn || self.outputs.vpc_id != null
      error_message = "The VPN needs the primary VPC: apply the aws/${var.environment} always-on stack first, or set enable_vpn = false."
    }
  }
}

data "terraform_remote_state" "always_on" {
  count = local.failover ? 1 : 0

  backend = "azurerm"
  config  = merge(local.state_backend, { key = local.always_on_state_key })

  lifecycle {
    postcondition {
      condition     = try(self.outputs.resource_group_name, null) != null
      error_message = "The always-on stack of this root has no state yet: apply it first (terraform init -backend-config=backend-always-on.hcl, then apply -var=stack=always-on)."
    }
  }
}

module "always_on" {
  source = "../../../modules/azure-always-on"
  count  = local.always_on ? 1 : 0

  name                     = local.name
  location                 = var.location
  address_space            = var.address_space
  subnet_cidrs             = var.subnet_cidrs
  storage_account_name     = var.storage_account_name
  storage_replication_type = var.storage_replication_type
  allowed_ip_ranges        = distinct(concat(local.primary.nat_public_ips, var.operator_ip_ranges))
  app_gateway_dns_label    = "${local.name}-appgw"
  tags                     = local.tags
}

module "vpn" {
  source = "../../../modules/vpn"
  count  = local.always_on && var.enable_vpn ? 1 : 0

  name                      = local.name
  aws_vpc_id                = local.primary.vpc_id
  aws_vpc_cidr              = local.primary.vpc_cidr
  aws_route_table_ids       = local.primary.private_route_table_ids
  azure_resource_group_name = module.always_on[0].resource_group_name
  azure_location            = module.always_on[0].location
  azure_gateway_subnet_id   = module.always_on[0].subnet_ids.gateway
  azure_address_spaces      = [module.always_on[0].address_space]
  preshared_key             = var.vpn_preshared_key
  tags                      = local.tags
}

module "failover" {
  source = "../../../modules/azure-failover"
  count  = local.failover ? 1 : 0

  name                       = local.name
  location                   = local.always_on_outputs.location
  resource_group_name        = local.always_on_outputs.resource_group_name
  vnet_id                    = local.always_on_outputs.vnet_id
  aks_subnet_id              = local.always_on_outputs.subnet_ids.aks
  ingress_subnet_id          = local.always_on_outputs.subnet_ids.ingress
  app_gateway_subnet_id      = local.always_on_outputs.subnet_ids.app_gateway
  mysql_subnet_id            = local.always_on_outputs.subnet_ids.mysql
  app_gateway_public_ip_id   = local.always_on_outputs.app_gateway_public_ip_id
  key_vault_id               = local.always_on_outputs.key_vault_id
  log_analytics_workspace_id = local.always_on_outputs.log_analytics_workspace_id
  # The ingress controller's internal load balancer IP, an output of azure-always-on.
  app_backend_addresses     = [local.always_on_outputs.ingress_private_ip]
  app_hostname              = var.app_hostname
  tls_certificate_secret_id = var.tls_certificate_secret_id
  app_gateway_capacity      = var.app_gateway_capacity

  kubernetes_version = var.kubernetes_version
  aks_sku_tier       = var.aks_sku_tier
  system_node_pool   = var.system_node_pool
  web_node_pool      = var.web_node_pool
  app_node_pool      = var.app_node_pool

  mysql_sku_name              = var.mysql.sku_name
  mysql_storage_gb            = var.mysql.storage_gb
  mysql_high_availability     = var.mysql.high_availability
  mysql_geo_redundant_backup  = var.mysql.geo_redundant_backup
  mysql_backup_retention_days = var.mysql.backup_retention_days

  tags = local.tags
}
