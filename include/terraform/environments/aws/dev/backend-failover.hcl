# Partial backend configuration of the failover stack of aws/dev:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "aws/dev/failover.tfstate"
