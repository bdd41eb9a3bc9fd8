"""Seed data for the lab: the sample application database and the cloud resources the DAGs touch.

Every function is idempotent: it looks before it creates, so `drctl lab up` can run any number
of times. moto keeps its state in memory, so its resources are seeded again on every `up`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import LabError
from multicloud_dr.lab.settings import (
    APP_HOSTS,
    APP_SITES,
    AZURE_CONTAINER,
    DB_ADMIN_USER,
    GCS_BUCKET,
    SAMPLE_DATABASE,
)

if TYPE_CHECKING:
    from multicloud_dr.config import CloudflareLayer

AWS_REGION = "us-east-1"
AWS_LAB_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto's own
HOSTED_ZONE = "petclinic.example.com"
APP_RECORD = f"app.{HOSTED_ZONE}"
DISTRIBUTION_COMMENT = "multicloud-dr lab: petclinic web"
FRONTEND_ALIAS = f"www.{HOSTED_ZONE}"          # the topology's cloudfront layer finds the distribution by it
ORIGIN_IDS = {"primary": "primary", "dr": "dr"}  # origin ids in the distribution (the topology's `origins`)
DMS_INSTANCE = "petclinic-dms"
DMS_TASK = "petclinic-cdc"
SECRET_NAME = "multicloud-dr/lab/mysql-primary"  # noqa: S105 (a secret's name, not its value)
S3_BUCKET = "petclinic-dr-backups"
# The static frontend (include/topology.yaml `frontend`): its source at the primary and its DR copies' places.
FRONTEND_BUCKET = "petclinic-frontend"
FRONTEND_PREFIX = "site"
FRONTEND_CONTAINER = "frontend"
FRONTEND_GCS_BUCKET = "petclinic-frontend-dr"
FRONTEND_FILES: dict[str, tuple[str, str]] = {   # key under the prefix -> (content type, body)
    "index.html": ("text/html; charset=utf-8",
                   '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Pet clinic</title>\n'
                   '<link rel="stylesheet" href="assets/style.css"></head>\n<body><h1>Pet clinic</h1>\n'
                   '<ul id="owners"></ul>\n<script src="assets/app.js"></script></body></html>\n'),
    "assets/app.js": ("application/javascript",
                      'fetch("/owners?format=json").then((r) => r.json()).then((page) => {\n'
                      '  const list = document.getElementById("owners");\n'
                      '  for (const o of page.owners) {\n'
                      '    const item = document.createElement("li");\n'
                      '    item.textContent = `${o.first_name} ${o.last_name} (${o.city}): ${o.pets} pets`;\n'
                      '    list.appendChild(item);\n  }\n});\n'),
    "assets/style.css": ("text/css", "body { font-family: sans-serif; margin: 2rem; }\nh1 { color: #2a6f3f; }\n"),
}


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


def seed_mysql_dr_sample(admin_conn, megabytes: float, marker: Path) -> dict[str, int] | None:
    """Give the DR server a `petclinic` as the last restore would have left it, unless it has one.

    The app at the DR site needs the sample schema to be healthy. A `petclinic` the lab did not make (a
    restore, a failover) is never touched: only one whose seed the marker says began and did not finish
    (killed half-way) is made again.
    """
    from multicloud_dr.lab import sample_data

    with admin_conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (SAMPLE_DATABASE,))
        exists = cur.fetchone() is not None
    seeding = marker.exists() and json.loads(marker.read_text() or "{}").get("complete") is False
    if exists and not seeding:
        return None
    marker.write_text(json.dumps({"complete": False}))
    counts = sample_data.create_database(admin_conn, SAMPLE_DATABASE, megabytes)
    marker.write_text(json.dumps({"complete": True, "rows": counts}))
    return counts


def seed_azure(connection_string: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    from multicloud_dr.connections.wasb import blob_service_client

    client = blob_service_client(Endpoint("wasb", extra={"connection_string": connection_string}))
    for container in (AZURE_CONTAINER, FRONTEND_CONTAINER):
        with contextlib.suppress(ResourceExistsError):
            client.create_container(container)


def seed_gcs(endpoint: str) -> None:
    from google.api_core.exceptions import Conflict

    from multicloud_dr.connections.gcp import storage_client

    client = storage_client(Endpoint("google_cloud_platform", extra={"project": "lab", "endpoint_url": endpoint}))
    for bucket in (GCS_BUCKET, FRONTEND_GCS_BUCKET):
        with contextlib.suppress(Conflict):
            client.create_bucket(bucket)


def aws_client(service: str, endpoint: str):
    """moto through the connection layer, as the lab's `aws` connection reaches it."""
    from multicloud_dr.connections.aws import aws_client as client

    return client(Endpoint("aws", login=AWS_LAB_CREDENTIALS["aws_access_key_id"],
                           password=AWS_LAB_CREDENTIALS["aws_secret_access_key"],
                           extra={"endpoint_url": endpoint, "region_name": AWS_REGION}), service)


