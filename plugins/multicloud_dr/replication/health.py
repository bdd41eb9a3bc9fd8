"""Which checks a topology asks for, running one (as the DAG's mapped task does) or all of them
(as `drctl replication check` does), and the report with the current achievable RPO."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.config import Topology
from multicloud_dr.exceptions import DrError
from multicloud_dr.replication.result import ERROR, CheckResult, HealthReport, summarize

log = logging.getLogger(__name__)

CheckSpec = dict[str, Any]   # JSON-able, so the DAG can map over it: {"name", "kind", ...arguments}


def plan_checks(topology: Topology) -> list[CheckSpec]:
    """One spec per check, from the topology alone (no I/O: the DAG calls this at parse time)."""
    limits = topology.replication.thresholds
    specs: list[CheckSpec] = []
    for db in topology.databases:
        if db.engine == "mysql" and db.replica_conn_id:
            specs.append({"name": f"mysql_replica/{db.name}", "kind": "mysql_replica", "primary": db.primary_conn_id,
                          "replica": db.replica_conn_id, "threshold": limits.mysql_replica_lag_seconds})
            if db.consistency_tables:
                consistency = topology.replication.consistency
                specs.append({"name": f"consistency/{db.name}", "kind": "consistency", "database": db.name,
                              "primary": db.primary_conn_id, "replica": db.replica_conn_id,
                              "tables": list(db.consistency_tables), "chunk_rows": consistency.chunk_rows,
                              "rechecks": consistency.rechecks})
        if db.engine == "postgres" and db.replica_conn_id:
            specs.append({"name": f"postgres_standby/{db.name}", "kind": "postgres_standby", "database": db.name,
                          "primary": db.primary_conn_id, "standby": db.replica_conn_id,
                          "threshold": limits.postgres_standby_lag_seconds})
    for task in topology.replication.dms:
        specs.append({"name": f"dms/{task.task_id}", "kind": "dms", "conn_id": task.conn_id, "task_id": task.task_id,
                      "instance_id": task.instance_id, "validation": task.validation,
                      "threshold": limits.dms_latency_seconds})
    for db in topology.mysql_databases():
        specs.append({"name": f"backup_freshness/{db.name}", "kind": "backup_freshness", "database": db.name,
                      "location": topology.backup.location, "storage_conn_id": topology.backup.storage_conn_id,
                      "threshold": limits.backup_age_seconds})
        if topology.backup.binlogs is not None:
            specs.append({"name": f"binlog_archive/{db.name}", "kind": "binlog_archive", "database": db.name,
                          "location": topology.backup.location, "storage_conn_id": topology.backup.storage_conn_id,
                          "threshold": limits.binlog_archive_age_seconds})
    return specs


def _run(spec: CheckSpec) -> CheckResult:
    from multicloud_dr.connections import get_endpoint

    kind, name = spec["kind"], spec["name"]
    if kind == "mysql_replica":
        from multicloud_dr.replication.mysql import check_mysql_replica

        return check_mysql_replica(name, get_endpoint(spec["primary"]), get_endpoint(spec["replica"]),
                                   spec["threshold"])
    if kind == "postgres_standby":
        from multicloud_dr.replication.postgres import check_postgres_standby

        return check_postgres_standby(name, get_endpoint(spec["primary"]), get_endpoint(spec["standby"]),
                                      spec["database"], spec["threshold"])
    if kind == "dms":
        from multicloud_dr.replication.dms import DmsClients, check_dms_task

        return check_dms_task(name, DmsClients.for_connection(spec["conn_id"]), spec["task_id"], spec["instance_id"],
                              spec["threshold"], validation=spec["validation"])
    if kind == "consistency":
        from multicloud_dr.replication.consistency import check_consistency

        return check_consistency(name, get_endpoint(spec["primary"]), get_endpoint(spec["replica"]), spec["database"],
                                 spec["tables"], spec["chunk_rows"], spec["rechecks"])
    if kind == "backup_freshness":
        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.backup.store import BackupStore
        from multicloud_dr.connections.wasb import blob_service_client
        from multicloud_dr.replication.freshness import check_backup_freshness

        root = StorageUrl.parse(spec["location"])
        store = BackupStore(blob_service_client(spec["storage_conn_id"]), root.bucket)
        return check_backup_freshness(name, store, root, spec["database"], spec["threshold"])
    if kind == "binlog_archive":
        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.backup.store import BackupStore
        from multicloud_dr.connections.wasb import blob_service_client
        from multicloud_dr.replication.binlog_archive import check_binlog_archive

        root = StorageUrl.parse(spec["location"])
        store = BackupStore(blob_service_client(spec["storage_conn_id"]), root.bucket)
        return check_binlog_archive(name, store, root, spec["database"], spec["threshold"])
    raise DrError(f"unknown replication check kind {kind!r}")


def run_check(spec: CheckSpec) -> CheckResult:
    """Run one check. A check that cannot run (unreachable server, missing connection, AWS error) is
    an `error` result naming why, never an exception: one broken check must not hide the others."""
    started = time.monotonic()
    try:
        result = _run(spec)
    except Exception as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not isinstance(err, DrError):
            message = f"{type(err).__name__}: {message}"
            log.debug("check %s failed", spec["name"], exc_info=True)
        result = CheckResult(spec["name"], ERROR, None, spec.get("threshold"), f"cannot run: {message}",
                             unit="chunks" if spec["kind"] == "consistency" else "seconds")
    return CheckResult(**{**result.to_dict(), "seconds": round(time.monotonic() - started, 3)})


def check_all(topology: Topology, specs: list[CheckSpec] | None = None) -> HealthReport:
    """Every check at once (they wait on different servers), then the RPO."""
    specs = plan_checks(topology) if specs is None else specs
    started = time.monotonic()
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        results = list(pool.map(run_check, specs))
    return summarize(results, topology.targets.rpo_seconds, measured_at, time.monotonic() - started)


def report_from_results(specs: list[CheckSpec], results: list[dict | None], rpo_target_seconds: float,
                        measured_at: str, seconds: float = 0.0) -> HealthReport:
    """The report from results gathered elsewhere (the DAG's mapped tasks); a check with no result (its
    task crashed or was killed before reporting) counts as one that could not run."""
    by_name = {r["name"]: CheckResult.from_dict(r) for r in results if r}
    checks = [by_name.get(spec["name"]) or CheckResult(spec["name"], ERROR, None, spec.get("threshold"),
                                                       "cannot run: the check's task ended without a result "
                                                       "(see its log)") for spec in specs]
    return summarize(checks, rpo_target_seconds, measured_at, seconds)
