# Partial backend configuration of the failover stack of aws/dr:
#   terraform init -input=false -backend-config=backend-failover.hcl
key = "aws/dr/failover.tfstate"
