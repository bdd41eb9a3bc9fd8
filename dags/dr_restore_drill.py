"""
# dr_restore_drill

Proves that the backups restore, and that a restore fits the RTO (`targets.rto_seconds` in
`include/topology.yaml`). Runs after each verified nightly backup (the `mysql_backup` Asset event of
any MySQL database), and every Sunday at 05:00 UTC even if no backup arrived.

For each MySQL database in the topology, on its DR server (`dr_conn_id`):
**setup** (a scratch database named from the run's date, `drill_<db>_<yyyymmdd>t<hhmmss>`; leftovers
of an earlier try dropped) -> **restore** (the newest verified backup, streamed from Azure Blob, loaded
into a private database, checked row for row and checksum for checksum against the manifest, swapped
into the scratch database) -> **measure** (its size) -> **teardown** (drops the scratch database and
the restore's private databases, whatever happened before) and, alongside, **report** (duration,
rows/s, MB/s, size, and the restore time predicted 30 days ahead from the growth seen by earlier
drills; stored as `drill-<stamp>.json` next to the backup, and logged).

A failed restore fails the run, and so does a failed cleanup; a successful cleanup never turns a
failed run green (`report` is a leaf of the run, not only the teardown). A restore time over the
RTO, now or predicted, does not fail the run: the report logs a warning and says `alert: true`.
The restore runs without Airflow too (`drctl restore`); the drill's steps are plain Python in
`multicloud_dr.restore.drill`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, TaskGroup, get_current_context, task

from multicloud_dr.assets import mysql_backup_asset
from multicloud_dr.config import load_topology
from multicloud_dr.connections import MYSQL_DR
from multicloud_dr.notifiers.channels import job_failure_notifiers
from multicloud_dr.notifiers.deadlines import deadline_alert
from multicloud_dr.operators.restore import RestoreBackupOperator

topology = load_topology()  # a local file: fine at parse time
backup = topology.backup
databases = topology.mysql_databases()

with DAG(
    dag_id="dr_restore_drill",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 5 * * 0", timezone="UTC"),
        assets=AssetAny(*(mysql_backup_asset(d.name) for d in databases)),
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs of one date share the scratch database's name
    tags=["multicloud-dr", "restore", "drill", "mysql"],
    doc_md=__doc__,
    deadline=deadline_alert(topology.notify, topology.environment,
                            within=timedelta(seconds=topology.targets.rto_seconds),
                            what="the restore drill takes longer than the RTO target"),
    default_args={
        "owner": "platform-dr",
        "retries": 1,
        "retry_delay": timedelta(minutes=2),
        "on_failure_callback": job_failure_notifiers(topology.notify, "dr_restore_drill", topology.environment),
    },
) as dag:
    for database in databases:
        dr_conn_id = database.dr_conn_id or MYSQL_DR
        with TaskGroup(group_id=database.name):

            @task(task_id="setup", multiple_outputs=True, execution_timeout=timedelta(minutes=10))
            def setup(conn_id: str = dr_conn_id, name: str = database.name) -> dict:
                from multicloud_dr.connections import get_endpoint
                from multicloud_dr.operators import run_step
                from multicloud_dr.restore.drill import drill_stamp, scratch_database_name, setup_scratch

                context = get_current_context()
                # Asset-triggered runs have no logical date in Airflow 3: run_after names the scratch then.
                run_stamp = drill_stamp(context.get("logical_date") or context["dag_run"].run_after)
                scratch = scratch_database_name(name, run_stamp)
                dropped = run_step(lambda: setup_scratch(get_endpoint(conn_id), scratch))
                return {"database": scratch, "run_stamp": run_stamp, "leftovers_dropped": dropped}

            scratch = setup()
            restore = RestoreBackupOperator(
                task_id="restore",
                manifest="latest",
                location=backup.location,
                source_database=database.name,
                target_conn_id=dr_conn_id,
                database=scratch["database"],
                storage_conn_id=backup.storage_conn_id,
                execution_timeout=timedelta(hours=6),
            )

            @task(task_id="measure", execution_timeout=timedelta(minutes=30))
            def measure(result: dict, conn_id: str = dr_conn_id) -> int:
                """The restored database's size, while it exists (the report needs no database)."""
                from multicloud_dr.connections import get_endpoint
                from multicloud_dr.operators import run_step
                from multicloud_dr.restore.drill import database_size

                return run_step(lambda: database_size(get_endpoint(conn_id), result["database"]))

            @task(task_id="report", execution_timeout=timedelta(minutes=10))
            def report(result: dict, size: int, run_stamp: str, storage_conn_id: str = backup.storage_conn_id,
                       location: str = backup.location, rto_seconds: int = topology.targets.rto_seconds) -> dict:
                import json
                import logging

                from multicloud_dr.backup.layout import StorageUrl
                from multicloud_dr.backup.store import BackupStore
                from multicloud_dr.connections.wasb import blob_service_client
                from multicloud_dr.monitoring import metrics
                from multicloud_dr.operators import run_step
                from multicloud_dr.restore.drill import report_drill
                from multicloud_dr.restore.mysql_restore import RestoreResult

                def step() -> dict:
                    root = StorageUrl.parse(location)
                    store = BackupStore(blob_service_client(storage_conn_id), root.bucket)
                    return report_drill(store, RestoreResult(**result), root, size, rto_seconds, run_stamp)[1]

                drill = run_step(step)
                metrics.send_drill_report(drill, topology.environment)
                log = logging.getLogger("multicloud_dr.restore.drill")
                log.info("drill report %s: %s", drill["report"], json.dumps(drill, sort_keys=True))
                # An RTO at risk is for people to act on, not a reason to fail the drill (the restore worked).
                (log.warning if drill["alert"] else log.info)("%s", drill["message"])
                return drill

            @task(task_id="teardown", execution_timeout=timedelta(minutes=10))
            def teardown(name: str, conn_id: str = dr_conn_id) -> dict:
                from multicloud_dr.connections import get_endpoint
                from multicloud_dr.operators import run_step
                from multicloud_dr.restore.drill import teardown_scratch

                return {"database": name, "dropped": run_step(lambda: teardown_scratch(get_endpoint(conn_id), name))}

            size = measure(restore.output)
            cleanup = teardown(scratch["database"])
            # The teardown runs whatever happened and fails the run if it fails. With on_failure_fail_dagrun
            # it counts as a leaf, so it must not be the only one: `report` is a leaf too, and a failed
            # restore leaves it upstream_failed, which fails the run even when the cleanup succeeds.
            size >> cleanup.as_teardown(setups=scratch, on_failure_fail_dagrun=True)
            report(restore.output, size, scratch["run_stamp"])
