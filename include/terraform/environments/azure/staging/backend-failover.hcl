# Partial backend configuration of the failover stack of azure/staging:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "azure/staging/failover.tfstate"
