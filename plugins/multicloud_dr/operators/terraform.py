"""Operators for Terraform: init, plan (stored for the apply), apply of a saved plan, outputs, drift.

Each runs terraform through `multicloud_dr.terraform` and, when stopped (`on_kill`: the task was marked
failed, timed out, or its worker is shutting down), interrupts terraform with one SIGINT so it stops after
what is in flight and releases the state lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step

if TYPE_CHECKING:
    from multicloud_dr.terraform.runner import TerraformRunner

# How long on_kill waits for terraform to stop: Airflow's supervisor sends SIGKILL 5 s after SIGTERM. Terraform
# has its own session and keeps shutting down cleanly after that; the wait only shows its last lines in the log.
ON_KILL_WAIT_SECONDS = 4.0


class _RunsTerraform(BaseOperator):
    """Knows the terraform process it runs (the library reports it through `_track`), to stop it on kill."""

    ui_color = "#ede4ff"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runner: TerraformRunner | None = None

    def _track(self, runner: TerraformRunner | None) -> None:
        self._runner = runner

    def on_kill(self) -> None:
        runner = self._runner
        if runner is not None and runner.interrupt():
            runner.wait_stopped(ON_KILL_WAIT_SECONDS)


class _TerraformOperator(_RunsTerraform):
    template_fields: Sequence[str] = ("cloud", "environment", "stack")

    def __init__(self, *, cloud: str, environment: str, stack: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cloud = cloud
        self.environment = environment
        self.stack = stack

    def _ref(self):
        from multicloud_dr.terraform.stacks import StackRef

        return StackRef(self.cloud, self.environment, self.stack)


def _settings():
    from multicloud_dr.terraform.stacks import TerraformSettings

    return TerraformSettings.load()  # the topology: a local file


def _plan_store(settings):
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.terraform.plan_store import PlanStore

    return PlanStore.from_service(blob_service_client(settings.storage_conn_id), settings.plan_location)


class TerraformInitOperator(_TerraformOperator):
    """`terraform init` of the stack's root with its backend file: checks the root, the backend and the
    credentials before anything is planned. Returns the root, backend file and terraform version."""

    def execute(self, context: Context) -> dict:
        from multicloud_dr.terraform.provision import init_stack

        return run_step(lambda: init_stack(self._ref(), _settings(), on_runner=self._track))


class TerraformPlanOperator(_TerraformOperator):
    """Plan `action` (plan/apply: the configuration; destroy: everything) with -detailed-exitcode; a plan with
    changes is stored in private blob storage under the run's id. Returns what it does, per resource type,
    and the stored plan's URL and SHA-256 (never the plan: it may hold secrets)."""

    template_fields: Sequence[str] = (*_TerraformOperator.template_fields, "action")

    def __init__(self, *, action: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action

    def execute(self, context: Context) -> dict:
        from multicloud_dr.terraform.provision import plan_stack
        from multicloud_dr.terraform.stacks import run_key

        def step() -> dict:
            settings = _settings()
            record = plan_stack(self._ref(), settings, self.action, _plan_store(settings), run_key(context["run_id"]),
                                on_runner=self._track)
            return record.to_dict()

        return run_step(step)


class TerraformApplyOperator(_TerraformOperator):
    """Apply exactly the saved plan the task `plan_task_id` stored (its XCom: URL and SHA-256), after checking
    the SHA-256, that it was planned for this stack and `action` (`apply_stack` checks both, for drctl too) and,
    where the topology asks for one, the approval recorded by the task `approval_task_id` (a destroy must be
    confirmed by typing the environment's name). Applying a plan applied already does nothing.

    The plan is pulled by task id rather than passed as an XComArg: an XComArg would make the plan task a
    direct upstream, and with this task's trigger rule (after the approval or the no-approval path) a plan
    that stopped the run would still count as "one success"."""

    template_fields: Sequence[str] = (*_TerraformOperator.template_fields, "action", "plan_task_id",
                                      "approval_task_id")

    def __init__(self, *, action: str, plan_task_id: str = "plan", approval_task_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.plan_task_id = plan_task_id
        self.approval_task_id = approval_task_id

    def execute(self, context: Context) -> dict:
        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.exceptions import InputError
        from multicloud_dr.terraform.approval import check_approval
        from multicloud_dr.terraform.provision import apply_stack

        def step() -> dict:
            ref, plan = self._ref(), context["ti"].xcom_pull(task_ids=self.plan_task_id)
            if not plan or not plan.get("plan_url"):
                raise InputError("there is no saved plan to apply (the plan task found no changes or stored none)")
            settings = _settings()
            applied_by: dict[str, Any] = {"run_id": context["run_id"]}
            if settings.approval_required(ref.environment, self.action):
                answer = context["ti"].xcom_pull(task_ids=self.approval_task_id) if self.approval_task_id else None
                applied_by["approved_by"] = check_approval(answer, environment=ref.environment, action=self.action)
                self.log.info("approved by %s", applied_by["approved_by"])
            return apply_stack(ref, settings, _plan_store(settings), StorageUrl.parse(plan["plan_url"]),
                               plan["plan_sha256"], applied_by=applied_by, on_runner=self._track,
                               action=self.action).to_dict()

        return run_step(step)


class TerraformPublishOutputsOperator(_TerraformOperator):
    """Publish the stack's non-sensitive outputs (`terraform output -json`) as the Airflow Variable
    `terraform_outputs__<cloud>__<environment>__<stack>` and as an event of the stack's Asset (through the
    `terraform_outputs` AssetAlias given as outlet). After a destroy the stack is published as destroyed."""

    template_fields: Sequence[str] = (*_TerraformOperator.template_fields, "action")

    def __init__(self, *, action: str = "apply", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.action = action

    def execute(self, context: Context) -> dict:
        from airflow.sdk import Variable

        from multicloud_dr.assets import terraform_outputs_alias, terraform_outputs_asset
        from multicloud_dr.terraform.outputs import outputs_variable_key, published_document
        from multicloud_dr.terraform.provision import stack_outputs

        ref = self._ref()
        outputs = run_step(lambda: stack_outputs(ref, _settings(), on_runner=self._track))
        document = published_document(ref, outputs.values, outputs.sensitive, run_id=context["run_id"],
                                      destroyed=self.action == "destroy")
        key = outputs_variable_key(ref)
        Variable.set(key, json.dumps(document, sort_keys=True),
                     description=f"non-sensitive terraform outputs of {ref.label} (environment_provision)")
        context["outlet_events"][terraform_outputs_alias()].add(
            terraform_outputs_asset(ref.cloud, ref.environment, ref.stack), extra=document)
        self.log.info("published %d output(s) of %s as Variable %s and Asset terraform://%s%s", len(outputs.values),
                      ref.label, key, ref.label, f"; dropped sensitive: {', '.join(outputs.sensitive)}"
                      if outputs.sensitive else "")
        return {"variable": key, "asset": f"terraform://{ref.label}", "outputs": sorted(outputs.values),
                "sensitive_dropped": outputs.sensitive, "destroyed": document["destroyed"]}


class TerraformDriftOperator(_RunsTerraform):
    """Plan one stack (`target`: {cloud, environment, stack}) without locking anything; returns "in_sync" or
    "drift" with the counts per resource type, and records the same (terraform/drift_record.py: one blob per
    stack, overwritten by each check, which the failover's evidence reads). A failed plan is recorded as "failed"
    and fails the task (and only it); so does a record that cannot be written (it is retried)."""

    template_fields: Sequence[str] = ("target",)

    def __init__(self, *, target: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def execute(self, context: Context) -> dict:
        from multicloud_dr.terraform.drift_record import check_and_record_drift
        from multicloud_dr.terraform.stacks import StackRef

        def step() -> dict:
            ref = StackRef(self.target["cloud"], self.target["environment"], self.target["stack"])
            result, record = check_and_record_drift(ref, _settings(), context["run_id"], on_runner=self._track)
            return {**result.to_dict(), "record": str(record)}

        return run_step(step)
