# Partial backend configuration of the always-on stack of gcp/production:
#   terraform init -input=false -backend-config=backend-always-on.hcl
prefix = "gcp/production/always-on"
