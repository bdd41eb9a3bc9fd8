# Partial backend configuration of the always-on stack of gcp/dr:
#   terraform init -input=false -backend-config=backend-always-on.hcl
prefix = "gcp/dr/always-on"
