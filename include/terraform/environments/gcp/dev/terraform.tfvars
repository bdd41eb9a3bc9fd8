# gcp/dev - dev: smallest sizes, no high availability, no deletion protection.
environment = "dev"
project_id  = "mcdr-dev-dr"
region      = "europe-west1"

network = {
  subnet_cidr            = "10.210.0.0/20"
  pods_cidr              = "100.64.0.0/14"
  services_cidr          = "100.68.0.0/20"
  master_ipv4_cidr_block = "172.16.0.0/28"
}

backup_bucket_name = "mcdr-dev-dr-backups"
app_hostname       = "app.dev.example.com"

web_node_pool = {
  machine_type   = "e2-standard-2"
  min_node_count = 1
  max_node_count = 2
}

app_node_pool = {
  machine_type   = "e2-standard-4"
  min_node_count = 1
  max_node_count = 2
}

# version: MYSQL_8_0 to match the RDS MySQL primary (POSTGRES_16 for a PostgreSQL primary).
database = {
  version             = "MYSQL_8_0"
  tier                = "db-custom-2-7680"
  disk_size_gb        = 50
  high_availability   = false
  retained_backups    = 7
  deletion_protection = false
}