def seed_aws(endpoint: str, mysql_primary_port: int, mysql_dr_port: int, secret_payload: dict,
             app_ports: dict[str, int]) -> AwsSeed:
    """`app_ports`: site -> the lab port of that site's app (CloudFront's origins reach it there)."""
    s3 = aws_client("s3", endpoint)
    buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in (S3_BUCKET, FRONTEND_BUCKET):
        if bucket not in buckets:
            s3.create_bucket(Bucket=bucket)
    _seed_frontend(s3)
    _seed_cloudwatch(aws_client("cloudwatch", endpoint))
    return AwsSeed(
        hosted_zone_id=_seed_route53(aws_client("route53", endpoint)),
        distribution_id=_seed_cloudfront(aws_client("cloudfront", endpoint), app_ports),
        dms_task_arn=_seed_dms(aws_client("dms", endpoint), mysql_primary_port, mysql_dr_port),
        secret_arn=_seed_secret(aws_client("secretsmanager", endpoint), secret_payload),
    )


def _seed_frontend(s3) -> None:
    """The static site at the primary; a file already there is left as it is (someone may have changed it)."""
    listed = s3.list_objects_v2(Bucket=FRONTEND_BUCKET, Prefix=f"{FRONTEND_PREFIX}/")
    present = {item["Key"] for item in listed.get("Contents", [])}
    for name, (content_type, body) in FRONTEND_FILES.items():
        key = f"{FRONTEND_PREFIX}/{name}"
        if key not in present:
            s3.put_object(Bucket=FRONTEND_BUCKET, Key=key, Body=body.encode(), ContentType=content_type,
                          CacheControl="max-age=300")


def _seed_route53(route53) -> str:
    """The app's record names the primary app service. A value that names neither site (an older lab's) is set
    to the primary's; one naming a site is kept: traffic may have been switched on purpose."""
    zones = route53.list_hosted_zones_by_name(DNSName=HOSTED_ZONE).get("HostedZones", [])
    zone = next((z for z in zones if z["Name"].rstrip(".") == HOSTED_ZONE), None)
    if zone is None:
        zone = route53.create_hosted_zone(Name=HOSTED_ZONE, CallerReference="multicloud-dr-lab")["HostedZone"]
    zone_id = zone["Id"].split("/")[-1]
    existing = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=APP_RECORD,
                                                 StartRecordType="CNAME", MaxItems="1")
    record = next((r for r in existing["ResourceRecordSets"]
                   if r["Name"].rstrip(".") == APP_RECORD and r["Type"] == "CNAME"), None)
    values = {v["Value"].rstrip(".") for v in (record or {}).get("ResourceRecords", [])}
    if record is None or not values & set(APP_HOSTS.values()):
        route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT",
            "ResourceRecordSet": {"Name": APP_RECORD, "Type": "CNAME", "TTL": 60,
                                  "ResourceRecords": [{"Value": APP_HOSTS["primary"]}]},
        }]})
    return zone_id


def _origins(app_ports: dict[str, int]) -> dict:
    """One custom origin per site: the site's app service, over plain HTTP on its lab port."""
    items = [{"Id": ORIGIN_IDS[site], "DomainName": APP_HOSTS[site], "OriginPath": "",
              "CustomHeaders": {"Quantity": 0},
              "CustomOriginConfig": {"HTTPPort": app_ports[site], "HTTPSPort": 443,
                                     "OriginProtocolPolicy": "http-only"}}
             for site in APP_SITES]
    return {"Quantity": len(items), "Items": items}


def _origin_shape(origins: dict) -> list[tuple]:
    return sorted((o["Id"], o["DomainName"], o.get("CustomOriginConfig", {}).get("HTTPPort"),
                   o.get("CustomOriginConfig", {}).get("OriginProtocolPolicy")) for o in origins.get("Items") or [])


