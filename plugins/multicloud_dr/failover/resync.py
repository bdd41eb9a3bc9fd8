"""Failback's data resync: the old primary's MySQL/MariaDB database brought up to date from the DR database that
holds the live data since the failover (the promoted replica, or the DR server a backup was restored into).

`resync_primary`, per database:

1. Every base table compared, source (DR) against target (the old primary), with the replication library's chunked
   checksums (`compare_databases`). All equal: nothing is written (`already`): a retried failback, or a primary
   that missed nothing.
2. Otherwise a fresh backup of the source database (backup library, under `<backup location>/failback` unless a
   location is given), verified, and restored into the target with `replace` and its binlog on, so that the
   primary's own replicas receive the rows too.
3. Compared again, every table of the database (not only the topology's consistency_tables): a table that differs
   fails the resync with a DrError naming it. The target stays as it is (fenced): the failback must not go on.

The comparison is only meaningful while the source takes no writes: the failback fences DR before its data step.

The target is fenced (read_only ON, the app's accounts locked). The restore connects with the connection's admin
login. MariaDB lets an account with READ ONLY ADMIN write while read_only is ON (ALL PRIVILEGES includes it; since
10.11 SUPER alone does not): checked on the lab, whose admin has ALL PRIVILEGES, so nothing is lifted there. MySQL's
super_read_only, which fencing also sets where the server has it, stops even the admin: it is lifted for the copy
(backup and restore) and set again afterwards, whatever happened, while read_only stays ON (the app's accounts stay
locked), as fencing itself lifts it around its account locks. An admin that may not write under read_only (a managed
server's) is refused before anything is written, saying what to grant.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pymysql

from multicloud_dr.backup import source as src
from multicloud_dr.config import DatabaseConfig, Topology
from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.exceptions import DrError, InputError
from multicloud_dr.replication.consistency import checksum, chunks_of, table_shape
from multicloud_dr.sql import quote_identifier

log = logging.getLogger(__name__)

RESTORE_JOBS = 2
FAILBACK_PREFIX = "failback"
READ_ONLY_REFUSED = 1290      # "The MariaDB server is running with the --read-only option ..."


class ResyncError(DrError):
    """The old primary still differs from DR after the copy, or the copy could not be verified: it stays fenced."""


# -- comparing two servers ---------------------------------------------------------------------------------------


def compare_databases(source_conn_id: str, target_conn_id: str, database: str, *,
                      chunk_rows: int = 10_000) -> dict[str, Any]:
    """Every base table of `database` on either server, source against target, chunk by chunk: the chunks and
    checksums of replication/consistency.py (row count and BIT_XOR of per-row CRC-32s per primary-key range, the
    bounds read on the source). No re-checks after a GTID wait, as check_consistency does for a replica: neither
    server replicates into the other, so a difference is never in flight. A table on one side only, or with other
    columns, differs. Returns {"equal", "tables": {name: {"equal", "rows_source", "rows_target"[, "detail"]}}}."""
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    with contextlib.closing(src.connect(get_endpoint(source_conn_id))) as sconn, \
            contextlib.closing(src.connect(get_endpoint(target_conn_id))) as tconn, \
            sconn.cursor() as scur, tconn.cursor() as tcur:
        if not _database_exists(scur, database):
            raise InputError(f"database {database!r} does not exist on {source_conn_id}: give the connection that "
                             f"holds the live data now (the promoted replica or the DR server)")
        on_source, on_target = _base_tables(scur, database), _base_tables(tcur, database)
        tables = {name: _compare_table(scur, tcur, database, name, name in on_source, name in on_target, chunk_rows)
                  for name in sorted(set(on_source) | set(on_target))}
    return {"equal": all(t["equal"] for t in tables.values()), "tables": tables}


def _database_exists(cur, database: str) -> bool:
    cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,))
    return cur.fetchone() is not None


def _base_tables(cur, database: str) -> list[str]:
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE' ORDER BY table_name", (database,))
    return [row[0] for row in cur.fetchall()]


def _count(cur, database: str, table: str) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {quote_identifier(database)}.{quote_identifier(table)}")
    return int(cur.fetchone()[0])


def _compare_table(scur, tcur, database: str, name: str, on_source: bool, on_target: bool,
                   chunk_rows: int) -> dict[str, Any]:
    if not (on_source and on_target):
        rows = _count(scur if on_source else tcur, database, name)
        return {"equal": False, "rows_source": rows if on_source else 0, "rows_target": 0 if on_source else rows,
                "detail": f"only on the {'source' if on_source else 'target'}"}
    shape = table_shape(scur, database, name)
    theirs = table_shape(tcur, database, name)
    if shape.columns != theirs.columns:
        return {"equal": False, "rows_source": _count(scur, database, name),
                "rows_target": _count(tcur, database, name),
                "detail": f"columns differ: {', '.join(shape.columns)} on the source, {', '.join(theirs.columns)} on "
                          f"the target"}
    rows_source = rows_target = 0
    differing = []
    # The first chunk is open below and the last open above: the target's rows outside the source's range count.
    for chunk in chunks_of(scur, database, shape, chunk_rows):
        ours, other = checksum(scur, database, shape, chunk), checksum(tcur, database, shape, chunk)
        rows_source += ours[0]
        rows_target += other[0]
        if ours != other:
            differing.append(chunk.describe())
    entry: dict[str, Any] = {"equal": not differing, "rows_source": rows_source, "rows_target": rows_target}
    if differing:
        more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
        entry["detail"] = f"{len(differing)} chunk(s) differ: {differing[0]}{more}"
    return entry


def _differing(comparison: dict[str, Any]) -> list[str]:
    return [name for name, table in comparison["tables"].items() if not table["equal"]]


# -- the resync ----------------------------------------------------------------------------------------------------


def resync_primary(topology: Topology, db: DatabaseConfig, *, source_conn_id: str, target_conn_id: str | None = None,
                   location: str | None = None) -> dict[str, Any]:
    """Bring `db` on `target_conn_id` (default: its primary) up to date from `source_conn_id` (the DR connection that
    holds the live data): nothing written when equal already, else a fresh verified backup of the source restored
    into it, then compared table by table (see the module's doc). `location`: where the backup goes
    (wasb://CONTAINER/PREFIX; default `<backup location>/failback`). Returns a JSON-able summary."""
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.backup.verify import verify_backup
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.restore.mysql_restore import RestoreRequest, run_restore

    if db.engine != "mysql":
        raise InputError(f"database {db.name} is {db.engine}: resync_primary copies MySQL/MariaDB databases; a "
                         f"PostgreSQL primary is rebuilt as a standby of the promoted server")
    target_conn_id = target_conn_id or db.primary_conn_id
    if target_conn_id == source_conn_id:
        raise InputError(f"the source and the target are both {source_conn_id}: give the DR connection that holds "
                         f"the live data as source_conn_id")
    started = time.monotonic()
    chunk_rows = topology.replication.consistency.chunk_rows
    out: dict[str, Any] = {"database": db.name, "source": source_conn_id, "target": target_conn_id}

    before = compare_databases(source_conn_id, target_conn_id, db.name, chunk_rows=chunk_rows)
    if before["equal"]:
        log.info("%s on %s equals %s already (%d tables): nothing written", db.name, target_conn_id, source_conn_id,
                 len(before["tables"]))
        return {**out, "manifest": None, "rows": sum(t["rows_source"] for t in before["tables"].values()),
                "tables": len(before["tables"]), "checked_tables": len(before["tables"]), "differing": [],
                "differed_before": [], "seconds": round(time.monotonic() - started, 3), "already": True}
    differed_before = _differing(before)
    log.info("%s on %s differs from %s in %d table(s) (%s): copying it back", db.name, target_conn_id,
             source_conn_id, len(differed_before), ", ".join(differed_before[:10]))

    source, target = get_endpoint(source_conn_id), get_endpoint(target_conn_id)
    root = StorageUrl.parse(location) if location else StorageUrl.parse(topology.backup.location).join(FAILBACK_PREFIX)
    service = blob_service_client(topology.backup.storage_conn_id)
    # Named by the source server's clock, to the second (F25: the worker's clock may be off), as `drctl backup`.
    logical_date = src.server_now(source).replace(tzinfo=UTC, microsecond=0)
    # Entered before the backup: an admin that cannot write to the fenced target is told so before a backup is made.
    with _writable_by_admin(target, target_conn_id):
        backup = run_backup(BackupRequest(source, db.name, root, logical_date, codec=topology.backup.codec), service)
        store = BackupStore(service, root.bucket)
        verdict = verify_backup(store, backup.manifest_url)
        record = store.read_manifest(backup.manifest_url)
        if verdict.status != "verified" or record is None:
            raise ResyncError(f"the backup of {db.name} on {source_conn_id} for the failback did not verify "
                              f"({verdict.detail}): nothing was restored into {target_conn_id}; run the resync again")
        restored = run_restore(RestoreRequest(target, db.name, jobs=RESTORE_JOBS, replace=True, binlog=True),
                               store, record)

    after = compare_databases(source_conn_id, target_conn_id, db.name, chunk_rows=chunk_rows)
    differing = _differing(after)
    if differing:
        details = "; ".join(f"{name}: {after['tables'][name].get('detail')}" for name in differing[:5])
        raise ResyncError(f"after restoring {backup.manifest_url}, {db.name} on {target_conn_id} still differs from "
                          f"{source_conn_id} in {len(differing)} table(s): {', '.join(differing)} ({details}). Did "
                          f"the source take writes meanwhile? Fence it and run the resync again; {target_conn_id} "
                          f"stays fenced")
    log.info("%s: %s rows in %d tables copied from %s to %s, %d tables equal by checksum", db.name,
             f"{restored.rows:,}", restored.tables, source_conn_id, target_conn_id, len(after["tables"]))
    return {**out, "manifest": str(backup.manifest_url), "rows": restored.rows, "tables": restored.tables,
            "checked_tables": len(after["tables"]), "differing": [], "differed_before": differed_before,
            "seconds": round(time.monotonic() - started, 3), "already": False}


@contextlib.contextmanager
def _writable_by_admin(endpoint: Endpoint, name: str) -> Iterator[None]:
    """The fenced target, writable by the admin login while the copy is made (see the module's doc): MySQL's
    super_read_only lifted and put back; read_only itself stays ON. An admin that read_only refuses is told so
    before anything is written."""
    with contextlib.closing(src.connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@global.read_only")
        version, read_only = cur.fetchone()
        lifted = False
        if read_only and "mariadb" not in version.lower():
            try:
                cur.execute("SELECT @@global.super_read_only")
                lifted = bool(cur.fetchone()[0])
            except pymysql.err.OperationalError:   # MySQL before 5.7.8: no super_read_only
                lifted = False
            if lifted:
                cur.execute("SET GLOBAL super_read_only = OFF")
                log.info("super_read_only lifted on %s for the copy (read_only stays ON)", name)
        try:
            if read_only:
                _check_admin_writes(cur, name, endpoint)
        except BaseException:
            _restore_super_read_only(cur, name, lifted)
            raise
    try:
        yield
    finally:
        if lifted:
            # A connection of its own: one kept idle for the whole copy may have been closed by the server.
            with contextlib.closing(src.connect(endpoint)) as conn, conn.cursor() as cur:
                _restore_super_read_only(cur, name, lifted)


def _restore_super_read_only(cur, name: str, lifted: bool) -> None:
    if lifted:
        cur.execute("SET GLOBAL super_read_only = ON")
        log.info("super_read_only set again on %s", name)


def _check_admin_writes(cur, name: str, endpoint: Endpoint) -> None:
    """The restore's first write (its bookkeeping database, which it creates itself) tried now."""
    from multicloud_dr.restore.mysql_restore import STATE_DB

    try:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(STATE_DB)}")
    except pymysql.err.MySQLError as err:
        if err.args and err.args[0] == READ_ONLY_REFUSED:
            raise InputError(f"{name} is read_only and its admin login {endpoint.login!r} may not write under it: "
                             f"grant it READ ONLY ADMIN (MariaDB) or SUPER/CONNECTION_ADMIN (MySQL), or lift "
                             f"read_only in the server's parameter group for the failback") from None
        raise
