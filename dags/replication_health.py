"""
# replication_health

How much data would a failover lose right now? Every five minutes, one mapped task per check of the
DR topology (`include/topology.yaml`, `replication:`), so one failing check never hides another.

First of all, **fence_returning_primary**: when the DR state says the fencing of a site is pending (a
failover could not reach the old primary: partitioned, not dead), and that site answers again, it is
fenced at once, before it can take a write through the app (read-only, the app's accounts locked, their
sessions ended), and the DR state records it with a new fencing epoch. The checks run whatever it found.

- **mysql_replica/<db>**: IO and SQL threads running, `Seconds_Behind_Master` (NULL is a breach, never
  zero), and the lag measured from replicated data: a heartbeat row (`include/sql/heartbeat_mysql.sql`)
  written on the primary and timed until the replica has applied it (an idle primary is not lag);
- **postgres_standby/<db>**: `pg_stat_replication` on the primary, paused replay on the standby is a
  breach, and the same heartbeat timing (`include/sql/heartbeat_postgres.sql`);
- **dms/<task>**: the AWS DMS task is running, its CDC latency on the source and the target side
  (CloudWatch), and its table validation state (mismatched records are a breach);
- **consistency/<db>**: chunked checksums of the configured tables, primary against replica, naming the
  table and key range that differ (chunks still in flight are re-checked, not reported);
- **backup_freshness/<db>**: the age of the newest verified backup (storage server's clock).

**rpo** computes the current achievable RPO (the worst measured delay) against `targets.rpo_seconds`,
and records the whole report as an event of the asset `replication_health.<environment>`: the history,
in the Airflow UI (Assets) and the REST API (`/api/v2/assets/events`). **alert** fails the run on a
breach, which notifies through the channels configured in `notify` (SMTP, Slack webhook).

A check task fails on a breach (not retried: it would measure the same) or when it cannot run
(retried once). The same checks run without Airflow: `drctl replication check [--json]`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, get_current_context, task

from multicloud_dr.assets import replication_health_asset
from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import (
    EXCEPTION,
    REPLICATION_HEADLINE,
    failure_notifiers,
    job_failure_notifiers,
)
from multicloud_dr.operators.replication import RESULT_KEY, ReplicationCheckOperator
from multicloud_dr.replication.health import plan_checks

topology = load_topology()  # a local file: fine at parse time
specs = plan_checks(topology)
asset = replication_health_asset(topology.environment)

with DAG(
    dag_id="replication_health",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    tags=["multicloud-dr", "replication", "rpo"],
    doc_md=__doc__,
    default_args={
        "owner": "platform-dr",
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": job_failure_notifiers(topology.notify, "replication_health", topology.environment),
    },
) as dag:
    @task(task_id="fence_returning_primary", execution_timeout=timedelta(minutes=2),
          on_failure_callback=failure_notifiers(topology.notify, f"fencing a returning primary failed in "
                                                f"{topology.environment}", EXCEPTION))
    def fence_returning_primary() -> dict:
        from multicloud_dr.failover.site_fence import fence_returning_site
        from multicloud_dr.operators import run_step

        return run_step(lambda: fence_returning_site(load_topology()))

    checks = ReplicationCheckOperator.partial(
        task_id="check",
        map_index_template="{{ task.check['name'] }}",
        execution_timeout=timedelta(minutes=3),
        trigger_rule="all_done",        # measured even when the fencing task failed (it alerts on its own)
        on_failure_callback=[],         # a failed check is a breach: `alert` announces it, once, with its cause
    ).expand(check=specs)

    @task(task_id="rpo", outlets=[asset], trigger_rule="all_done", execution_timeout=timedelta(minutes=2))
    def rpo(specs: list[dict] = specs, target: int = topology.targets.rpo_seconds) -> dict:
        import logging

        from multicloud_dr.monitoring import metrics
        from multicloud_dr.replication.health import report_from_results

        context = get_current_context()
        pulled = context["ti"].xcom_pull(task_ids="check", key=RESULT_KEY, map_indexes=list(range(len(specs))))
        results = list(pulled) if isinstance(pulled, list | tuple) else [pulled]
        started = context["dag_run"].start_date or context["dag_run"].run_after
        report = report_from_results(specs, results, target, started.isoformat(timespec="seconds"))
        metrics.send_health_report(report, topology.environment)
        summary = {**report.to_dict(), "headline": report.headline()}
        context["outlet_events"][asset].extra = summary   # the history: one asset event per run
        log = logging.getLogger("multicloud_dr.replication")
        (log.info if report.status == "ok" else log.warning)("%s", report.headline())
        return summary

    @task(task_id="alert", trigger_rule="all_done",
          on_failure_callback=failure_notifiers(topology.notify, f"replication breach in {topology.environment}",
                                                REPLICATION_HEADLINE))
    def alert() -> str:
        """Fails the run on a breach, or when the RPO could not be computed: the notifiers fire."""
        from airflow.sdk.exceptions import AirflowFailException

        summary = get_current_context()["ti"].xcom_pull(task_ids="rpo")
        if not summary:
            raise AirflowFailException("the RPO could not be computed: see the rpo task's log")
        if summary["status"] != "ok":
            raise AirflowFailException(summary["headline"])
        return summary["headline"]

    summary = rpo()
    fence_returning_primary() >> checks >> summary >> alert()
