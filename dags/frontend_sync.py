"""
# frontend_sync

Every day (`frontend.schedule`, 02:15 UTC by default) the static frontend's S3 bucket at the primary
(`frontend.source`, s3://BUCKET/PREFIX) is copied to the DR site: one mapped **sync** task per copy in
`frontend.copies` (an Azure Blob container, wasb://CONTAINER/PREFIX, and/or a GCS bucket, gs://BUCKET/PREFIX),
so one broken copy does not hide the other.

Each sync lists both sides and decides per object: new or changed objects are streamed across (never
staged on disk), read back from the copy and checked (size and SHA-256) before the copy is marked with
the source's SHA-256 (metadata `sha256`) and S3 ETag (`source_etag`); unchanged objects (same size, and the
ETag the copy was verified from) are not read at all. Objects the source no longer has are deleted only
when `frontend.delete_removed` is true, and never while a transfer of that copy failed; otherwise they are
reported as extra. A key the source still has is never deleted. A re-run copies and writes nothing.

**summary** lists each copy (copied, skipped, deleted, extra) and fails when a copy has no result: the
failure is the alert, sent to the channels configured in `notify` (SMTP, Slack webhook). A missing bucket
or container fails its sync at once, with the command that creates it.

Without a `frontend` section in the topology this DAG has no schedule and its one task says there is
nothing to copy. The same sync runs without Airflow: `drctl frontend sync [--dry-run] [--json]`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, task

from multicloud_dr.config import load_topology
from multicloud_dr.notifiers.channels import EXCEPTION, failure_notifiers, job_failure_notifiers
from multicloud_dr.operators.frontend import FrontendSyncOperator

topology = load_topology()  # a local file: fine at parse time
frontend = topology.frontend

with DAG(
    dag_id="frontend_sync",
    schedule=CronTriggerTimetable(frontend.schedule, timezone="UTC") if frontend else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    tags=["multicloud-dr", "frontend", "storage"],
    doc_md=__doc__,
    default_args={
        "owner": "platform-dr",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": job_failure_notifiers(topology.notify, "frontend_sync", topology.environment),
    },
) as dag:
    if frontend is None:

        @task(task_id="nothing_to_copy", execution_timeout=timedelta(minutes=1))
        def nothing_to_copy() -> None:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("the topology has no frontend section: there is nothing to copy (add "
                                       "frontend: source/copies to include/topology.yaml to sync a static site)")

        nothing_to_copy()
    else:
        destinations = [c.model_dump() for c in frontend.copies]
        syncs = FrontendSyncOperator.partial(
            task_id="sync",
            source=frontend.source,
            source_conn_id=frontend.source_conn_id,
            delete_removed=frontend.delete_removed,
            map_index_template="{{ task.destination['url'] }}",
            execution_timeout=timedelta(hours=4),
            on_failure_callback=[],     # `summary` announces every failed copy, in one message
        ).expand(destination=destinations)

        @task(task_id="summary", trigger_rule="all_done", retries=0, execution_timeout=timedelta(minutes=5),
              on_failure_callback=failure_notifiers(topology.notify,
                                                    f"frontend copy failed in {topology.environment}", EXCEPTION))
        def summary(results: list, expected: list = [d["url"] for d in destinations]) -> dict:  # noqa: B006
            import logging

            from airflow.sdk.exceptions import AirflowFailException

            from multicloud_dr.frontend.sync import copies_report

            report = copies_report(expected, list(results))
            if not report.ok:
                logging.getLogger(__name__).warning("%s", report.message)
                raise AirflowFailException(report.message)
            logging.getLogger(__name__).info("%s", report.message)
            return report.to_dict()

        summary(syncs.output)
