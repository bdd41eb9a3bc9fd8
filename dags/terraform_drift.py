"""
# terraform_drift

Every day at 04:30 UTC (`terraform.drift_schedule`), checks that the real infrastructure still matches
the Terraform configuration: one mapped **plan** per (cloud, environment, stack) in
`terraform.drift_targets` (by default all 3 clouds x 4 environments x 2 stacks), each
`terraform plan -detailed-exitcode -lock=false` in its own root: exit 0 is in sync, 2 is drift. A plan
that fails fails only its own mapped task, so one broken root does not hide the others.

Each plan also records what it found (in sync, drift with the counts per resource type, or failed with the
error) as `<terraform.plan_location>/drift/<cloud>/<environment>/<stack>.json`, overwriting the check before.
The failover's evidence reads the record of its DR stack (`failover.dr_stack`): drift there stops its gate
"drift"; a record older than 48 h is shown as stale. A record that cannot be written fails the plan task (it
is retried): a check the failover cannot see has not happened.

**summary** lists every stack (in sync, drift with the counts per resource type, or no result) in its log
and fails when anything drifted or could not be planned: the failure is the alert, sent to the channels
configured in `notify` (SMTP, Slack webhook); the message says which stacks and what changed. Nothing is
applied and no state is locked:
fix drift with `environment_provision` (action=apply) after reviewing its plan.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, task

from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import EXCEPTION, failure_notifiers, job_failure_notifiers
from multicloud_dr.operators.terraform import TerraformDriftOperator
from multicloud_dr.terraform.stacks import TerraformSettings

topology = load_topology()  # a local file: fine at parse time
config = topology.terraform
targets = [ref.to_dict() for ref in TerraformSettings.from_config(config).drift_targets]

with DAG(
    dag_id="terraform_drift",
    schedule=CronTriggerTimetable(config.drift_schedule, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["multicloud-dr", "terraform", "drift"],
    doc_md=__doc__,
    default_args={
        "owner": "platform-dr",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": job_failure_notifiers(topology.notify, "terraform_drift", topology.environment),
    },
) as dag:
    plans = TerraformDriftOperator.partial(
        task_id="plan",
        map_index_template="{{ task.target['cloud'] }}/{{ task.target['environment'] }}/{{ task.target['stack'] }}",
        execution_timeout=timedelta(minutes=30),
        on_failure_callback=[],         # `summary` announces every failed or drifted stack, in one message
    ).expand(target=targets)

    @task(task_id="summary", trigger_rule="all_done", retries=0,
          on_failure_callback=failure_notifiers(topology.notify, f"Terraform drift in {topology.environment}",
                                                EXCEPTION))
    def summary(results: list, expected: list = targets) -> dict:
        import logging

        from airflow.sdk.exceptions import AirflowFailException

        from multicloud_dr.terraform.provision import drift_report
        from multicloud_dr.terraform.stacks import StackRef

        report = drift_report([StackRef(**t) for t in expected], list(results))
        if not report.ok:
            logging.getLogger(__name__).warning("%s", report.message)
            raise AirflowFailException(report.message)
        logging.getLogger(__name__).info("%s", report.message)
        return {"drifted": report.drifted, "failed": report.failed, "stacks": len(expected)}

    summary(plans.output)
