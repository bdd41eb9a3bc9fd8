# Partial backend configuration of the always-on stack of aws/production:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "aws/production/always-on.tfstate"
