output "network_id" {
  description = "ID of the DR VPC network."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the DR VPC network."
  value       = google_compute_network.this.name
}

output "subnet_id" {
  description = "ID of the DR subnet (GKE nodes)."
  value       = google_compute_subnetwork.this.id
}

output "pods_range_name" {
  description = "Name of the secondary range for GKE pods."
  value       = "pods"
}

output "services_range_name" {
  description = "Name of the secondary range for GKE services."
  value       = "services"
}

output "private_services_connection" {
  description = "The private services access peering (Cloud SQL private IP depends on it)."
  value       = google_service_networking_connection.this.id
}

output "ingress_address_name" {
  description = "Name of the reserved global address for the GKE ingress (kubernetes.io/ingress.global-static-ip-name)."
  value       = google_compute_global_address.ingress.name
}

output "ingress_ip" {
  description = "The reserved global IP of the DR ingress: the DR origin of the traffic layer."
  value       = google_compute_global_address.ingress.address
}

output "backup_bucket_name" {
  description = "Name of the backup bucket."
  value       = google_storage_bucket.backup.name
}

output "backup_bucket_url" {
  description = "gs:// URL of the backup bucket."
  value       = google_storage_bucket.backup.url
}

output "gke_kms_key_id" {
  description = "KMS key for GKE application-layer secrets encryption."
  value       = google_kms_crypto_key.regional["gke"].id
}

output "cloudsql_kms_key_id" {
  description = "KMS key for Cloud SQL (CMEK)."
  value       = google_kms_crypto_key.regional["cloudsql"].id
}
