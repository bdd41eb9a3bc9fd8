# gcp/production - production.
environment = "production"
project_id  = "mcdr-production-dr"
region      = "europe-west1"

network = {
  subnet_cidr            = "10.230.0.0/20"
  pods_cidr              = "100.64.0.0/14"
  services_cidr          = "100.68.0.0/20"
  master_ipv4_cidr_block = "172.16.0.0/28"
}

backup_bucket_name = "mcdr-production-dr-backups"
app_hostname       = "app.example.com"

web_node_pool = {
  machine_type   = "n2-standard-8"
  min_node_count = 1
  max_node_count = 6
}

app_node_pool = {
  machine_type   = "n2-standard-8"
  min_node_count = 2
  max_node_count = 10
}

# version: MYSQL_8_0 to match the RDS MySQL primary (POSTGRES_16 for a PostgreSQL primary).
database = {
  version             = "MYSQL_8_0"
  tier                = "db-custom-8-30720"
  disk_size_gb        = 500
  high_availability   = true
  retained_backups    = 30
  deletion_protection = true
}
