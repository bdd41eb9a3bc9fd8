# Partial backend configuration of the always-on stack of gcp/dev:
#   terraform init -input=false -backend-config=backend-always-on.hcl
prefix = "gcp/dev/always-on"
