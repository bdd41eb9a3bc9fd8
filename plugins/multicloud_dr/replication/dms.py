"""AWS DMS replication task health: the task's status, its CDC latency on the source and target
side (CloudWatch `AWS/DMS` CDCLatencySource / CDCLatencyTarget), and, when the task validates, the
per-table validation state (mismatched records are a breach).

The clients come from the connection layer (`connections.aws`): inside Airflow from the Amazon provider's
`AwsBaseHook`, so connections, role assumption and endpoint overrides behave as in every other AWS task;
in `drctl` from the same connection's extras without importing Airflow (seconds of import, and Airflow may
be what is down).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from multicloud_dr.exceptions import InputError
from multicloud_dr.replication.result import BREACH, ERROR, CheckResult, judge

METRIC_WINDOW = timedelta(minutes=10)   # DMS publishes every minute; older points say nothing about now
# DescribeTableStatistics' ValidationState values that mean the data differ or cannot be checked.
BAD_VALIDATION_STATES = {"Mismatched records", "Table error", "Error", "Failed validation"}


class DmsTaskNotFoundError(InputError):
    """No DMS task has the configured identifier."""


@dataclass
class DmsClients:
    dms: Any          # from connections.aws (inside Airflow: the Amazon provider's hook)
    cloudwatch: Any

    @classmethod
    def for_connection(cls, ref: str) -> DmsClients:
        from multicloud_dr.connections.aws import AwsConnection

        conn = AwsConnection.from_ref(ref)
        return cls(conn.client("dms"), conn.client("cloudwatch"))

    def find_task(self, task_id: str) -> tuple[dict, datetime]:
        """The task, and the AWS server's time of the answer (its Date header; F25)."""
        filters = [{"Name": "replication-task-id", "Values": [task_id]}]
        response = self.dms.describe_replication_tasks(Filters=filters, WithoutSettings=True)
        tasks = response.get("ReplicationTasks", [])
        if not tasks:
            raise DmsTaskNotFoundError(f"no DMS replication task {task_id!r} in {self.dms.meta.region_name}: check "
                                       f"replication.dms[].task_id in the topology and the connection's region")
        return tasks[0], email.utils.parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])


def latest_metric(cloudwatch, metric: str, instance_id: str, task_id: str, now: datetime) -> float | None:
    response = cloudwatch.get_metric_statistics(
        # The Date header has whole seconds: end a minute later so the current minute's point is not cut off.
        Namespace="AWS/DMS", MetricName=metric, StartTime=now - METRIC_WINDOW, EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
        Dimensions=[{"Name": "ReplicationInstanceIdentifier", "Value": instance_id},
                    {"Name": "ReplicationTaskIdentifier", "Value": task_id}])
    points = sorted(response.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def table_validation(dms, task_arn: str) -> list[dict]:
    """Tables whose validation found differences (or failed), with their counts."""
    bad = []
    for page in dms.get_paginator("describe_table_statistics").paginate(ReplicationTaskArn=task_arn):
        for table in page.get("TableStatistics", []):
            failed = table.get("ValidationFailedRecords", 0)
            if table.get("ValidationState") in BAD_VALIDATION_STATES or failed:
                bad.append({"table": f"{table.get('SchemaName')}.{table.get('TableName')}",
                            "state": table.get("ValidationState"), "failed_records": failed,
                            "detail": table.get("ValidationStateDetails", "")})
    return bad


def check_dms_task(name: str, clients: DmsClients, task_id: str, instance_id: str, threshold: float,
                   validation: bool = True) -> CheckResult:
    task, now = clients.find_task(task_id)
    status = task.get("Status")
    stats = task.get("ReplicationTaskStats", {})
    facts: dict[str, Any] = {"status": status, "arn": task.get("ReplicationTaskArn"),
                             "stop_reason": task.get("StopReason"), "tables_errored": stats.get("TablesErrored")}
    if status != "running":
        reason = task.get("LastFailureMessage") or task.get("StopReason") or "no reason given"
        return CheckResult(name, BREACH, None, threshold,
                           f"DMS task {task_id} is {status!r}, not running ({reason}): changes are not replicated",
                           facts=facts)
    source = latest_metric(clients.cloudwatch, "CDCLatencySource", instance_id, task_id, now)
    target = latest_metric(clients.cloudwatch, "CDCLatencyTarget", instance_id, task_id, now)
    facts |= {"cdc_latency_source": source, "cdc_latency_target": target}
    if source is None and target is None:
        return CheckResult(name, ERROR, None, threshold,
                           f"DMS task {task_id} is running but published no CDCLatencySource/Target in the last "
                           f"{METRIC_WINDOW.seconds // 60} min (instance {instance_id}): check the task's CloudWatch "
                           f"metrics", facts=facts)
    # CDCLatencyTarget runs from the source commit to the target apply, so it includes the source side.
    value = max(v for v in (source, target) if v is not None)
    side = ("source side (reading the source's change log)" if (source or 0) >= (target or 0) - (source or 0)
            else "target side (applying changes to the target)")
    detail = (f"DMS task {task_id} running; CDC latency source {_s(source)}, target {_s(target)}; most of it on "
              f"the {side}")
    if validation:
        bad = table_validation(clients.dms, task["ReplicationTaskArn"])
        facts["validation_failures"] = bad
        if bad:
            tables = ", ".join(f"{b['table']} ({b['state']}, {b['failed_records']} failed)" for b in bad)
            return CheckResult(name, BREACH, value, threshold, f"{detail}; validation found differences: {tables}",
                               facts=facts)
    return judge(name, value, threshold, detail, facts=facts)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"
