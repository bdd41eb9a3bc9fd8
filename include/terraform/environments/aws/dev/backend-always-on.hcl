# Partial backend configuration of the always-on stack of aws/dev:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "aws/dev/always-on.tfstate"
