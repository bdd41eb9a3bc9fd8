"""
# environment_provision

Terraform for one stack of one environment, triggered by hand with four params: **cloud** (aws, azure,
gcp), **environment** (dev, staging, production, dr), **stack** (always-on: what runs all the time in the
pilot-light design; failover: what the DR site adds when it takes over) and **action** (plan, apply,
destroy). The roots are `include/terraform/environments/<cloud>/<environment>/`, one state per stack
(`backend-<stack>.hcl`).

**init** (root, backend and credentials checked) -> **plan** (`plan -detailed-exitcode`; counts per
resource type; a plan with changes is stored in the private backup container, its SHA-256 in XCom) ->
**decide**: no changes, or action=plan, stops here. Production and dr (`terraform.approval_environments`),
and every destroy, wait in **approve** for a human (Browse -> Required Actions) who sees the counts and the
plan's SHA-256; a destroy must be confirmed by typing the environment's name. Dev and staging go through
**approval_not_required**. -> **apply** applies exactly the stored plan (SHA-256 checked; an approval that
is missing, rejected or mistyped fails it) -> **publish_outputs**: the non-sensitive outputs become the
Variable `terraform_outputs__<cloud>__<environment>__<stack>` and an event of the Asset
`terraform://<cloud>/<environment>/<stack>` (read them with
`multicloud_dr.terraform.outputs.read_published_outputs`).

Safe to retry or clear: an applied plan leaves an `applied-<sha256>.json` marker, so applying it again does
nothing; a plan that went stale because of an earlier attempt is recognised by a fresh plan with nothing
to do. Credentials reach terraform as environment variables built from Airflow connections
(`terraform.credentials`), never in argv or logs. Stopping a task sends terraform one SIGINT so it
releases the state lock. Without Airflow: `drctl terraform plan|apply|output`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param, task

from multicloud_dr.assets import terraform_outputs_alias
from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import approval_notifiers, job_failure_notifiers
from multicloud_dr.operators.terraform import (
    TerraformApplyOperator,
    TerraformInitOperator,
    TerraformPlanOperator,
    TerraformPublishOutputsOperator,
)
from multicloud_dr.terraform.approval import CONFIRM_PARAM, NEEDS_APPROVAL, NO_APPROVAL
from multicloud_dr.terraform.stacks import ACTIONS, CLOUDS, ENVIRONMENTS, STACKS

topology = load_topology()  # a local file: fine at parse time
STACK = {"cloud": "{{ params.cloud }}", "environment": "{{ params.environment }}", "stack": "{{ params.stack }}"}

with DAG(
    dag_id="environment_provision",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["multicloud-dr", "terraform", "provisioning"],
    doc_md=__doc__,
    params={
        "cloud": Param("aws", enum=list(CLOUDS), description="which cloud's root"),
        "environment": Param("dev", enum=list(ENVIRONMENTS), description="which environment's root"),
        "stack": Param("always-on", enum=list(STACKS), description="always-on, or the failover stack"),
        "action": Param("plan", enum=list(ACTIONS), description="plan only, apply, or destroy (asks for approval)"),
    },
    default_args={
        "owner": "platform-dr",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": job_failure_notifiers(topology.notify, "environment_provision", topology.environment),
    },
) as dag:
    init = TerraformInitOperator(task_id="init", **STACK, execution_timeout=timedelta(minutes=20))
    plan = TerraformPlanOperator(task_id="plan", action="{{ params.action }}", **STACK,
                                 execution_timeout=timedelta(hours=1))

    @task.branch(task_id="decide")
    def decide(record: dict) -> str | None:
        from multicloud_dr.terraform.approval import route_after_plan
        from multicloud_dr.terraform.stacks import TerraformSettings

        step = route_after_plan(record, TerraformSettings.load())
        return {NEEDS_APPROVAL: "approve", NO_APPROVAL: "approval_not_required"}.get(step)  # None: stop here

    approve = ApprovalOperator(
        task_id="approve",
        subject="terraform {{ params.action }} of {{ params.cloud }}/{{ params.environment }}/{{ params.stack }}",
        body="{{ ti.xcom_pull(task_ids='plan')['approval_md'] }}",
        assigned_users=[{"id": name, "name": name} for name in topology.terraform.approvers] or None,
        notifiers=approval_notifiers(
            topology.notify, "terraform {{ params.action }} of {{ params.cloud }}/{{ params.environment }}/"
                             "{{ params.stack }} waits for approval",
            "Browse -> Required Actions in Airflow: the plan is in the approval's body", topology.terraform.approvers),
        params={CONFIRM_PARAM: Param("", type="string", title="Confirm a destroy",
                                     description="only for action=destroy: type the environment's name")},
        response_timeout=timedelta(hours=24),
        retries=0,
    )
    no_approval = EmptyOperator(task_id="approval_not_required")
    apply = TerraformApplyOperator(
        task_id="apply",
        action="{{ params.action }}",
        plan_task_id="plan",
        approval_task_id="approve",
        **STACK,
        trigger_rule="none_failed_min_one_success",  # after approve or approval_not_required, whichever ran
        execution_timeout=timedelta(hours=3),
    )
    publish = TerraformPublishOutputsOperator(
        task_id="publish_outputs", action="{{ params.action }}", **STACK, outlets=[terraform_outputs_alias()],
        execution_timeout=timedelta(minutes=20))

    init >> plan
    decide(plan.output) >> [approve, no_approval] >> apply >> publish
