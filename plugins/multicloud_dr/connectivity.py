"""Can each service the DR plan depends on be reached, and what is it? One probe per kind.

Used by the `lab_service_check` DAG and `drctl check-connections`; against real clouds it is the
first thing to run after defining the connections.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from multicloud_dr import connections as ids
from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.connections.aws import AwsConnection
from multicloud_dr.connections.gcp import storage_client
from multicloud_dr.connections.wasb import blob_service_client


@dataclass(frozen=True)
class ProbeResult:
    service: str
    conn_id: str
    ok: bool
    found: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_mysql(endpoint: Endpoint) -> str:
    import pymysql

    from multicloud_dr.connections.mysql import MySqlConnection, session_tls

    conn = MySqlConnection(endpoint).connect(database=endpoint.schema, connect_timeout=5)
    with contextlib.closing(conn), conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SELECT VERSION() AS version, @@read_only AS ro, @@log_bin AS log_bin, "
                    "@@gtid_current_pos AS gtid")
        info = cur.fetchone()
        cur.execute("SHOW SLAVE STATUS")
        replica = cur.fetchone()
        tls = session_tls(conn)
    role = "read-only " if info["ro"] else ""
    found = (f"{info['version']}, tls {tls}, {role}binlog {'on' if info['log_bin'] else 'off'}, "
             f"gtid {info['gtid'] or '-'}")
    if replica:
        lag = replica["Seconds_Behind_Master"]
        found += (f", replica io={replica['Slave_IO_Running']} sql={replica['Slave_SQL_Running']} "
                  f"lag={'NULL' if lag is None else f'{lag}s'}")
    return found


def probe_postgres(endpoint: Endpoint) -> str:
    from multicloud_dr.connections.postgres import PostgresConnection, session_tls

    conn = PostgresConnection(endpoint).connect(connect_timeout=5)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version'), pg_is_in_recovery()")
        version, standby = cur.fetchone()
        tls = session_tls(conn)
        if standby:
            cur.execute("SELECT status FROM pg_stat_wal_receiver")
            row = cur.fetchone()
            return f"PostgreSQL {version}, tls {tls}, standby, wal receiver {row[0] if row else 'not running'}"
        cur.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        (streaming,) = cur.fetchone()
    return f"PostgreSQL {version}, tls {tls}, primary, {streaming} streaming standby(s)"


def probe_azure_blob(ref: str | Endpoint) -> str:
    client = blob_service_client(ref)
    containers = [c.name for c in client.list_containers()]
    return f"account {client.account_name}, containers: {', '.join(containers) or '(none)'}"


def probe_aws(ref: str | Endpoint) -> str:
    aws = AwsConnection.from_ref(ref)
    zones = aws.client("route53").list_hosted_zones()["HostedZones"]
    dists = aws.client("cloudfront").list_distributions()["DistributionList"].get("Items", []) or []
    tasks = aws.client("dms").describe_replication_tasks()["ReplicationTasks"]
    buckets = aws.client("s3").list_buckets()["Buckets"]
    task_states = ", ".join(f"{t['ReplicationTaskIdentifier']}={t['Status']}" for t in tasks) or "none"
    return (f"route53 zones {len(zones)}, cloudfront distributions {len(dists)}, "
            f"s3 buckets {len(buckets)}, dms tasks: {task_states}")


def probe_gcs(ref: str | Endpoint) -> str:
    buckets = [b.name for b in storage_client(ref).list_buckets()]
    return f"buckets: {', '.join(buckets) or '(none)'}"


# service name -> (connection id, probe). A cloud probe takes the connection id itself, so that inside Airflow
# the provider's hook makes its client; a database probe takes the resolved Endpoint.
PROBES: dict[str, tuple[str, Callable[[Any], str]]] = {
    "mysql-primary": (ids.MYSQL_PRIMARY, probe_mysql),
    "mysql-replica": (ids.MYSQL_REPLICA, probe_mysql),
    "mysql-dr": (ids.MYSQL_DR, probe_mysql),
    "pg-primary": (ids.POSTGRES_PRIMARY, probe_postgres),
    "pg-standby": (ids.POSTGRES_STANDBY, probe_postgres),
    "azure-blob": (ids.AZURE_BLOB_DR, probe_azure_blob),
    "aws": (ids.AWS_PRIMARY, probe_aws),
    "gcs": (ids.GCS_DR, probe_gcs),
}


_BY_CONNECTION_ID = (probe_azure_blob, probe_aws, probe_gcs)


def probe(service: str, conn_id: str | None = None) -> ProbeResult:
    """Probe one service through its connection. Raises on a missing connection or an unreachable
    service (the caller decides whether that fails a task); returns what was found otherwise."""
    default_conn_id, fn = PROBES[service]
    conn_id = conn_id or default_conn_id
    t0 = time.monotonic()
    found = fn(conn_id) if fn in _BY_CONNECTION_ID else fn(get_endpoint(conn_id))
    return ProbeResult(service, conn_id, True, found, round(time.monotonic() - t0, 3))


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("SERVICE", "CONNECTION", "STATE", "SECONDS", "FOUND")
    body = [(r["service"], r["conn_id"], "ok" if r["ok"] else "FAILED", f"{r['seconds']:.2f}", r["found"])
            for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(4)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
                     for row in [header, *body])


def check_task_id(service: str) -> str:
    """The task that probes `service` in lab_service_check (the DAG, the demo and the tests agree)."""
    return f"check_{service.replace('-', '_')}"


def check_rows(found: dict[str, dict | None], missing: str = "check failed: see its task log") -> list[dict[str, Any]]:
    """One row per service in PROBES; a check that left no result becomes a failed row saying `missing`."""
    return [found.get(service) or {"service": service, "conn_id": conn_id, "ok": False, "seconds": 0.0,
                                   "found": missing}
            for service, (conn_id, _) in PROBES.items()]


def summarize_checks(found: dict[str, dict | None]) -> list[dict[str, Any]]:
    """Rows for every service; raises if any check failed, so that a report at the end of a run never
    turns a failed run green."""
    import logging

    from multicloud_dr.exceptions import DrError

    rows = check_rows(found)
    logging.getLogger(__name__).info("service check:\n%s", format_table(rows))
    failed = [r["service"] for r in rows if not r["ok"]]
    if failed:
        raise DrError(f"{len(failed)} of {len(rows)} services failed their check: {', '.join(failed)}")
    return rows
