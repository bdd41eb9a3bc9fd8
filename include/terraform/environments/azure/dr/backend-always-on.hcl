# Partial backend configuration of the always-on stack of azure/dr:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "azure/dr/always-on.tfstate"
