"""DMS table validation through botocore's Stubber: moto 5.2.5 does not implement
DescribeTableStatistics, so the responses here are shaped after the DMS API reference
(DescribeTableStatistics -> TableStatistics[], with ValidationState / ValidationFailedRecords),
and DescribeReplicationTasks / GetMetricStatistics after theirs."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from multicloud_dr.replication.dms import DmsClients, check_dms_task

ARN = "arn:aws:dms:us-east-1:123456789012:task:ABCDEFGHIJKLMNOP"
DATE = "Sun, 22 Nov 2026 05:00:00 GMT"


def _table(name: str, state: str, failed: int = 0) -> dict:
    return {"SchemaName": "petclinic", "TableName": name, "Inserts": 10, "Deletes": 0, "Updates": 2, "Ddls": 0,
            "FullLoadRows": 100, "TableState": "Table completed", "ValidationPendingRecords": 0,
            "ValidationFailedRecords": failed, "ValidationSuspendedRecords": 0, "ValidationState": state}


@pytest.fixture
def clients():
    kwargs = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    dms, cloudwatch = boto3.client("dms", **kwargs), boto3.client("cloudwatch", **kwargs)
    with Stubber(dms) as dms_stub, Stubber(cloudwatch) as cw_stub:
        yield DmsClients(dms, cloudwatch), dms_stub, cw_stub


def _running_task(dms_stub, cw_stub, source: float = 1.0, target: float = 3.0) -> None:
    dms_stub.add_response("describe_replication_tasks", {
        "ReplicationTasks": [{"ReplicationTaskIdentifier": "petclinic-cdc", "ReplicationTaskArn": ARN,
                              "Status": "running", "MigrationType": "full-load-and-cdc",
                              "ReplicationTaskStats": {"FullLoadProgressPercent": 100, "TablesErrored": 0}}],
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"date": DATE}}}, {
        "Filters": [{"Name": "replication-task-id", "Values": ["petclinic-cdc"]}], "WithoutSettings": True})
    for value in (source, target):
        cw_stub.add_response("get_metric_statistics", {
            "Label": "CDCLatency", "Datapoints": [
                {"Timestamp": datetime(2026, 11, 22, 4, 58, tzinfo=UTC), "Maximum": 1.0, "Unit": "Seconds"},
                {"Timestamp": datetime(2026, 11, 22, 4, 59, tzinfo=UTC), "Maximum": value, "Unit": "Seconds"}]},
            {"Namespace": "AWS/DMS", "MetricName": ANY, "StartTime": ANY, "EndTime": ANY, "Period": 60,
             "Statistics": ["Maximum"], "Dimensions": ANY})


def test_mismatched_records_are_a_breach_naming_the_table(clients):
    dms_clients, dms_stub, cw_stub = clients
    _running_task(dms_stub, cw_stub)
    dms_stub.add_response("describe_table_statistics", {
        "ReplicationTaskArn": ARN,
        "TableStatistics": [_table("owners", "Validated"), _table("visits", "Mismatched records", failed=7)]},
        {"ReplicationTaskArn": ARN})
    result = check_dms_task("dms/petclinic-cdc", dms_clients, "petclinic-cdc", "petclinic-dms", 60)
    assert result.status == "breach"
    assert "petclinic.visits (Mismatched records, 7 failed)" in result.detail
    assert "owners" not in result.detail
    dms_stub.assert_no_pending_responses()


def test_validated_tables_and_low_latency_pass_and_the_latest_point_counts(clients):
    dms_clients, dms_stub, cw_stub = clients
    _running_task(dms_stub, cw_stub, source=2.0, target=5.0)
    dms_stub.add_response("describe_table_statistics", {
        "ReplicationTaskArn": ARN, "TableStatistics": [_table("owners", "Validated"), _table("pets", "Validated")]},
        {"ReplicationTaskArn": ARN})
    result = check_dms_task("dms/petclinic-cdc", dms_clients, "petclinic-cdc", "petclinic-dms", 60)
    assert result.status == "ok", result.detail
    assert result.value == 5.0   # the newest point of the target side, not the older 1.0


def test_failed_task_names_its_failure_message(clients):
    dms_clients, dms_stub, _ = clients
    dms_stub.add_response("describe_replication_tasks", {
        "ReplicationTasks": [{"ReplicationTaskIdentifier": "petclinic-cdc", "ReplicationTaskArn": ARN,
                              "Status": "failed", "StopReason": "Stop Reason FATAL_ERROR",
                              "LastFailureMessage": "Last Error Connection to source endpoint lost."}],
        "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"date": DATE}}})
    result = check_dms_task("dms/petclinic-cdc", dms_clients, "petclinic-cdc", "petclinic-dms", 60)
    assert result.status == "breach"
    assert "'failed'" in result.detail and "Connection to source endpoint lost" in result.detail
