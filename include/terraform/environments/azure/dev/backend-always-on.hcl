# Partial backend configuration of the always-on stack of azure/dev:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "azure/dev/always-on.tfstate"
