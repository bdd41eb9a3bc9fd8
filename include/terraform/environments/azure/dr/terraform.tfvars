# azure/dr - dr: the drill environment (production-like, reduced size); drills never touch production.
environment = "dr"
location    = "westeurope"

address_space = "10.140.0.0/16"

subnet_cidrs = {
  aks               = "10.140.0.0/20"
  ingress           = "10.140.16.0/27"
  app_gateway       = "10.140.17.0/24"
  mysql             = "10.140.18.0/24"
  private_endpoints = "10.140.19.0/24"
  gateway           = "10.140.20.0/27"
}

storage_account_name     = "stmcdrdrbackups"
storage_replication_type = "GZRS"

app_hostname              = "app.dr.example.com"
tls_certificate_secret_id = "https://kvmcdrdrdr.vault.azure.net/secrets/app-tls"

# The pre-shared key comes from TF_VAR_vpn_preshared_key.
enable_vpn = true

aks_sku_tier = "Standard"

system_node_pool = {
  vm_size   = "Standard_D4s_v5"
  min_count = 2
  max_count = 3
}

web_node_pool = {
  vm_size   = "Standard_D4s_v5"
  min_count = 2
  max_count = 6
}

app_node_pool = {
  vm_size   = "Standard_D8s_v5"
  min_count = 2
  max_count = 10
}

app_gateway_capacity = {
  min = 1
  max = 10
}

mysql = {
  sku_name              = "GP_Standard_D4ds_v4"
  storage_gb            = 512
  high_availability     = true
  geo_redundant_backup  = true
  backup_retention_days = 14
}
