# Partial backend configuration of the failover stack of aws/staging:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "aws/staging/failover.tfstate"
