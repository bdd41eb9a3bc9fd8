# Partial backend configuration of the always-on stack of aws/staging:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "aws/staging/always-on.tfstate"
