# azure/dev - dev: smallest sizes, no high availability, no deletion protection.
environment = "dev"
location    = "westeurope"

address_space = "10.110.0.0/16"

subnet_cidrs = {
  aks               = "10.110.0.0/20"
  ingress           = "10.110.16.0/27"
  app_gateway       = "10.110.17.0/24"
  mysql             = "10.110.18.0/24"
  private_endpoints = "10.110.19.0/24"
  gateway           = "10.110.20.0/27"
}

storage_account_name     = "stmcdrdevbackups"
storage_replication_type = "ZRS"

app_hostname              = "app.dev.example.com"
tls_certificate_secret_id = "https://kvmcdrdevdr.vault.azure.net/secrets/app-tls"

# The pre-shared key comes from TF_VAR_vpn_preshared_key.
enable_vpn = false

aks_sku_tier = "Free"

system_node_pool = {
  vm_size   = "Standard_D2s_v5"
  min_count = 1
  max_count = 2
}

web_node_pool = {
  vm_size   = "Standard_D2s_v5"
  min_count = 1
  max_count = 2
}

app_node_pool = {
  vm_size   = "Standard_D4s_v5"
  min_count = 1
  max_count = 3
}

app_gateway_capacity = {
  min = 1
  max = 2
}

mysql = {
  sku_name              = "B_Standard_B2ms"
  storage_gb            = 32
  high_availability     = false
  geo_redundant_backup  = false
  backup_retention_days = 7
}
