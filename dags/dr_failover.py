"""
# dr_failover

Moves the application from one site to the other (normally primary -> dr), triggered by hand. Params:
**target_site**, **mode** (`planned`: the primary is up, nothing is lost; `emergency`: the primary is down;
`drill`: the same steps against scratch targets, torn down at the end), **dry_run** (evidence and gates only),
**force** with a **reason** (past failed gates, recorded), **pre_approved** (drills only).

**evidence** (replication and RPO, newest verified backup, app health, traffic and DNS TTLs, DR stack, last drill;
the DR state is taken for this run) -> **gates** (F22: stale backup, stopped or lagging replica, drift stop the run
here, before anything is changed) -> **approve** (Browse -> Required Actions: the evidence as Markdown; in a
four-eyes environment the approver must not be the user who triggered the run, F31) -> **record_approval** ->
**fence** the site left (read-only, app accounts locked; unreachable: pending, fenced by replication_health as soon
as it answers, F30) -> **dr_stack** (Terraform, when its outputs say it is not up) -> **data** (promote the
replica, or restore the newest verified backup) -> **app** (scale the DR deployments, pointed at that database)
-> **health** (F33: an unhealthy app stops the run, traffic untouched) -> **traffic** (every layer, never zero
targets, F24) -> **verify** (read back; the DR site becomes active) -> **finish** (the report with RTO and RPO,
stored next to the DR state and sent to the notifiers).

Each step records itself in the DR state (`<backup container>/state/<environment>.json`) by compare-and-set: a
retried or cleared task resumes after the last step done (F32), a run on the target site already does nothing,
and a drctl run can never act at the same time. Without Airflow: `drctl failover`.
"""

from __future__ import annotations

from airflow.sdk import DAG

from multicloud_dr.failover.dag import add_tasks, dag_arguments

with DAG(dag_id="dr_failover", schedule=None, catchup=False, doc_md=__doc__,
         **dag_arguments(failback=False)) as dag:
    add_tasks(failback=False)
