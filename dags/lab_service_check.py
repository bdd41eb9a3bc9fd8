"""
# lab_service_check

Checks, from inside Airflow, every service the DR plan depends on: one task per service, each
going through the project's default Airflow connection for it (MySQL primary, replica and DR
server; PostgreSQL primary and standby; Azure Blob; the AWS APIs; GCS).

On the local lab (`drctl lab up`) the connections come from `.lab/env`; against real clouds
define the same connection ids (see the README). A task fails when its service cannot be reached
or its connection is missing; `report` then lists what each check found and fails the run if any
check failed. Nothing is written anywhere: it only reads.

Manual only (`schedule=None`): run it after changing connections, or from `make demo`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from multicloud_dr.connectivity import PROBES, check_task_id


@dag(
    dag_id="lab_service_check",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["multicloud-dr", "lab", "connectivity"],
    doc_md=__doc__,
    default_args={"owner": "platform-dr", "retries": 1, "retry_delay": timedelta(seconds=5)},
)
def lab_service_check():
    check_ids = []
    checks = []
    for service in PROBES:
        task_id = check_task_id(service)

        @task(task_id=task_id, execution_timeout=timedelta(minutes=2))
        def check(service: str = service) -> dict:
            from multicloud_dr.connectivity import probe

            return probe(service).to_dict()

        check_ids.append((service, task_id))
        checks.append(check())

    @task(trigger_rule="all_done", retries=0)
    def report() -> list[dict]:
        from multicloud_dr.connectivity import summarize_checks

        ti = get_current_context()["ti"]
        return summarize_checks({service: ti.xcom_pull(task_ids=task_id) for service, task_id in check_ids})

    checks >> report()


lab_service_check()
