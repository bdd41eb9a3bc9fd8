"""
# dr_failback

Brings the application back to the primary site after a failover, triggered by hand once the primary is
repaired. Params: **mode** (`planned`, `emergency`), **dry_run**, **force** with a **reason**.

**evidence** -> **gates** (the primary must answer: every database of it reachable, and it is fenced again here,
so a primary whose fencing was still pending is fenced now) -> **approve** (the evidence as Markdown; four eyes
in production, F31) -> **record_approval** -> **fence** DR (its writes stop) -> **data** (a fresh backup of each DR
database restored into the primary, written to its binlog so the primary's own replicas follow, then compared
table by table with chunked checksums: any difference fails the run; a PostgreSQL database whose standby the
failover promoted: the old primary, rebuilt as a standby of DR beforehand, replays all DR wrote and is promoted,
and until it is rebuilt the gates stop the run, even forced) -> **unfence** the primary -> **app** (the
primary's deployments scaled up) -> **health** (F33) -> **traffic** back (never zero targets, F24) -> **verify**
(read back; the primary becomes active) -> **finish** (the report, next to the DR state).

Resumable from the DR state like dr_failover (F32). Without Airflow: `drctl failback`.
"""

from __future__ import annotations

from airflow.sdk import DAG

from multicloud_dr.failover.dag import add_tasks, dag_arguments

with DAG(dag_id="dr_failback", schedule=None, catchup=False, doc_md=__doc__,
         **dag_arguments(failback=True)) as dag:
    add_tasks(failback=True)
