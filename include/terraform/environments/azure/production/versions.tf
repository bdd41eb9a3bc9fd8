terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.14"
    }
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: the state key comes from backend-<stack>.hcl, so that each stack of
  # this root has its own state:
  #   terraform init -input=false -backend-config=backend-failover.hcl
  # The same account and container are named in main.tf (local.state_backend) for the failover
  # stack's terraform_remote_state.
  backend "azurerm" {
    resource_group_name  = "rg-mcdr-tfstate"
    storage_account_name = "stmcdrtfstate"
    container_name       = "tfstate"
    use_azuread_auth     = true
  }
}
