"""Failback's data step: the old primary brought up to date from the DR database that took over.

DR is fenced first (failover/orchestrator.py), so nothing changes under the copy. Then, per MySQL database:
1. every table compared, DR against the primary, with the replication library's chunked checksums; equal:
   nothing is written (a retried failback, or a primary that never missed anything);
2. otherwise a fresh backup of the DR database (backup library, under `<backup location>/failback`), verified,
   and restored into the primary (restore library) with its binlog on, so the primary's own replicas receive
   the rows too. The restore connects with the connection's admin account, which MariaDB lets write while the
   fenced primary is read_only (SUPER); the app's accounts stay locked until the failback unfences it;
3. compared again: a table that still differs fails the step, naming it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.config import DatabaseConfig, Topology
from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)

RESTORE_JOBS = 2


class ResyncError(DrError):
    """The primary still differs from DR after the copy."""


def _tables(conn_id: str, database: str) -> list[str]:
    from multicloud_dr.backup import source
    from multicloud_dr.connections import get_endpoint

    with contextlib.closing(source.connect(get_endpoint(conn_id))) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE' ORDER BY table_name", (database,))
        return [row[0] for row in cur.fetchall()]


def compare_databases(source_conn_id: str, target_conn_id: str, database: str, *,
                      chunk_rows: int = 10_000) -> dict[str, Any]:
    """Every base table of `database`, source against target, chunk by chunk (no re-checks: neither side is
    replicating into the other, so a difference is not in flight). A table missing on the target differs."""
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.replication.consistency import check_consistency

    tables = _tables(source_conn_id, database)
    missing = sorted(set(tables) - set(_tables(target_conn_id, database)))
    result = check_consistency(f"failback/{database}", get_endpoint(source_conn_id), get_endpoint(target_conn_id),
                               database, tables, chunk_rows=chunk_rows, rechecks=0)
    differing = sorted({d["chunk"].split(" ")[0] for d in result.facts.get("differing", [])} | set(missing))
    return {"equal": result.status == "ok" and not missing, "tables": len(tables), "differing": differing,
            "rows": result.facts.get("rows"), "detail": result.detail}


def resync_primary(topology: Topology, db: DatabaseConfig, *, source_conn_id: str, target_conn_id: str | None = None,
                   location: str | None = None) -> dict[str, Any]:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.backup.verify import verify_backup
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.restore.mysql_restore import RestoreRequest, run_restore

    t0 = time.monotonic()
    target_conn_id = target_conn_id or db.primary_conn_id
    chunk_rows = topology.replication.consistency.chunk_rows
    out: dict[str, Any] = {"database": db.name, "source": source_conn_id, "target": target_conn_id}
    before = compare_databases(source_conn_id, target_conn_id, db.name, chunk_rows=chunk_rows)
    if before["equal"]:
        return {**out, "already": True, "manifest": None, "checked_tables": before["tables"], "differing": [],
                "rows": before["rows"], "seconds": round(time.monotonic() - t0, 3),
                "detail": f"{target_conn_id} equals {source_conn_id} already ({before['tables']} tables): nothing "
                          f"written"}
    log.info("%s differs from %s in %s: copying it back", target_conn_id, source_conn_id,
             ", ".join(before["differing"][:10]))
    root = StorageUrl.parse(location) if location else StorageUrl.parse(topology.backup.location).join("failback")
    service = blob_service_client(topology.backup.storage_conn_id)
    backup = run_backup(BackupRequest(get_endpoint(source_conn_id), db.name, root,
                                      datetime.now(UTC).replace(microsecond=0), codec=topology.backup.codec), service)
    store = BackupStore(service, root.bucket)
    verified = verify_backup(store, backup.manifest_url)
    if verified.status != "verified":
        raise ResyncError(f"the backup of {source_conn_id} for the failback did not verify ({verified.status}): "
                          f"nothing was restored into {target_conn_id}; run the failback again")
    record = store.read_manifest(backup.manifest_url)
    restored = run_restore(RestoreRequest(get_endpoint(target_conn_id), db.name, jobs=RESTORE_JOBS, replace=True,
                                          binlog=True), store, record)
    after = compare_databases(source_conn_id, target_conn_id, db.name, chunk_rows=chunk_rows)
    if not after["equal"]:
        raise ResyncError(f"after the copy, {target_conn_id} still differs from {source_conn_id} in "
                          f"{', '.join(after['differing'])}: {after['detail']}; the primary stays fenced")
    return {**out, "already": False, "manifest": str(backup.manifest_url), "rows": restored.rows,
            "tables": restored.tables, "checked_tables": after["tables"], "differing": [],
            "seconds": round(time.monotonic() - t0, 3),
            "detail": f"{db.name}: {restored.rows:,} rows copied from {source_conn_id} to {target_conn_id}, "
                      f"{after['tables']} tables equal by checksum"}
