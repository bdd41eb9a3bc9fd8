"""What the dr_failover and dr_failback tasks run: a StepRunner made from the task's context (the run's Params, its
run id, the user who triggered it), and one step of failover/orchestrator.py per task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

APPROVE_TASK = "approve"


def runner_from_context(context: Any, *, failback: bool = False):
    from multicloud_dr.config import load_topology
    from multicloud_dr.failover.orchestrator import RunInfo, StepRunner, kind_of
    from multicloud_dr.failover.request import FailoverRequest

    params = dict(context["params"])
    if failback:
        params["target_site"] = "primary"
    request = FailoverRequest.parse({k: v for k, v in params.items() if k in FailoverRequest.model_fields})
    dag_run = context["dag_run"]
    started = dag_run.start_date or dag_run.run_after or datetime.now(UTC)
    info = RunInfo(run_id=dag_run.run_id, by=f"airflow:{dag_run.dag_id}",
                   triggered_by=getattr(dag_run, "triggering_user_name", None), triggered_at=started,
                   kind=kind_of(request, failback))
    return StepRunner(load_topology(), request, info)


def run_task_step(name: str, context: Any, *, failback: bool = False) -> Any:
    """One step; a run that is a no-op (already on the target) or finished skips the rest."""
    from airflow.sdk.exceptions import AirflowSkipException

    from multicloud_dr.failover.orchestrator import FinishedError, run_named_step
    from multicloud_dr.operators import run_step

    runner = runner_from_context(context, failback=failback)
    if name != "evidence":
        evidence = context["ti"].xcom_pull(task_ids="evidence") or {}
        if evidence.get("noop"):
            raise AirflowSkipException(evidence.get("detail", "nothing to do"))
    try:
        result = run_step(lambda: run_named_step(runner, name))
    except FinishedError as err:
        raise AirflowSkipException(str(err)) from None
    return _xcom(name, result)


def _xcom(name: str, result: Any) -> Any:
    """What goes to XCom: the step's detail without the bulky parts (they stay in the DR state)."""
    if isinstance(result, dict) and name in ("evidence", "gates"):
        keep = {k: v for k, v in result.items() if k not in ("replication", "plans")}
        return keep
    return result


def record_approval_from_context(context: Any, *, failback: bool = False) -> Any:
    from multicloud_dr.failover.orchestrator import record_approval
    from multicloud_dr.operators import run_step

    runner = runner_from_context(context, failback=failback)
    answer = context["ti"].xcom_pull(task_ids=APPROVE_TASK)
    if not answer:
        return run_step(lambda: record_approval(runner, None, "pre-approved"))
    if answer.get("chosen_options") != ["Approve"]:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"the approval was {answer.get('chosen_options')}: nothing was changed")
    user = answer.get("responded_by_user") or {}
    approver = user.get("name") or user.get("id")
    reason = (answer.get("params_input") or {}).get("reason") or None
    return run_step(lambda: record_approval(runner, approver, "airflow approval", reason))


def finish_from_context(context: Any, *, failback: bool = False, drill_teardown: bool = False) -> Any:
    from multicloud_dr.failover.orchestrator import finish, teardown_drill
    from multicloud_dr.monitoring import metrics
    from multicloud_dr.operators import run_step

    runner = runner_from_context(context, failback=failback)
    if drill_teardown:
        done = run_step(lambda: teardown_drill(runner))
        metrics.send_failover_report(done.get("report"))   # absent when this run no longer held the state
        return done
    if runner.info.kind == "drill":
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("a drill's report is written by its teardown, after the cleanup")
    report = run_step(lambda: finish(runner, "succeeded"))
    metrics.send_failover_report(report)
    return report


def stop_from_context(context: Any, *, failback: bool = False) -> Any:
    """After a failure: release the state when nothing destructive ran (gates, approval), so a new run may start;
    otherwise keep it held: a re-run of this run resumes (F32)."""
    from multicloud_dr.failover.orchestrator import GatesFailedError, fail

    runner = runner_from_context(context, failback=failback)
    runner.read()
    if not runner.state.is_held_by(runner.info.run_id):
        return {"released": False, "detail": "this run does not hold the DR state"}
    op = runner.state.operation
    gates = op.step("gates") if op else None
    err = GatesFailedError("gates") if gates is not None and gates.status == "failed" else RuntimeError("stopped")
    report = fail(runner, err)
    return {"released": report is not None, "report": report,
            "detail": "released (nothing destructive ran)" if report else
            "kept: a destructive step ran; clear the failed task to resume, or run drctl failover --resume"}
