# Partial backend configuration of the always-on stack of gcp/staging:
#   terraform init -input=false -backend-config=backend-always-on.hcl
prefix = "gcp/staging/always-on"
