# Partial backend configuration of the failover stack of gcp/dr:
#   terraform init -input=false -backend-config=backend-failover.hcl
prefix = "gcp/dr/failover"
