# Partial backend configuration of the failover stack of gcp/dev:
#   terraform init -input=false -backend-config=backend-failover.hcl
prefix = "gcp/dev/failover"
