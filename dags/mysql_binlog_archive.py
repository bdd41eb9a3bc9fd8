"""# mysql_binlog_archive

Copies each MySQL database's primary binlogs to Blob storage, next to its backups
(`<backup.location>/<database>/binlog/`), for point-in-time recovery (`drctl restore --until`).

Every 15 minutes a run starts one task per database that reads the primary over the replication protocol
(`mariadb-binlog --read-from-remote-server --raw`, non-blocking) every `backup.binlogs.interval_seconds` for
`backup.binlogs.run_minutes`, and uploads what the primary wrote since the last read as a piece named by its
binlog coordinates, with an index entry (positions, GTIDs, event times, bytes, SHA-256). What is archived
trails the primary by about the interval. A retried or overlapping task finds the archive's lease held, or the
pieces already there, and writes nothing new. A binlog purged on the primary before it was archived (F34) is
archived around and fails the task, naming the gap; `replication_health`'s `binlog_archive/<db>` check
shows it until a new backup starts a whole archive.

Without Airflow: `drctl binlogs archive --source ... --to wasb://... --database ... [--once]`;
`drctl binlogs list` shows what is archived and any gap. Off unless `backup.binlogs` is set in the topology.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task

from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import job_failure_notifiers

topology = load_topology()  # a local file: fine at parse time
backup = topology.backup
settings = backup.binlogs

with DAG(
    dag_id="mysql_binlog_archive",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["multicloud-dr", "backup", "mysql", "pitr"],
    doc_md=__doc__,
    default_args={
        "owner": "platform-dr",
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": job_failure_notifiers(topology.notify, "mysql_binlog_archive", topology.environment),
    },
) as dag:
    if settings is None:
        @task(task_id="not_configured")
        def not_configured() -> str:
            message = "backup.binlogs is not set in the topology: no binlog is archived (point-in-time recovery off)"
            import logging

            logging.getLogger(__name__).warning("%s", message)
            return message

        not_configured()
    for database in topology.mysql_databases() if settings is not None else []:

        @task(task_id=f"archive_{database.name}", execution_timeout=timedelta(minutes=settings.run_minutes + 10))
        def archive(conn_id: str = database.primary_conn_id, name: str = database.name) -> dict:
            import dataclasses

            from multicloud_dr.backup.binlog import run_archiver
            from multicloud_dr.backup.layout import StorageUrl
            from multicloud_dr.backup.store import BackupStore
            from multicloud_dr.connections import get_endpoint
            from multicloud_dr.connections.wasb import blob_service_client
            from multicloud_dr.operators import run_step

            root = StorageUrl.parse(backup.location)

            def step():
                store = BackupStore(blob_service_client(backup.storage_conn_id), root.bucket)
                return run_archiver(get_endpoint(conn_id), store, root, name, seconds=settings.run_minutes * 60,
                                    interval=settings.interval_seconds, lease_seconds=backup.lease_seconds,
                                    max_piece_bytes=settings.max_piece_mb * 2**20)

            return dataclasses.asdict(run_step(step))

        archive()
