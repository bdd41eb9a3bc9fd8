"""Seed data for the lab: the sample application database and the cloud resources the DAGs touch.

Every function is idempotent: it looks before it creates, so `drctl lab up` can run any number
of times. moto keeps its state in memory, so its resources are seeded again on every `up`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from multicloud_dr.connections import Endpoint
from multicloud_dr.lab.settings import (
    AZURE_CONTAINER,
    DB_ADMIN_USER,
    GCS_BUCKET,
    SAMPLE_DATABASE,
)

AWS_REGION = "us-east-1"
AWS_LAB_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's own
HOSTED_ZONE = "petclinic.example.com"
APP_RECORD = f"app.{HOSTED_ZONE}"
PRIMARY_ORIGIN = "primary-alb-1234567890.us-east-1.elb.amazonaws.com"
DR_ORIGIN = "petclinic-dr-appgw.westeurope.cloudapp.azure.com"
DISTRIBUTION_COMMENT = "multicloud-dr lab: petclinic web"
DMS_INSTANCE = "petclinic-dms"
DMS_TASK = "petclinic-cdc"
SECRET_NAME = "multicloud-dr/lab/mysql-primary"  # noqa: S105 (a secret's name, not its value)
S3_BUCKET = "petclinic-dr-backups"


@dataclass(frozen=True)
class AwsSeed:
    hosted_zone_id: str
    distribution_id: str
    dms_task_arn: str
    secret_arn: str


def seed_mysql_sample(admin_conn, megabytes: float, marker) -> dict[str, int] | None:
    """Create and fill the sample database on the primary, unless a complete one exists.

    `marker` (a file under .lab/) is written only after the last row is in, so a seed that was
    killed half-way is dropped and made again on the next `up` instead of being kept.
    """
    from multicloud_dr.lab import sample_data

    with admin_conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (SAMPLE_DATABASE,))
        exists = cur.fetchone() is not None
    if exists and marker.exists():
        return None
    counts = sample_data.create_database(admin_conn, SAMPLE_DATABASE, megabytes)
    marker.write_text(json.dumps(counts))
    return counts


def seed_azure(connection_string: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    from multicloud_dr.connections.wasb import blob_service_client

    client = blob_service_client(Endpoint("wasb", extra={"connection_string": connection_string}))
    with contextlib.suppress(ResourceExistsError):
        client.create_container(AZURE_CONTAINER)


def seed_gcs(endpoint: str) -> None:
    from google.api_core.exceptions import Conflict

    from multicloud_dr.connections.gcp import storage_client

    client = storage_client(Endpoint("google_cloud_platform", extra={"project": "lab", "endpoint_url": endpoint}))
    with contextlib.suppress(Conflict):
        client.create_bucket(GCS_BUCKET)


def aws_client(service: str, endpoint: str):
    """moto through the connection layer, as the lab's `aws` connection reaches it."""
    from multicloud_dr.connections.aws import aws_client as client

    return client(Endpoint("aws", login=AWS_LAB_CREDENTIALS["aws_access_key_id"],
                           password=AWS_LAB_CREDENTIALS["aws_secret_access_key"],
                           extra={"endpoint_url": endpoint, "region_name": AWS_REGION}), service)


def seed_aws(endpoint: str, mysql_primary_port: int, mysql_dr_port: int, secret_payload: dict) -> AwsSeed:
    s3 = aws_client("s3", endpoint)
    if S3_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=S3_BUCKET)
    _seed_cloudwatch(aws_client("cloudwatch", endpoint))
    return AwsSeed(
        hosted_zone_id=_seed_route53(aws_client("route53", endpoint)),
        distribution_id=_seed_cloudfront(aws_client("cloudfront", endpoint)),
        dms_task_arn=_seed_dms(aws_client("dms", endpoint), mysql_primary_port, mysql_dr_port),
        secret_arn=_seed_secret(aws_client("secretsmanager", endpoint), secret_payload),
    )


def _seed_route53(route53) -> str:
    zones = route53.list_hosted_zones_by_name(DNSName=HOSTED_ZONE).get("HostedZones", [])
    zone = next((z for z in zones if z["Name"].rstrip(".") == HOSTED_ZONE), None)
    if zone is None:
        zone = route53.create_hosted_zone(Name=HOSTED_ZONE, CallerReference="multicloud-dr-lab")["HostedZone"]
    zone_id = zone["Id"].split("/")[-1]
    existing = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=APP_RECORD,
                                                 StartRecordType="CNAME", MaxItems="1")
    if not any(r["Name"].rstrip(".") == APP_RECORD for r in existing["ResourceRecordSets"]):
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "CREATE",
            "ResourceRecordSet": {"Name": APP_RECORD, "Type": "CNAME", "TTL": 60,
                                  "ResourceRecords": [{"Value": PRIMARY_ORIGIN}]},
        }]})
    return zone_id


