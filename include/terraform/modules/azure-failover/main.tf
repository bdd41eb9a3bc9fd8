data "azurerm_client_config" "current" {}

locals {
  # The backend pool takes IPs and host names in separate lists.
  backend_ips   = [for address in var.app_backend_addresses : address if can(cidrhost("${address}/32", 0))]
  backend_fqdns = [for address in var.app_backend_addresses : address if !can(cidrhost("${address}/32", 0))]

  user_node_pools = {
    web = var.web_node_pool
    app = var.app_node_pool
  }

  gateway = {
    frontend_ip   = "public"
    frontend_port = "https"
    certificate   = "app"
    listener      = "https"
    backend_pool  = "aks-ingress"
    backend       = "aks-ingress-https"
    probe         = "aks-ingress-health"
    rule          = "app"
  }
}

# --- Database: MySQL Flexible Server, private access only ------------------------------------

resource "azurerm_private_dns_zone" "mysql" {
  name                = "${var.name}.private.mysql.database.azure.com"
  resource_group_name = var.resource_group_name

  tags = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "mysql" {
  name                  = "${var.name}-mysql"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.mysql.name
  virtual_network_id    = var.vnet_id

  tags = var.tags
}

resource "random_password" "mysql_admin" {
  length           = 32
  special          = true
  override_special = "!#%*()-_=+[]{}:?"
  min_lower        = 2
  min_upper        = 2
  min_numeric      = 2
  min_special      = 2
}

# The password never leaves Terraform's state except into the Key Vault; the restore and
# failover DAGs read it from there.
resource "azurerm_key_vault_secret" "mysql_admin" {
  #checkov:skip=CKV_AZURE_41:No expiry on purpose: an expired admin secret in the middle of a failover would stop the restore; rotation is done by re-applying with a new random_password keeper.
  name         = "${var.name}-mysql-admin-password"
  value        = random_password.mysql_admin.result
  key_vault_id = var.key_vault_id
  content_type = "text/plain; mysql admin password of mysql-${var.name}"

  tags = var.tags
}

resource "azurerm_mysql_flexible_server" "this" {
  #checkov:skip=CKV_AZURE_53:Private access (VNet integration through the delegated subnet): Azure sets public network access to Disabled for such servers, and the provider does not take the argument for them.
  #checkov:skip=CKV2_AZURE_56:Private endpoints are for servers created with public access; this server is VNet-integrated, which is the stricter private mode.
  name                         = "mysql-${var.name}"
  location                     = var.location
  resource_group_name          = var.resource_group_name
  version                      = var.mysql_version
  sku_name                     = var.mysql_sku_name
  administrator_login          = var.mysql_admin_username
  administrator_password       = random_password.mysql_admin.result
  delegated_subnet_id          = var.mysql_subnet_id
  private_dns_zone_id          = azurerm_private_dns_zone.mysql.id
  backup_retention_days        = var.mysql_backup_retention_days
  geo_redundant_backup_enabled = var.mysql_geo_redundant_backup
  zone                         = "1"

  storage {
    size_gb            = var.mysql_storage_gb
    auto_grow_enabled  = true
    io_scaling_enabled = true
  }

  dynamic "high_availability" {
    for_each = var.mysql_high_availability ? [1] : []

    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = "2"
    }
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 4
    start_minute = 0
  }

  tags = var.tags

  # Azure swaps the zones after a planned or unplanned HA failover; that is not drift.
  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.mysql]
}

resource "azurerm_mysql_flexible_server_configuration" "this" {
  for_each = {
    require_secure_transport = "ON"
    tls_version              = "TLSv1.2,TLSv1.3"
    binlog_row_image         = "FULL"
    audit_log_enabled        = "ON"
    audit_log_events         = "CONNECTION,DDL,DCL"
  }

  name                = each.key
  server_name         = azurerm_mysql_flexible_server.this.name
  resource_group_name = var.resource_group_name
  value               = each.value
}

resource "azurerm_mysql_flexible_database" "app" {
  name                = var.database_name
  server_name         = azurerm_mysql_flexible_server.this.name
  resource_group_name = var.resource_group_name
  charset             = "utf8mb4"
  collation           = "utf8mb4_0900_ai_ci"
}

# --- AKS ----------------------------------------------------------------------------------------

resource "azurerm_user_assigned_identity" "aks" {
  name                = "id-${var.name}-aks"
  location            = var.location
  resource_group_name = var.resource_group_name

  tags = var.tags
}

# The cluster identity places the ingress controller's internal load balancer in the ingress
# subnet and manages the node subnet.
resource "azurerm_role_assignment" "aks_network" {
  for_each = {
    aks     = var.aks_subnet_id
    ingress = var.ingress_subnet_id
  }

  scope                = each.value
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.aks.principal_id
}

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_117:OS and data disks use platform-managed keys plus encryption at host; a disk encryption set (customer-managed key) is not required for this workload.
  #checkov:skip=CKV_AZURE_226:Ephemeral OS disks need VM sizes with a large enough cache; the sizes come from variables, so managed OS disks are kept.
  name                              = "aks-${var.name}"
  location                          = var.location
  resource_group_name               = var.resource_group_name
  dns_prefix                        = var.name
  kubernetes_version                = var.kubernetes_version
  sku_tier                          = var.aks_sku_tier
  private_cluster_enabled           = var.aks_private_cluster
  automatic_upgrade_channel         = "patch"
  node_os_upgrade_channel           = "NodeImage"
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true
  oidc_issuer_enabled               = true
  workload_identity_enabled         = true

  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_pool.vm_size
    auto_scaling_enabled         = true
    min_count                    = var.system_node_pool.min_count
    max_count                    = var.system_node_pool.max_count
    vnet_subnet_id               = var.aks_subnet_id
    zones                        = ["1", "2", "3"]
    only_critical_addons_enabled = true
    host_encryption_enabled      = true
    max_pods                     = 50
    os_disk_type                 = "Managed"

    upgrade_settings {
      max_surge = "10%"
    }
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.aks.id]
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
    tenant_id          = data.azurerm_client_config.current.tenant_id
  }

  dynamic "api_server_access_profile" {
    for_each = var.aks_private_cluster ? [] : [1]

    content {
      authorized_ip_ranges = var.aks_authorized_ip_ranges
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    load_balancer_sku   = "standard"
    outbound_type       = "loadBalancer"
  }

  oms_agent {
    log_analytics_workspace_id      = var.log_analytics_workspace_id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [default_node_pool[0].node_count]
  }

  depends_on = [azurerm_role_assignment.aks_network]
}

