"""Failback of a PostgreSQL database whose standby the failover promoted: the old primary made the primary again
without losing what DR took since.

After the failover, DR's server (the promoted standby) holds the live data on a new timeline; the old primary
holds the data of before, possibly with commits DR never received, and its fence. No SQL can copy a whole
cluster back, so the old primary must first be rebuilt as a standby of DR by whoever runs it (`pg_basebackup -R`
from DR into an empty data directory, or `pg_rewind` against DR and then `standby.signal` with a
`primary_conninfo` that points at DR; on a managed service, a new replica of DR's server). Then:

- `check_rebuilt` (the failback's gates): the old primary is in recovery, its system identifier is DR's, and its
  WAL receiver streams on DR's current timeline. Anything else means the old primary still holds its own
  history (unfencing it would split the brain, and copying over it would lose DR's writes): the gate fails and
  `force` does not lift it.
- `promote_back` (the failback's data step, after DR was fenced): wait until the old primary has replayed all
  WAL up to DR's current position; compare every table of the database on both (row count and an
  order-independent sum of per-row hashes: the physical copy should be identical, and a difference means DR
  still took writes, so nothing is promoted); then promote it (`pg_promote`), verified by `pg_is_in_recovery()`
  being false. A retried step finds it promoted already and changes nothing.

DR stays as it is afterwards (fenced, out of recovery, on its own timeline): to protect the primary again it is
rebuilt as a standby of the primary, as the old primary was of DR.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from multicloud_dr.connections import get_endpoint
from multicloud_dr.failover.data import _lsn

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 300
POLL_SECONDS = 0.2


def _connect(conn_id: str, database: str):
    from multicloud_dr.replication import postgres as pg

    return contextlib.closing(pg.connect(get_endpoint(conn_id), database))


def _primary_facts(conn_id: str, database: str) -> dict[str, Any]:
    """DR's server, the one that holds the live data: out of recovery, its identifier, timeline and position."""
    with _connect(conn_id, database) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text")
        in_recovery, system_id = cur.fetchone()
        facts: dict[str, Any] = {"in_recovery": in_recovery, "system_identifier": system_id}
        if not in_recovery:
            # The WAL file name's first 8 hex digits are the timeline a primary writes on.
            cur.execute("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())")
            lsn, walfile = cur.fetchone()
            facts.update(lsn=lsn, timeline=int(walfile[:8], 16))
    return facts


def _standby_facts(conn_id: str, database: str) -> dict[str, Any]:
    with _connect(conn_id, database) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system())::text, "
                    "pg_last_wal_replay_lsn()::text")
        in_recovery, system_id, replayed = cur.fetchone()
        facts: dict[str, Any] = {"in_recovery": in_recovery, "system_identifier": system_id, "replayed": replayed}
        if in_recovery:
            cur.execute("SELECT status, received_tli FROM pg_stat_wal_receiver")
            row = cur.fetchone()
            facts.update(receiver=row[0] if row else None, received_tli=row[1] if row else None)
    return facts


def check_rebuilt(database: str, primary_conn_id: str, dr_conn_id: str) -> tuple[bool, str]:
    """(ok, why): whether the old primary is a standby streaming from DR on DR's timeline (see the module's doc).
    Unreachable servers are not ok either: the failback cannot go on without both."""
    from multicloud_dr.replication import postgres as pg

    rebuild = (f"rebuild {primary_conn_id} as a standby of {dr_conn_id} (pg_basebackup -R from it, or pg_rewind "
               f"against it plus standby.signal), then run the failback again")
    try:
        dr = _primary_facts(dr_conn_id, database)
        old = _standby_facts(primary_conn_id, database)
    except pg.PostgresUnreachableError as err:
        return False, f"{err}: both servers must answer for a failback"
    if dr["in_recovery"]:
        return False, (f"{dr_conn_id} is in recovery, so it does not hold the live data: the last failover did not "
                       f"promote it; nothing to fail back from")
    if not old["in_recovery"]:
        return False, (f"{primary_conn_id} is not a standby: it still holds its own data from before the failover, "
                       f"and {dr_conn_id} has taken writes since; {rebuild}")
    if old["system_identifier"] != dr["system_identifier"]:
        return False, (f"{primary_conn_id} is a standby of another cluster (system identifier "
                       f"{old['system_identifier']}, {dr_conn_id} has {dr['system_identifier']}); {rebuild}")
    if old.get("receiver") != "streaming" or old.get("received_tli") != dr["timeline"]:
        return False, (f"{primary_conn_id} is a standby but does not stream from {dr_conn_id}'s timeline "
                       f"{dr['timeline']} (WAL receiver {old.get('receiver') or 'not running'}, timeline "
                       f"{old.get('received_tli')}); check its primary_conninfo, or {rebuild}")
    return True, (f"{primary_conn_id} streams from {dr_conn_id} on timeline {dr['timeline']} (replayed "
                  f"{old['replayed']}, DR at {dr['lsn']})")


