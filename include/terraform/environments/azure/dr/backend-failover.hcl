# Partial backend configuration of the failover stack of azure/dr:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "azure/dr/failover.tfstate"