def _seed_cloudfront(cloudfront, app_ports: dict[str, int]) -> str:
    """The web distribution: an origin per site's app, the primary's serving, found by its alias. An existing
    one (found by its comment) whose origins or alias differ from these (an older lab's, other ports) is
    updated, keeping the origin it serves from: traffic may have been switched on purpose."""
    items = cloudfront.list_distributions().get("DistributionList", {}).get("Items", []) or []
    found = next((d for d in items if d.get("Comment") == DISTRIBUTION_COMMENT), None)
    origins = _origins(app_ports)
    aliases = {"Quantity": 1, "Items": [FRONTEND_ALIAS]}
    if found:
        current = cloudfront.get_distribution_config(Id=found["Id"])
        config = current["DistributionConfig"]
        if (_origin_shape(config.get("Origins", {})) != _origin_shape(origins)
                or (config.get("Aliases") or {}).get("Items") != aliases["Items"]):
            config["Origins"], config["Aliases"] = origins, aliases
            if config["DefaultCacheBehavior"].get("TargetOriginId") not in ORIGIN_IDS.values():
                config["DefaultCacheBehavior"]["TargetOriginId"] = ORIGIN_IDS["primary"]
            cloudfront.update_distribution(Id=found["Id"], IfMatch=current["ETag"], DistributionConfig=config)
        return found["Id"]

    config = {
        "CallerReference": "multicloud-dr-lab",
        "Comment": DISTRIBUTION_COMMENT,
        "Enabled": True,
        "Aliases": aliases,
        "Origins": origins,
        "DefaultCacheBehavior": {
            "TargetOriginId": ORIGIN_IDS["primary"],
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


# -- Cloudflare (the lab's fake API) ----------------------------------------------------------------------------
def cloudflare_layer() -> CloudflareLayer:
    """The shipped topology's Cloudflare layer: the ids the fake API is seeded with are the ones the DAGs look for."""
    from multicloud_dr.config import DEFAULT_TOPOLOGY, CloudflareLayer, load_topology

    layers = [layer for layer in load_topology(DEFAULT_TOPOLOGY).traffic.layers if isinstance(layer, CloudflareLayer)]
    if not layers:
        raise LabError(f"{DEFAULT_TOPOLOGY} has no cloudflare traffic layer: the lab's Cloudflare API is seeded from "
                       f"it (account_id, zone_id, load_balancer, pools); add it back")
    return layers[0]


def _cloudflare_id(*parts: str) -> str:
    """A stable 32-hex id, shaped like Cloudflare's, for objects the topology does not name (monitors, the LB)."""
    return hashlib.md5("/".join(parts).encode(), usedforsecurity=False).hexdigest()


def cloudflare_seed(app_ports: dict[str, int]) -> dict:
    """What the fake Cloudflare API starts with: a pool per site whose one origin is that site's app (its monitor
    probes GET /health on the app's port and wants 200), and the load balancer sending users to the primary."""
    layer = cloudflare_layer()
    monitors, pools = [], []
    for site in APP_SITES:
        monitor_id = _cloudflare_id(layer.account_id, "monitor", site)
        monitors.append({"id": monitor_id, "type": "http", "method": "GET", "path": "/health",
                         "port": app_ports[site], "expected_codes": "200", "timeout": 2, "interval": 60,
                         "retries": 0, "follow_redirects": False, "allow_insecure": False, "header": {},
                         "description": f"petclinic {site}: GET /health"})
        pools.append({"id": layer.pools[site], "name": f"petclinic-{site}", "enabled": True, "minimum_origins": 1,
                      "monitor": monitor_id, "description": f"the pet clinic at the {site} site",
                      "origins": [{"name": f"app-{site}", "address": "127.0.0.1", "enabled": True, "weight": 1}]})
    primary = layer.pools["primary"]
    balancer = {"id": _cloudflare_id(layer.zone_id, "load_balancer", layer.load_balancer),
                "name": layer.load_balancer, "description": "the pet clinic web application",
                "default_pools": [primary], "fallback_pool": primary, "proxied": True, "enabled": True,
                "steering_policy": "off", "ttl": 30}
    return {"accounts": {layer.account_id: {"monitors": monitors, "pools": pools}},
            "zones": {layer.zone_id: {"load_balancers": [balancer]}}}
