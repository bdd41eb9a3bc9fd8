# Partial backend configuration of the failover stack of gcp/production:
#   terraform init -input=false -backend-config=backend-failover.hcl
prefix = "gcp/production/failover"
