# Partial backend configuration of the failover stack of azure/production:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "azure/production/failover.tfstate"
