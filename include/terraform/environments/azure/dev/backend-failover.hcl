# Partial backend configuration of the failover stack of azure/dev:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "azure/dev/failover.tfstate"
