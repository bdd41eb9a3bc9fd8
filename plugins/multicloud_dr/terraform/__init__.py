"""Terraform (or OpenTofu) for the DR environments: plain Python, callable from drctl without Airflow.

- `runner`: the CLI as a child process (list-form argv, own TF_DATA_DIR, credentials by environment,
  streamed logs, typed results, SIGINT on interrupt);
- `summary`: a saved plan's `show -json` counted per resource type, the way terraform counts;
- `stacks`: which root and backend a (cloud, environment, stack) is, and the topology's settings;
- `credentials`: an Airflow connection turned into the provider's environment variables;
- `plan_store`: saved plans in private blob storage between the plan and the apply task;
- `outputs`: non-sensitive outputs, published for other DAGs;
- `provision`: the steps (plan, apply a saved plan once, outputs, drift) the DAGs and drctl run.
"""
