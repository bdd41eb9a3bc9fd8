"""The tasks of the dr_failover and dr_failback DAGs (dags/dr_failover.py, dags/dr_failback.py): one task per step
of failover/orchestrator.py, in its order, around an approval. Called at parse time: it reads the topology file
only (no connection, no server)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, get_current_context, task

from multicloud_dr.config import SITES, load_topology
from multicloud_dr.failover.steps import FAILBACK_STEPS, FAILOVER_STEPS
from multicloud_dr.notifiers.channels import approval_notifiers, failure_notifiers, job_failure_notifiers

TIMEOUTS = {"evidence": 5, "gates": 2, "fence": 5, "dr_stack": 60, "data": 360, "unfence": 5, "app": 20,
            "health": 15, "traffic": 30, "verify": 5}   # minutes


def dag_arguments(*, failback: bool = False) -> dict:
    """params and default_args of dr_failover / dr_failback (the DAG files pass schedule and the rest)."""
    topology = load_topology()  # a local file: fine at parse time
    what = "failback" if failback else "failover"
    params = {
        "mode": Param("planned", enum=["planned", "emergency"] if failback else ["planned", "emergency", "drill"],
                      description="planned (nothing lost), emergency (the other site is down)"
                                  + ("" if failback else ", or drill (scratch targets, torn down)")),
        "dry_run": Param(False, type="boolean", description="evidence and gates only: nothing is changed"),
        "force": Param(False, type="boolean", description="go on past failed gates (needs a reason)"),
        "reason": Param(None, type=["null", "string"], description="why (required with force; recorded)"),
    }
    if not failback:
        params = {"target_site": Param("dr", enum=list(SITES), description="the site that takes over"), **params,
                  "pre_approved": Param(False, type="boolean", description="drills only: run without an approver")}
    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "max_active_runs": 1,
        "tags": ["multicloud-dr", "failover"],
        "params": params,
        "default_args": {
            "owner": "platform-dr",
            "retries": 2,
            "retry_delay": timedelta(seconds=30),
            "on_failure_callback": job_failure_notifiers(topology.notify, f"dr_{what}", topology.environment),
        },
    }


def add_tasks(*, failback: bool = False) -> None:
    """The tasks, inside the DAG being defined (`with DAG(...):`)."""
    topology = load_topology()
    what = "failback" if failback else "failover"
    approvers = [{"id": name, "name": name} for name in topology.failover.approvers] or None
    def step(name: str, **kwargs):
        @task(task_id=name, execution_timeout=timedelta(minutes=TIMEOUTS[name]), **kwargs)
        def run() -> dict:
            from multicloud_dr.operators.failover import run_task_step

            return run_task_step(name, get_current_context(), failback=failback)
        return run()

    evidence = step("evidence")
    gates = step("gates", retries=0)

    @task.branch(task_id="route", retries=0)
    def route() -> str | None:
        context = get_current_context()
        run_params = context["params"]
        if (context["ti"].xcom_pull(task_ids="evidence") or {}).get("noop"):
            return None
        if run_params.get("dry_run"):
            return "dry_run_report"
        drill = run_params.get("mode") == "drill" and run_params.get("pre_approved")
        return "pre_approved" if drill else "approve"

    approve = ApprovalOperator(
        task_id="approve",
        subject=f"{{{{ params.mode }}}} {what} of {topology.environment}"
                + ("" if failback else " to {{ params.target_site }}"),
        body="{{ ti.xcom_pull(task_ids='gates')['approval_md'] }}",
        assigned_users=approvers,
        notifiers=approval_notifiers(topology.notify, f"a {what} of {topology.environment} waits for approval",
                                     f"Browse -> Required Actions in Airflow: {{{{ params.mode }}}} {what}",
                                     topology.failover.approvers),
        params={"reason": Param("", type="string", title="Reason", description="recorded in the report")},
        response_timeout=timedelta(hours=4),
        retries=0,
    )
    pre_approved = EmptyOperator(task_id="pre_approved")

    @task(task_id="record_approval", trigger_rule="none_failed_min_one_success", retries=0)
    def record() -> dict:
        from multicloud_dr.operators.failover import record_approval_from_context

        return record_approval_from_context(get_current_context(), failback=failback)

    @task(task_id="dry_run_report", retries=1)
    def dry_run_report() -> dict:
        from multicloud_dr.failover.orchestrator import finish
        from multicloud_dr.operators.failover import runner_from_context

        return finish(runner_from_context(get_current_context(), failback=failback), "cancelled")

    steps = [step(name) for name in (FAILBACK_STEPS if failback else FAILOVER_STEPS)
             if name not in ("evidence", "gates", "approval")]

    report = "{{ (ti.xcom_pull(task_ids='finish') or {})"

    @task(task_id="finish", execution_timeout=timedelta(minutes=5),
          on_success_callback=failure_notifiers(
              topology.notify, f"{what} report of {topology.environment}",
              f"{report}.get('outcome') }}}}: RTO {report}.get('rto_seconds') }}}} s, RPO "
              f"{report}.get('rpo_seconds') }}}} s"))
    def finish() -> dict:
        from multicloud_dr.operators.failover import finish_from_context

        return finish_from_context(get_current_context(), failback=failback)

    @task(task_id="stop", trigger_rule="one_failed", retries=1)
    def stop() -> dict:
        """After a failed step: frees the DR state if nothing destructive ran, else keeps it for a resume."""
        from multicloud_dr.operators.failover import stop_from_context

        return stop_from_context(get_current_context(), failback=failback)

    recorded = record()
    evidence >> gates >> route() >> [approve, pre_approved, dry_run_report()]
    [approve, pre_approved] >> recorded >> steps[0]
    for before, after in itertools.pairwise(steps):
        before >> after
    steps[-1] >> finish()
    [gates, recorded, *steps] >> stop()
    if not failback:
        @task(task_id="drill_teardown", trigger_rule="all_done")
        def drill_teardown() -> dict | None:
            """A drill's teardown always runs (scratch databases, drill record); other modes: nothing."""
            context = get_current_context()
            if context["params"].get("mode") != "drill":
                return None
            from multicloud_dr.operators.failover import finish_from_context

            return finish_from_context(context, drill_teardown=True)

        steps[-1] >> drill_teardown()
