"""Promoting the DR replica to the writable primary: MySQL/MariaDB replicas and PostgreSQL standbys.

A promotion is the one step after which the DR database takes writes, so it is checked before and after:

- MySQL/MariaDB. Planned (the old primary reachable and fenced): wait until the replica has applied everything
  the primary wrote (`MASTER_GTID_WAIT` on the primary's `@@gtid_binlog_pos`), so nothing is lost. Emergency
  (the primary gone): wait until the replica has applied what it already received (its IO position,
  `Gtid_IO_Pos`), then promote; what the primary wrote and never sent is the RPO. Then `STOP SLAVE`,
  `RESET SLAVE ALL` (it must never reconnect to the old primary) and `read_only = OFF`; verified by reading back.
- PostgreSQL: `pg_promote(wait => true)`, verified by `pg_is_in_recovery()` being false.

Both are idempotent: a database that is already a writable primary is left as it is (`already_promoted`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)

CATCH_UP_SECONDS = 300


class PromoteError(DrError):
    """The replica could not be promoted (not caught up in time, refused): nothing after the wait was changed."""


@dataclass
class PromoteResult:
    engine: str
    target: str                          # the connection id or host:port promoted
    already_promoted: bool
    actions: list[str] = field(default_factory=list)
    waited_for: str | None = None        # the GTID position (MySQL) or "recovery end" (PostgreSQL) waited for
    applied_position: str | None = None  # what the new primary holds: gtid_slave_pos / the last replayed LSN
    source_position: str | None = None   # what the old primary had written, when it could be read
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _endpoint(ref: str | Endpoint) -> tuple[Endpoint, str]:
    """The endpoint, and how results name it: the connection id, else a description without the password."""
    endpoint = ref if isinstance(ref, Endpoint) else get_endpoint(ref)
    return endpoint, ref if isinstance(ref, str) and "://" not in ref else endpoint.describe()


def promote_mysql(replica: str | Endpoint, *, primary: str | Endpoint | None = None,
                  timeout: float = CATCH_UP_SECONDS) -> PromoteResult:
    """Promote a MariaDB/MySQL replica. With `primary` (planned: it must be reachable, and fenced so it takes no
    more writes) wait for everything it wrote; without it (emergency) for everything the replica received."""
    import pymysql

    from multicloud_dr.backup import source

    t0 = time.monotonic()
    endpoint, name = _endpoint(replica)
    result = PromoteResult("mysql", name, already_promoted=False)
    with contextlib.closing(source.connect(endpoint)) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
        cur.execute("SELECT @@global.read_only AS ro, @@global.gtid_slave_pos AS applied")
        flags = cur.fetchone()
        if status is None and not flags["ro"]:
            result.already_promoted = True
            result.applied_position = flags["applied"]
            result.seconds = time.monotonic() - t0
            return result
        if status is not None:
            if primary is not None:
                primary_endpoint, _ = _endpoint(primary)
                with contextlib.closing(source.connect(primary_endpoint)) as old, old.cursor() as old_cur:
                    old_cur.execute("SELECT @@global.gtid_binlog_pos")
                    (result.source_position,) = old_cur.fetchone()
                result.waited_for = result.source_position
            else:
                result.waited_for = status.get("Gtid_IO_Pos") or ""
            if result.waited_for:
                if status.get("Slave_SQL_Running") != "Yes":
                    cur.execute("START SLAVE SQL_THREAD")   # apply what was received, even if the IO thread is down
                    result.actions.append("start SQL thread to apply the relay log")
                cur.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS done", (result.waited_for, timeout))
                if cur.fetchone()["done"] != 0:
                    cur.execute("SELECT @@global.gtid_slave_pos AS applied")
                    raise PromoteError(f"replica {name} has not applied GTID {result.waited_for} within {timeout:.0f} "
                                       f"s (applied: {cur.fetchone()['applied']}); nothing was changed: check "
                                       f"SHOW SLAVE STATUS on it, or fail over from a backup")
                result.actions.append(f"caught up to GTID {result.waited_for}")
            cur.execute("STOP SLAVE")
            cur.execute("RESET SLAVE ALL")
            result.actions.append("stop replication and forget the old primary (RESET SLAVE ALL)")
        if flags["ro"]:
            cur.execute("SET GLOBAL read_only = OFF")
            result.actions.append("read_only OFF")
        cur.execute("SHOW SLAVE STATUS")
        still = cur.fetchone()
        cur.execute("SELECT @@global.read_only AS ro, @@global.gtid_slave_pos AS applied")
        after = cur.fetchone()
        if still is not None or after["ro"]:
            state = "replicating" if still else "read-only"
            raise PromoteError(f"replica {name} is still {state} after the promotion; check its grants (SUPER / "
                               f"REPLICATION SLAVE ADMIN) and its server log")
        result.applied_position = after["applied"]
    result.seconds = time.monotonic() - t0
    log.info("promoted %s: %s in %.1f s", name, "; ".join(result.actions), result.seconds)
    return result


def promote_postgres(standby: str | Endpoint, *, timeout: float = CATCH_UP_SECONDS) -> PromoteResult:
    """Promote a PostgreSQL streaming standby (`pg_promote`), verified by pg_is_in_recovery() = false."""
    from multicloud_dr.connections.postgres import PostgresConnection

    t0 = time.monotonic()
    endpoint, name = _endpoint(standby)
    result = PromoteResult("postgres", name, already_promoted=False)
    conn = PostgresConnection(endpoint).connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
            in_recovery, replayed = cur.fetchone()
            if not in_recovery:
                result.already_promoted = True
                cur.execute("SELECT pg_current_wal_lsn()::text")
                (result.applied_position,) = cur.fetchone()
                result.seconds = time.monotonic() - t0
                return result
            result.waited_for = "the end of recovery"
            cur.execute("SELECT pg_promote(true, %s)", (max(1, int(timeout)),))
            (promoted,) = cur.fetchone()
            cur.execute("SELECT pg_is_in_recovery()")
            (still,) = cur.fetchone()
            if not promoted or still:
                raise PromoteError(f"standby {name} did not leave recovery within {timeout:.0f} s; check its server "
                                   f"log (pg_promote returned {promoted})")
            result.actions.append(f"pg_promote (replayed up to {replayed})")
            result.applied_position = replayed
    finally:
        conn.close()
    result.seconds = time.monotonic() - t0
    log.info("promoted %s in %.1f s", name, result.seconds)
    return result
