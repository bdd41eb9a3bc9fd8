terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 4.48"
    }
  }

  # Partial configuration: the state key comes from backend-<stack>.hcl, so that each stack of
  # this root has its own state:
  #   terraform init -input=false -backend-config=backend-always-on.hcl
  backend "s3" {
    bucket         = "mcdr-terraform-state"
    region         = "eu-west-1"
    dynamodb_table = "mcdr-terraform-locks"
    encrypt        = true
  }
}
