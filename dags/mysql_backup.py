"""
# mysql_backup

The nightly backup of every MySQL database in the DR topology (`include/topology.yaml`), at 03:00 UTC.

For each database: **preflight** (reachable, database exists, non-InnoDB tables warned about) ->
**dump_and_upload** (`mysqldump --single-transaction` streamed through zstd and SHA-256 into Azure
Blob as staged blocks, committed once; manifest written last) -> **verify** (read back: SHA-256,
decompression to the end, completion footer, per-table rows and checksums; marks the manifest
verified) -> **copy** (one mapped task per extra destination: S3, GCS; each copy verified) ->
**retention** (30 days by default; never the newest verified backup; never one in use) ->
**publish** (an Asset event for the database, which triggers the restore drill).

Every name derives from the run's logical date: a retry, or clearing a successful run, writes nothing
new. The task log shows progress (MB, MB/s, ETA) and ends with a one-line summary.
The same steps run without Airflow: `drctl backup`, `drctl verify`, `drctl backups list`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, TaskGroup, get_current_context, task

from multicloud_dr.assets import mysql_backup_asset
from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import job_failure_notifiers
from multicloud_dr.notifiers.deadlines import deadline_alert
from multicloud_dr.operators.backup import (
    BackupRetentionOperator,
    CopyBackupOperator,
    MySqlBackupOperator,
    VerifyBackupOperator,
)

topology = load_topology()  # a local file: fine at parse time
backup = topology.backup

with DAG(
    dag_id="mysql_backup",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["multicloud-dr", "backup", "mysql"],
    doc_md=__doc__,
    deadline=deadline_alert(topology.notify, topology.environment,
                            within=timedelta(minutes=backup.verified_within_minutes),
                            what="the nightly backup is not verified"),
    default_args={
        "owner": "platform-dr",
        "on_failure_callback": job_failure_notifiers(topology.notify, "mysql_backup", topology.environment),
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
    },
) as dag:
    for database in topology.mysql_databases():
        with TaskGroup(group_id=database.name):

            @task(task_id="preflight", execution_timeout=timedelta(minutes=5))
            def preflight(conn_id: str = database.primary_conn_id, name: str = database.name) -> dict:
                import logging

                from multicloud_dr.backup.source import preflight as check
                from multicloud_dr.connections import get_endpoint
                from multicloud_dr.operators import run_step

                result = run_step(lambda: check(get_endpoint(conn_id), name))
                for warning in result.warnings:
                    logging.getLogger(__name__).warning("%s", warning)
                return {"server": result.server, "version": result.version, "tables": len(result.tables),
                        "non_innodb": result.non_innodb, "warnings": result.warnings}

            dump = MySqlBackupOperator(
                task_id="dump_and_upload",
                source_conn_id=database.primary_conn_id,
                database=database.name,
                location=backup.location,
                storage_conn_id=backup.storage_conn_id,
                codec=backup.codec,
                lease_seconds=backup.lease_seconds,
                execution_timeout=timedelta(hours=6),
            )
            verify = VerifyBackupOperator(
                task_id="verify",
                manifest=dump.output["manifest"],
                storage_conn_id=backup.storage_conn_id,
                execution_timeout=timedelta(hours=6),
            )
            copies = CopyBackupOperator.partial(
                task_id="copy",
                manifest=dump.output["manifest"],
                storage_conn_id=backup.storage_conn_id,
                execution_timeout=timedelta(hours=6),
            ).expand(destination=[c.model_dump() for c in backup.copies])
            retention = BackupRetentionOperator(
                task_id="retention",
                location=backup.location,
                database=database.name,
                storage_conn_id=backup.storage_conn_id,
                keep_days=backup.retention.keep_days,
                min_keep=backup.retention.min_keep,
                dry_run=backup.retention.dry_run,
                execution_timeout=timedelta(hours=1),
                trigger_rule="none_failed",  # runs when no copy is configured (copy skipped), not after a failure
            )
            asset = mysql_backup_asset(database.name)

            @task(task_id="publish", outlets=[asset], trigger_rule="none_failed")
            def publish(summary: dict, asset=asset) -> dict:
                """The Asset event carries the verified backup's manifest for the consumers."""
                event = {"manifest": summary["manifest"], "backup_id": summary["backup_id"]}
                get_current_context()["outlet_events"][asset].extra = event
                return event

            preflight() >> dump >> verify >> copies >> retention >> publish(dump.output)