def _seed_cloudfront(cloudfront) -> str:
    items = cloudfront.list_distributions().get("DistributionList", {}).get("Items", []) or []
    found = next((d for d in items if d.get("Comment") == DISTRIBUTION_COMMENT), None)
    if found:
        return found["Id"]

    def origin(origin_id: str, domain: str) -> dict:
        return {"Id": origin_id, "DomainName": domain, "CustomOriginConfig": {
            "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}

    config = {
        "CallerReference": "multicloud-dr-lab",
        "Comment": DISTRIBUTION_COMMENT,
        "Enabled": True,
        "Origins": {"Quantity": 2, "Items": [origin("primary", PRIMARY_ORIGIN), origin("dr", DR_ORIGIN)]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "primary",
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": True, "Cookies": {"Forward": "all"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def _seed_dms(dms, primary_port: int, dr_port: int) -> str:
    tasks = dms.describe_replication_tasks(
        Filters=[{"Name": "replication-task-id", "Values": [DMS_TASK]}]).get("ReplicationTasks", [])
    if tasks:
        return tasks[0]["ReplicationTaskArn"]
    instance = dms.create_replication_instance(
        ReplicationInstanceIdentifier=DMS_INSTANCE, ReplicationInstanceClass="dms.t3.medium",
        AllocatedStorage=50)["ReplicationInstance"]["ReplicationInstanceArn"]
    endpoints = {}
    for kind, port in (("source", primary_port), ("target", dr_port)):
        endpoints[kind] = dms.create_endpoint(
            EndpointIdentifier=f"petclinic-{kind}", EndpointType=kind, EngineName="mysql",
            ServerName="127.0.0.1", Port=port, Username=DB_ADMIN_USER, DatabaseName=SAMPLE_DATABASE,
        )["Endpoint"]["EndpointArn"]
    mappings = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "petclinic",
                           "object-locator": {"schema-name": SAMPLE_DATABASE, "table-name": "%"},
                           "rule-action": "include"}]}
    # Created through the client, not DmsHook.create_replication_task: moto never leaves "creating"
    # for the hook's waiter.
    task_arn = dms.create_replication_task(
        ReplicationTaskIdentifier=DMS_TASK, SourceEndpointArn=endpoints["source"],
        TargetEndpointArn=endpoints["target"], ReplicationInstanceArn=instance,
        MigrationType="full-load-and-cdc", TableMappings=json.dumps(mappings),
    )["ReplicationTask"]["ReplicationTaskArn"]
    dms.start_replication_task(ReplicationTaskArn=task_arn, StartReplicationTaskType="start-replication")
    return task_arn


def _seed_secret(secretsmanager, payload: dict) -> str:
    body = json.dumps(payload)
    try:
        return secretsmanager.create_secret(Name=SECRET_NAME, SecretString=body)["ARN"]
    except secretsmanager.exceptions.ResourceExistsException:
        return secretsmanager.put_secret_value(SecretId=SECRET_NAME, SecretString=body)["ARN"]


# A DMS task publishes its CDC latency every minute for as long as it runs. moto holds only what it
# is given, so the lab gives it a point per minute from a few minutes ago to a week ahead: a check
# run at any time while the lab is up finds "recent" points, as it would against AWS.
CDC_LATENCY_SECONDS = {"CDCLatencySource": 1.0, "CDCLatencyTarget": 2.0}
CDC_PUBLISH_AHEAD = timedelta(days=7)


def _seed_cloudwatch(cloudwatch) -> None:
    """CDC latency points for the DMS task, as AWS publishes them (seconds, one per minute)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    minutes = int(CDC_PUBLISH_AHEAD.total_seconds() // 60)
    data = [
        {"MetricName": name, "Timestamp": start + timedelta(minutes=m), "Value": value, "Unit": "Seconds",
         "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": DMS_INSTANCE},
                        {"Name": "ReplicationTaskIdentifier", "Value": DMS_TASK}]}
        for m in range(minutes) for name, value in CDC_LATENCY_SECONDS.items()
    ]
    for i in range(0, len(data), 1000):   # PutMetricData takes at most 1,000 points per call
        cloudwatch.put_metric_data(Namespace="AWS/DMS", MetricData=data[i:i + 1000])
