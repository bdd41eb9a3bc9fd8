# azure/production - production.
environment = "production"
location    = "westeurope"

address_space = "10.130.0.0/16"

subnet_cidrs = {
  aks               = "10.130.0.0/20"
  ingress           = "10.130.16.0/27"
  app_gateway       = "10.130.17.0/24"
  mysql             = "10.130.18.0/24"
  private_endpoints = "10.130.19.0/24"
  gateway           = "10.130.20.0/27"
}

storage_account_name     = "stmcdrproductionbackups"
storage_replication_type = "RAGZRS"

app_hostname              = "app.example.com"
tls_certificate_secret_id = "https://kvmcdrproductiondr.vault.azure.net/secrets/app-tls"

# The pre-shared key comes from TF_VAR_vpn_preshared_key.
enable_vpn = true

aks_sku_tier = "Standard"

system_node_pool = {
  vm_size   = "Standard_D4s_v5"
  min_count = 3
  max_count = 5
}

web_node_pool = {
  vm_size   = "Standard_D8s_v5"
  min_count = 3
  max_count = 12
}

app_node_pool = {
  vm_size   = "Standard_D8s_v5"
  min_count = 3
  max_count = 20
}

app_gateway_capacity = {
  min = 2
  max = 20
}

mysql = {
  sku_name              = "GP_Standard_D8ds_v4"
  storage_gb            = 512
  high_availability     = true
  geo_redundant_backup  = true
  backup_retention_days = 35
}
