# Partial backend configuration of the failover stack of aws/production:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "aws/production/failover.tfstate"
