# Partial backend configuration of the always-on stack of azure/staging:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "azure/staging/always-on.tfstate"
