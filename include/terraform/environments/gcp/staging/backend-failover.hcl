# Partial backend configuration of the failover stack of gcp/staging:
#   terraform init -input=false -backend-config=backend-failover.hcl
prefix = "gcp/staging/failover"
