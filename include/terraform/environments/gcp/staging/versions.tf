terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: the state prefix comes from backend-<stack>.hcl, so that each stack
  # of this root has its own state:
  #   terraform init -input=false -backend-config=backend-failover.hcl
  # The same bucket is named in main.tf (local.state_bucket) for the failover stack's
  # terraform_remote_state.
  backend "gcs" {
    bucket = "mcdr-terraform-state-gcp"
  }
}