resource "azurerm_kubernetes_cluster_node_pool" "tier" {
  #checkov:skip=CKV_AZURE_226:Ephemeral OS disks need VM sizes with a large enough cache; the sizes come from variables, so managed OS disks are kept.
  for_each = local.user_node_pools

  name                    = each.key
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  mode                    = "User"
  vm_size                 = each.value.vm_size
  auto_scaling_enabled    = true
  min_count               = each.value.min_count
  max_count               = each.value.max_count
  vnet_subnet_id          = var.aks_subnet_id
  zones                   = ["1", "2", "3"]
  host_encryption_enabled = true
  max_pods                = 50
  os_disk_type            = "Managed"

  node_labels = {
    tier = each.key
  }

  upgrade_settings {
    max_surge = "33%"
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [node_count]
  }
}

# --- Application Gateway (WAF v2): the DR site's public entry --------------------------------

resource "azurerm_web_application_firewall_policy" "this" {
  #checkov:skip=CKV_AZURE_135:Microsoft_DefaultRuleSet 2.1 (the successor of OWASP CRS 3.2) keeps rule 944240 (Log4j JNDI lookups) enabled; the check only recognises the OWASP rule sets.
  name                = "waf-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name

  policy_settings {
    enabled                     = true
    mode                        = var.waf_mode
    request_body_check          = true
    max_request_body_size_in_kb = 128
    file_upload_limit_in_mb     = 100
  }

  managed_rules {
    managed_rule_set {
      type    = "Microsoft_DefaultRuleSet"
      version = "2.1"
    }

    managed_rule_set {
      type    = "Microsoft_BotManagerRuleSet"
      version = "1.0"
    }
  }

  tags = var.tags
}

resource "azurerm_user_assigned_identity" "app_gateway" {
  name                = "id-${var.name}-appgw"
  location            = var.location
  resource_group_name = var.resource_group_name

  tags = var.tags
}

resource "azurerm_role_assignment" "app_gateway_certificate" {
  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app_gateway.principal_id
}

resource "azurerm_application_gateway" "this" {
  name                = "agw-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  zones               = ["1", "2", "3"]
  firewall_policy_id  = azurerm_web_application_firewall_policy.this.id
  enable_http2        = true

  sku {
    name = "WAF_v2"
    tier = "WAF_v2"
  }

  autoscale_configuration {
    min_capacity = var.app_gateway_capacity.min
    max_capacity = var.app_gateway_capacity.max
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app_gateway.id]
  }

  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = var.app_gateway_subnet_id
  }

  frontend_ip_configuration {
    name                 = local.gateway.frontend_ip
    public_ip_address_id = var.app_gateway_public_ip_id
  }

  frontend_port {
    name = local.gateway.frontend_port
    port = 443
  }

  ssl_policy {
    policy_type = "Predefined"
    policy_name = "AppGwSslPolicy20220101S"
  }

  ssl_certificate {
    name                = local.gateway.certificate
    key_vault_secret_id = var.tls_certificate_secret_id
  }

  http_listener {
    name                           = local.gateway.listener
    frontend_ip_configuration_name = local.gateway.frontend_ip
    frontend_port_name             = local.gateway.frontend_port
    protocol                       = "Https"
    ssl_certificate_name           = local.gateway.certificate
  }

  # The ingress controller's internal load balancer, from module outputs: never a typed-in IP.
  backend_address_pool {
    name         = local.gateway.backend_pool
    ip_addresses = length(local.backend_ips) > 0 ? local.backend_ips : null
    fqdns        = length(local.backend_fqdns) > 0 ? local.backend_fqdns : null
  }

  probe {
    name                = local.gateway.probe
    protocol            = "Https"
    host                = var.app_hostname
    path                = var.health_probe_path
    interval            = 15
    timeout             = 10
    unhealthy_threshold = 3

    match {
      status_code = ["200-399"]
    }
  }

  backend_http_settings {
    name                  = local.gateway.backend
    protocol              = "Https"
    port                  = 443
    host_name             = var.app_hostname
    cookie_based_affinity = "Disabled"
    request_timeout       = 60
    probe_name            = local.gateway.probe
  }

  request_routing_rule {
    name                       = local.gateway.rule
    priority                   = 100
    rule_type                  = "Basic"
    http_listener_name         = local.gateway.listener
    backend_address_pool_name  = local.gateway.backend_pool
    backend_http_settings_name = local.gateway.backend
  }

  tags = var.tags

  depends_on = [azurerm_role_assignment.app_gateway_certificate]
}

resource "azurerm_monitor_diagnostic_setting" "app_gateway" {
  name                       = "waf-and-access-logs"
  target_resource_id         = azurerm_application_gateway.this.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "ApplicationGatewayAccessLog"
  }

  enabled_log {
    category = "ApplicationGatewayFirewallLog"
  }

  metric {
    category = "AllMetrics"
  }
}