def promote_back(database: str, primary_conn_id: str, dr_conn_id: str, *,
                 timeout: float = CATCH_UP_SECONDS) -> dict[str, Any]:
    """The failback's data step for one PostgreSQL database (see the module's doc). DR must be fenced already, so
    its position does not move while the old primary catches up."""
    from multicloud_dr.failover.promote import PromoteError, promote_postgres

    t0 = time.monotonic()
    out: dict[str, Any] = {"method": "promote_back", "engine": "postgres", "database": database,
                           "source": dr_conn_id, "target": primary_conn_id}
    old = _standby_facts(primary_conn_id, database)
    if not old["in_recovery"]:
        log.info("%s is out of recovery already: promoted by an earlier try, left as it is", primary_conn_id)
        return {**out, "already": True, "waited_for_lsn": None, "replayed_lsn": old["replayed"],
                "seconds": round(time.monotonic() - t0, 3),
                "detail": f"{primary_conn_id} was promoted already: left as it is"}
    ok, why = check_rebuilt(database, primary_conn_id, dr_conn_id)
    if not ok:
        raise PromoteError(f"{database}: {why}; nothing was changed")
    target = _primary_facts(dr_conn_id, database)["lsn"]
    deadline = time.monotonic() + timeout
    replayed = old["replayed"]
    while (_lsn(replayed) or 0) < _lsn(target):
        if time.monotonic() > deadline:
            raise PromoteError(f"{primary_conn_id} has replayed up to {replayed}, not {dr_conn_id}'s {target}, "
                               f"within {timeout:.0f} s; nothing was changed: check its replication and run the "
                               f"failback again")
        time.sleep(POLL_SECONDS)
        replayed = _standby_facts(primary_conn_id, database)["replayed"]
    tables = compare_tables(database, dr_conn_id, primary_conn_id)
    differing = sorted(name for name, entry in tables.items() if not entry["equal"])
    if differing:
        raise PromoteError(f"{database} on {primary_conn_id} differs from {dr_conn_id} after the replay in "
                           f"{len(differing)} table(s): {', '.join(differing[:10])}. Did DR take writes after its "
                           f"fence? Nothing was promoted; fence DR and run the failback again")
    log.info("%s replayed all of %s's WAL (up to %s), %d tables equal: promoting it", primary_conn_id, dr_conn_id,
             target, len(tables))
    result = promote_postgres(primary_conn_id, timeout=timeout)
    return {**out, "already": result.already_promoted, "waited_for_lsn": target, "replayed_lsn": replayed,
            "checked_tables": len(tables), "rows": sum(t["rows"] for t in tables.values()),
            "positions": result.to_dict(), "seconds": round(time.monotonic() - t0, 3),
            "detail": (f"{primary_conn_id} caught up with {dr_conn_id} at LSN {target} and was promoted; rebuild "
                       f"{dr_conn_id} as its standby to protect it again")}


_TABLES = ("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
           "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2")


def _table_sums(conn_id: str, database: str) -> dict[str, tuple[int, int]]:
    from psycopg2 import sql

    sums = {}
    with _connect(conn_id, database) as conn, conn.cursor() as cur:
        cur.execute(_TABLES)
        for schema, table in cur.fetchall():
            # One pass, no sort, no memory per row: a count and the sum of each row's text hash.
            cur.execute(sql.SQL("SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {}.{} t")
                        .format(sql.Identifier(schema), sql.Identifier(table)))
            count, total = cur.fetchone()
            sums[f"{schema}.{table}"] = (int(count), int(total))
    return sums


def compare_tables(database: str, source_conn_id: str, target_conn_id: str) -> dict[str, dict[str, Any]]:
    """Every table of `database` (partitions and their parents alike), source against target: row count and the
    sum of per-row hashes. A table on one side only differs."""
    ours, theirs = _table_sums(source_conn_id, database), _table_sums(target_conn_id, database)
    return {name: {"equal": ours.get(name) == theirs.get(name), "rows": (ours.get(name) or theirs[name])[0]}
            for name in sorted(set(ours) | set(theirs))}
