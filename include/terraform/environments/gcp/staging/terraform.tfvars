# gcp/staging - staging: production-like topology at reduced size.
environment = "staging"
project_id  = "mcdr-staging-dr"
region      = "europe-west1"

network = {
  subnet_cidr            = "10.220.0.0/20"
  pods_cidr              = "100.64.0.0/14"
  services_cidr          = "100.68.0.0/20"
  master_ipv4_cidr_block = "172.16.0.0/28"
}

backup_bucket_name = "mcdr-staging-dr-backups"
app_hostname       = "app.staging.example.com"

web_node_pool = {
  machine_type   = "n2-standard-4"
  min_node_count = 1
  max_node_count = 3
}

app_node_pool = {
  machine_type   = "n2-standard-4"
  min_node_count = 1
  max_node_count = 4
}

# version: MYSQL_8_0 to match the RDS MySQL primary (POSTGRES_16 for a PostgreSQL primary).
database = {
  version             = "MYSQL_8_0"
  tier                = "db-custom-4-15360"
  disk_size_gb        = 100
  high_availability   = true
  retained_backups    = 7
  deletion_protection = true
}
