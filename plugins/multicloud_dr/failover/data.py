"""The failover's data step: which database holds each topology database's data at the DR site afterwards, and
bringing it there.

- `plan_data` (pure): one plan per topology database. `failover_method: auto` promotes the replica in a planned
  failover (the primary is fenced: the replica catches up with it and nothing is lost), and in an emergency only
  when the replica's lag was measured and is within the RPO target; otherwise (stopped replica: lag unknown, never
  zero) the newest verified backup is restored into the DR server. A database with only one way to fail over (a
  PostgreSQL standby: backups are MySQL dumps; no DR server to restore into) takes that way, and the gates judge
  its lag. A drill restores into `<database><failover.drill.database_suffix>` on the DR server and never promotes:
  promoting would end the live replica's replication.
- `run_data` carries one plan out with the promotion and restore libraries, and is idempotent: a replica promoted
  already, or a DR database that holds a complete restore of the same backup, is left as it is (`already`). Its
  result holds what the report's RPO needs: the backup's snapshot time (restore), or the last commit the promoted
  replica applied and the primary's last commit known (promotion; None when the primary cannot be read).
- `drop_drill_data` drops a drill's scratch database, and only names that end with the drill suffix.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.config import DatabaseConfig, Topology
from multicloud_dr.exceptions import ConfigError, InputError

log = logging.getLogger(__name__)

MODES = ("planned", "emergency", "drill")
RESTORE_JOBS = 2
# The drill's scratch database is `<database><suffix>` on the DR server (failover.drill.database_suffix).
DEFAULT_DRILL_SUFFIX = "_drill"
_SUFFIX = re.compile(r"^[A-Za-z0-9_$]{1,20}$")
_MAX_NAME = 64


@dataclass(frozen=True)
class DataPlan:
    database: str                # the topology database
    engine: str                  # mysql | postgres
    method: str                  # promote | restore | skip (a drill: no DR server to restore into)
    source: str | None           # the replica's connection id promoted, or the backup location restored from
    target: str | None           # the connection id that holds the data afterwards
    target_database: str | None  # the database's name there
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lag_check_name(db: DatabaseConfig) -> str:
    """The replication check that measures this database's replica (the gates' evidence names lags so)."""
    return f"{'mysql_replica' if db.engine == 'mysql' else 'postgres_standby'}/{db.name}"


def drill_suffix(topology: Topology) -> str:
    suffix = topology.failover.drill.database_suffix or DEFAULT_DRILL_SUFFIX
    if not _SUFFIX.match(suffix):
        raise ConfigError(f"failover.drill.database_suffix {suffix!r}: use 1 to 20 letters, digits, _ or $")
    return suffix


def plan_data(topology: Topology, mode: str, lags: dict[str, float | None], *,
              drill: bool = False) -> list[DataPlan]:
    """One plan per topology database (see the module's doc). `lags`: replication check name
    (`mysql_replica/<database>`, `postgres_standby/<database>`) -> seconds behind, None when stopped or unknown."""
    if mode not in MODES:
        raise InputError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    if drill or mode == "drill":
        suffix = drill_suffix(topology)
        names = {d.name for d in topology.databases}
        return [_drill_plan(db, topology, suffix, names) for db in topology.databases]
    return [_failover_plan(db, topology, mode, lags.get(lag_check_name(db))) for db in topology.databases]


def _failover_plan(db: DatabaseConfig, topology: Topology, mode: str, lag: float | None) -> DataPlan:
    rpo = topology.targets.rpo_seconds
    where = f"database {db.name} ({db.engine})"
    seen = "unknown (stopped or unreachable)" if lag is None else f"{lag:.1f} s"
    method = db.failover_method
    if method == "auto":
        if db.engine == "postgres" or not db.dr_conn_id:
            if not db.replica_conn_id:
                raise ConfigError(f"{where} has neither a replica_conn_id to promote nor a dr_conn_id to restore "
                                  f"into: give it one in the topology")
            method = "promote"
            why = (f"{'a PostgreSQL standby' if db.engine == 'postgres' else 'no DR server to restore into'}: the "
                   f"replica is promoted (its lag: {seen})")
        elif mode == "planned":
            if not db.replica_conn_id:
                raise ConfigError(f"{where}: a planned failover promotes the replica, and it has no replica_conn_id:"
                                  f" give it one, or set failover_method: restore (what was written since the "
                                  f"newest backup is lost)")
            method, why = "promote", "planned: the replica catches up with the fenced primary, nothing is lost"
        elif db.replica_conn_id and lag is not None and lag <= rpo:
            method, why = "promote", f"the replica is {lag:.1f} s behind, within the RPO target ({rpo} s)"
        else:
            method = "restore"
            why = ("no replica: the newest verified backup is restored" if not db.replica_conn_id
                   else f"the replica's lag is {seen}, not within the RPO target ({rpo} s): the newest verified "
                        f"backup is restored")
    else:
        why = f"failover_method: {method} in the topology"
    if method == "promote":
        if not db.replica_conn_id:
            raise ConfigError(f"{where}: failover_method promote needs a replica_conn_id in the topology")
        return DataPlan(db.name, db.engine, "promote", db.replica_conn_id, db.replica_conn_id, db.name, why)
    if db.engine != "mysql":
        raise ConfigError(f"{where}: backups are MySQL dumps, a PostgreSQL database is failed over by promoting "
                          f"its standby: set failover_method: promote and a replica_conn_id")
    if not db.dr_conn_id:
        raise ConfigError(f"{where}: failover_method restore needs a dr_conn_id (the DR server) in the topology")
    return DataPlan(db.name, db.engine, "restore", topology.backup.location, db.dr_conn_id, db.name, why)


def _drill_plan(db: DatabaseConfig, topology: Topology, suffix: str, names: set[str]) -> DataPlan:
    if db.engine != "mysql" or not db.dr_conn_id:
        what = "backups are MySQL dumps" if db.engine != "mysql" else "it has no dr_conn_id"
        return DataPlan(db.name, db.engine, "skip", None, None, None,
                        f"drill: nothing to restore ({what}); a drill never promotes the live replica")
    scratch = db.name + suffix
    if len(scratch) > _MAX_NAME:
        raise ConfigError(f"database {db.name}: its drill database {scratch!r} is longer than {_MAX_NAME} "
                          f"characters: shorten failover.drill.database_suffix")
    if scratch in names:
        raise ConfigError(f"database {db.name}: its drill database {scratch} is another topology database: choose "
                          f"another failover.drill.database_suffix")
    return DataPlan(db.name, db.engine, "restore", topology.backup.location, db.dr_conn_id, scratch,
                    f"drill: the newest verified backup is restored into the scratch database {scratch}")


# -- carrying a plan out --------------------------------------------------------------------------------------------


def run_data(topology: Topology, plan: DataPlan, *, mode: str, primary_reachable: bool) -> dict[str, Any]:
    """Carry `plan` out (promote or restore); a JSON-able result. `primary_reachable`: the old primary answers
    (fenced): a planned promotion waits for all it wrote, and its positions tell the RPO."""
    if plan.method == "skip":
        return {**_fields(plan), "already": True, "detail": plan.reason}
    db = _database(topology, plan)
    log.info("data: %s %s/%s -> %s/%s (%s)", plan.method, plan.engine, plan.database, plan.target,
             plan.target_database, plan.reason)
    if plan.method == "promote":
        if mode == "planned" and not primary_reachable:
            raise InputError(f"database {plan.database}: a planned failover waits for the fenced primary, and it "
                             f"cannot be reached: run an emergency failover instead")
        primary = db.primary_conn_id if primary_reachable else None
        promote = _promote_mysql if plan.engine == "mysql" else _promote_postgres
        outcome = promote(plan, primary, planned=mode == "planned")
    elif plan.method == "restore":
        outcome = _restore(topology, plan, drill=mode == "drill")
    else:
        raise InputError(f"data plan method {plan.method!r}: use promote, restore or skip")
    log.info("data: %s", outcome["detail"])
    return outcome


def _database(topology: Topology, plan: DataPlan) -> DatabaseConfig:
    for db in topology.databases:
        if db.name == plan.database and db.engine == plan.engine:
            return db
    raise ConfigError(f"the data plan names {plan.engine} database {plan.database}, which the topology does not "
                      f"have: plan the data step again from this topology")


def _fields(plan: DataPlan) -> dict[str, Any]:
    return {"method": plan.method, "engine": plan.engine, "source": plan.source, "target": plan.target,
            "database": plan.target_database, "manifest": None, "snapshot_at": None, "applied_at": None,
            "primary_last_commit_at": None, "rows": None, "tables": None, "seconds": 0.0}


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _promotion_times(applied_at: datetime | None, caught_up: bool, primary_at: datetime | None,
                     now: datetime) -> tuple[datetime | None, datetime | None]:
    """(applied_at, primary_last_commit_at) for the report's RPO. Caught up (the positions are equal): nothing is
    missing, both are the same moment. Otherwise the primary's last commit known only counts when it is newer than
    what the replica applied: anything else would read as an RPO of zero that nobody measured."""
    if caught_up:
        same = applied_at or now
        return same, same
    if primary_at is not None and applied_at is not None and primary_at > applied_at:
        return applied_at, primary_at
    return applied_at, None


def _promote_mysql(plan: DataPlan, primary: str | None, *, planned: bool) -> dict[str, Any]:
    import pymysql

    from multicloud_dr.backup import source
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.failover.promote import promote_mysql
    from multicloud_dr.replication.mysql import primary_now, read_heartbeat, replica_status
    from multicloud_dr.sql import query

    t0 = time.monotonic()
    replica = get_endpoint(plan.source)
    with contextlib.closing(source.connect(replica)) as conn:
        status = replica_status(conn)
    old_primary_id = status.get("Master_Server_Id") if status else None
    # Planned passes the primary: the promotion waits until the replica applied all it wrote (it is fenced).
    result = promote_mysql(plan.source, primary=primary if planned else None)

    with contextlib.closing(source.connect(replica)) as conn:
        seen = read_heartbeat(conn, old_primary_id) if old_primary_id else _newest_foreign_heartbeat(conn)
        applied_at = seen[1] if seen else None
        now = primary_now(conn)
    primary_position = result.source_position if (planned and not result.already_promoted) else None
    primary_at = None
    if primary is not None:
        try:
            with contextlib.closing(source.connect(get_endpoint(primary), connect_timeout=5)) as conn, \
                    conn.cursor() as cur:
                if primary_position is None:
                    cur.execute("SELECT @@global.gtid_binlog_pos")
                    (primary_position,) = cur.fetchone()
                try:
                    cur.execute(query("heartbeat_mysql.sql", "read_own_heartbeat"))
                    own = cur.fetchone()
                    primary_at = own[2] if own else None
                except pymysql.err.ProgrammingError:   # no heartbeat table: no replication check ran there
                    primary_at = None
        except (pymysql.err.MySQLError, source.SourceError) as err:
            log.warning("the old primary %s could not be read after the promotion (%s): its last commit is unknown",
                        primary, err)
            primary_position = None
    caught_up = bool(primary_position) and primary_position == result.applied_position
    applied, last = _promotion_times(applied_at, caught_up, primary_at, now)
    detail = (f"{plan.source} was promoted already: left as it is" if result.already_promoted
              else f"promoted {plan.source}: {'; '.join(result.actions)}")
    if caught_up:
        detail += f"; caught up with the primary at GTID {primary_position}"
    return {**_fields(plan), "already": result.already_promoted, "positions": result.to_dict(),
            "applied_at": _iso(applied), "primary_last_commit_at": _iso(last),
            "seconds": round(time.monotonic() - t0, 3), "detail": detail}


def _newest_foreign_heartbeat(conn) -> tuple[int, datetime] | None:
    """The newest heartbeat another server wrote (the old primary's, when its id is no longer known: promoted)."""
    import pymysql

    with conn.cursor() as cur:
        try:
            cur.execute("SELECT seq, written_at FROM `_multicloud_dr`.`heartbeat` "
                        "WHERE source_server_id <> @@server_id ORDER BY written_at DESC LIMIT 1")
        except pymysql.err.ProgrammingError as err:
            if err.args[0] in (1146, 1049):
                return None
            raise
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def _lsn(text: str | None) -> int | None:
    if not text:
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _promote_postgres(plan: DataPlan, primary: str | None, *, planned: bool) -> dict[str, Any]:
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.failover.promote import CATCH_UP_SECONDS, PromoteError, promote_postgres
    from multicloud_dr.replication import postgres as pg
    from multicloud_dr.replication.heartbeat import wait_for_heartbeat

    t0 = time.monotonic()
    standby = get_endpoint(plan.source)
    primary_lsn = primary_at = None
    if primary is not None:
        try:
            with contextlib.closing(pg.connect(get_endpoint(primary), plan.database)) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_current_wal_lsn()::text")
                primary_lsn = _lsn(cur.fetchone()[0])
                seen = pg.read_heartbeat(conn)
                primary_at = seen[1] if seen else None
        except pg.PostgresUnreachableError as err:
            if planned:
                raise InputError(f"database {plan.database}: a planned failover waits for the fenced primary, and "
                                 f"it cannot be read ({err}): run an emergency failover instead") from None
            log.warning("the old primary %s could not be read (%s): its last commit is unknown", primary, err)

    with contextlib.closing(pg.connect(standby, plan.database)) as conn:
        def replayed() -> tuple[int, datetime | None] | None:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_last_wal_replay_lsn()::text")
                lsn = _lsn(cur.fetchone()[0])
            return None if lsn is None else (lsn, None)

        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            (in_recovery,) = cur.fetchone()
        if planned and in_recovery and primary_lsn is not None:
            # The fenced primary writes nothing more: wait until the standby replayed all it had written.
            arrived, waited = wait_for_heartbeat(replayed, primary_lsn, time.monotonic(), CATCH_UP_SECONDS)
            if not arrived:
                raise PromoteError(f"standby {plan.source} has not replayed the primary's WAL up to its position "
                                   f"within {waited:.0f} s; nothing was changed: check its replication, or fail "
                                   f"over in emergency mode")
            log.info("standby %s replayed all the fenced primary wrote (%.1f s)", plan.source, waited)

    result = promote_postgres(plan.source)

    with contextlib.closing(pg.connect(standby, plan.database)) as conn, conn.cursor() as cur:
        # Both stay as they were at the end of recovery once the standby is promoted.
        cur.execute("SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp(), clock_timestamp()")
        replayed_text, applied_at, now = cur.fetchone()
        if applied_at is None:
            seen = pg.read_heartbeat(conn)
            applied_at = seen[1] if seen else None
    replayed_lsn = _lsn(replayed_text)
    caught_up = primary_lsn is not None and replayed_lsn is not None and replayed_lsn >= primary_lsn
    applied, last = _promotion_times(applied_at, caught_up, primary_at, now)
    detail = (f"{plan.source} was promoted already: left as it is" if result.already_promoted
              else f"promoted {plan.source}: {'; '.join(result.actions)}")
    if caught_up:
        detail += f"; caught up with the primary at LSN {replayed_text}"
    return {**_fields(plan), "already": result.already_promoted, "positions": result.to_dict(),
            "applied_at": _iso(applied), "primary_last_commit_at": _iso(last),
            "seconds": round(time.monotonic() - t0, 3), "detail": detail}


def _restore(topology: Topology, plan: DataPlan, *, drill: bool = False) -> dict[str, Any]:
    from multicloud_dr.backup.verify import resolve_backup
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.restore.mysql_restore import USABLE, RestoreRequest, restore_status, run_restore

    t0 = time.monotonic()
    target = get_endpoint(plan.target)
    choice = resolve_backup(topology.backup.storage_conn_id, "latest", plan.source, plan.database)
    newest = str(choice.record.url)
    status = restore_status(target, plan.target_database)
    if status and status["status"] == USABLE and status["manifest"] == newest \
            and _exists(target, plan.target_database):
        manifest = choice.record.manifest
        return {**_fields(plan), "already": True, "manifest": newest, "snapshot_at": _iso(manifest.started_at),
                "rows": manifest.total_rows, "tables": len(manifest.tables), "verified": True,
                "seconds": round(time.monotonic() - t0, 3),
                "detail": f"{plan.target_database} on {plan.target} holds a complete restore of {newest} already "
                          f"(since {status['updated_at']}): nothing restored"}
    until_gtid, archived_to = _archived_point(topology, choice, plan)
    log.info("data: restoring %s into %s on %s (replacing it)%s", newest, plan.target_database, plan.target,
             f", then its archived binlogs up to GTID {until_gtid} ({archived_to})" if until_gtid else "")
    result = run_restore(RestoreRequest(target, plan.target_database, jobs=RESTORE_JOBS, replace=True,
                                        until_gtid=until_gtid), choice.store, choice.record, choice.fallbacks)
    # A damaged newest backup makes the restore fall back to an older one (F28): the snapshot is that one's.
    used = next(r for r in (choice.record, *choice.fallbacks) if str(r.url) == result.manifest)
    # With the archive replayed the data reaches its last archived transaction: the RPO is measured from it.
    snapshot = archived_to if until_gtid and "point_in_time" in result.checks else _iso(used.manifest.started_at)
    outcome = {**_fields(plan), "already": False, "manifest": result.manifest,
               "snapshot_at": snapshot, "point_in_time": result.checks.get("point_in_time"),
               "rows": result.rows, "tables": result.tables,
               "verified": result.verified, "fell_back_from": result.fell_back_from,
               "seconds": round(time.monotonic() - t0, 3), "detail": result.summary()}
    if drill:
        outcome["restore_drill_report"] = _drill_forecast(topology, choice.store, result, used, target, plan)
    return outcome


def _archived_point(topology: Topology, choice: Any, plan: DataPlan) -> tuple[str | None, str | None]:
    """(GTID, time) of the newest transaction the binlog archive holds without a gap from the newest backup's
    position, when the topology archives binlogs (backup.binlogs): the restore replays up to it. (None, None)
    when there is no archive or nothing in it after the backup: the backup alone is restored."""
    manifest = choice.record.manifest
    if topology.backup.binlogs is None or not manifest.binlog_file:
        return None, None
    from multicloud_dr.backup.binlog import BinlogArchive, coverage
    from multicloud_dr.backup.layout import StorageUrl

    archive = BinlogArchive(choice.store, StorageUrl.parse(plan.source), manifest.database)
    cov = coverage(archive.pieces(), manifest.binlog_file, manifest.binlog_position)
    if cov.gaps:
        log.warning("data: the binlog archive of %s has gaps (%s): replaying up to the first", manifest.database,
                    "; ".join(cov.gaps))
    return (cov.last_gtid, cov.last_event_at) if cov.last_gtid else (None, None)


def _drill_forecast(topology: Topology, store: Any, result: Any, record: Any, target: Any,
                    plan: DataPlan) -> str | None:
    """A drill's restore measured like the nightly restore drill's (restore/drill.py): its report stored next to
    the backup, so the restore-time forecast counts it. A failure here is logged, never fatal: the drill's
    restore itself worked."""
    from multicloud_dr.backup.layout import StorageUrl, stamp
    from multicloud_dr.restore.drill import database_size, report_drill

    try:
        size = database_size(target, plan.target_database, scratch_checked=True)   # _drill_plan named it
        url, report = report_drill(store, result, StorageUrl.parse(topology.backup.location), size,
                                   topology.targets.rto_seconds, stamp(datetime.now(UTC)), record)
    except Exception as err:  # the forecast is a by-product: the drill's outcome stands
        log.warning("drill: the restore-time report for the forecast was not stored: %s", err)
        return None
    (log.warning if report["alert"] else log.info)("drill: %s (report %s)", report["message"], url)
    return str(url)


def _exists(target, database: str) -> bool:
    from multicloud_dr.backup import source

    with contextlib.closing(source.connect(target)) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (database,))
        return cur.fetchone()[0] == 1


# -- a drill's teardown ---------------------------------------------------------------------------------------------


def drop_drill_data(topology: Topology, plan: DataPlan) -> dict[str, Any]:
    """Drop a drill's scratch database on the DR server, the restore's private databases for it and its
    restore-state row. Idempotent; refuses a name that does not end with the drill suffix, or that is a topology
    database, and waits for no restore: one still running into it makes this fail (TargetBusyError)."""
    from multicloud_dr.backup import source
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.restore.drill import drop_restored
    from multicloud_dr.restore.target_lock import TargetLock

    if plan.method == "skip" or not plan.target or not plan.target_database:
        return {"database": plan.target_database, "target": plan.target, "dropped": [], "already": True}
    name, suffix = plan.target_database, drill_suffix(topology)
    if plan.method != "restore" or not name.endswith(suffix) or name == suffix \
            or name in {d.name for d in topology.databases}:
        raise InputError(f"{name!r} is not a drill's scratch database (<database>{suffix}): refusing to drop it")
    target = get_endpoint(plan.target)
    with TargetLock(source.connect, target, name):
        existed = drop_restored(target, name)
    log.info("drill teardown on %s: dropped %s", plan.target, ", ".join(existed) or "nothing (already clean)")
    return {"database": name, "target": plan.target, "dropped": existed, "already": not existed}
