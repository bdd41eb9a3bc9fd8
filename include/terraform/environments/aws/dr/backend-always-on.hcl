# Partial backend configuration of the always-on stack of aws/dr:
#   terraform init -input=false -backend-config=backend-always-on.hcl
key = "aws/dr/always-on.tfstate"
