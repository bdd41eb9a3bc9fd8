# Partial backend configuration of the always-on stack of azure/production:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "azure/production/always-on.tfstate"
