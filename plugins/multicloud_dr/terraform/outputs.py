"""Terraform outputs published for the other DAGs (endpoints, IPs, names), and read back by them.

`environment_provision` publishes a stack's NON-sensitive outputs, after each apply, as the Airflow Variable
`terraform_outputs__<cloud>__<environment>__<stack>` (JSON; a `-` in the stack becomes `_`, so the same name
works as an AIRFLOW_VAR_* environment variable) and as an Asset event on `terraform://<cloud>/<env>/<stack>`.
Sensitive outputs are dropped (only their names are logged): consumers that need a secret read it from
the cloud's secret store, not from Airflow.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.connections import running_in_airflow
from multicloud_dr.exceptions import InputError
from multicloud_dr.terraform.stacks import StackRef


class OutputsNotPublishedError(InputError):
    """No outputs were published for a stack (never applied, or destroyed)."""


def outputs_variable_key(ref: StackRef) -> str:
    return f"terraform_outputs__{ref.cloud}__{ref.environment}__{ref.stack.replace('-', '_')}"


def split_outputs(raw: dict[str, dict]) -> tuple[dict[str, Any], list[str]]:
    """`terraform output -json` -> (non-sensitive name -> value, names of the sensitive ones)."""
    values, sensitive = {}, []
    for name, output in sorted(raw.items()):
        if output.get("sensitive", True):  # unmarked: treat as sensitive rather than leak it
            sensitive.append(name)
        else:
            values[name] = output.get("value")
    return values, sensitive


def published_document(ref: StackRef, values: dict[str, Any], sensitive: list[str], *, run_id: str,
                       destroyed: bool = False) -> dict:
    return {**ref.to_dict(), "outputs": values, "sensitive_dropped": sensitive, "destroyed": destroyed,
            "run_id": run_id, "published_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _read_variable(key: str) -> str | None:
    if running_in_airflow():
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        if value is not None:
            return value
    # drctl on a shell: the variable Airflow itself would read.
    return os.environ.get(f"AIRFLOW_VAR_{key.upper()}")


def read_published_outputs(cloud: str, environment: str, stack: str) -> dict[str, Any]:
    """The non-sensitive outputs of a stack as last published (name -> value). Raises
    OutputsNotPublishedError when the stack was never applied through environment_provision, or destroyed."""
    ref = StackRef(cloud, environment, stack)
    key = outputs_variable_key(ref)
    raw = _read_variable(key)
    if raw is None:
        raise OutputsNotPublishedError(
            f"no outputs published for {ref.label} (Variable {key}): run environment_provision with "
            f"cloud={cloud} environment={environment} stack={stack} action=apply first")
    document = json.loads(raw) if isinstance(raw, str) else raw
    if document.get("destroyed"):
        raise OutputsNotPublishedError(f"{ref.label} was destroyed by run {document.get('run_id')} at "
                                       f"{document.get('published_at')}: apply it first")
    return dict(document["outputs"])
