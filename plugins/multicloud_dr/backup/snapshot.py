"""One consistent snapshot shared by several connections: the first building block of a parallel backup engine
(issue 17; nothing calls it yet, the backup still runs mysqldump alone).

Each InnoDB connection that starts `START TRANSACTION WITH CONSISTENT SNAPSHOT` sees the database as of that
moment; started one after another they see different moments. To give N connections the same one, commits are
held back for as long as it takes the N of them to start their transactions, and the binary log's coordinates are
read while nothing can commit, so they name exactly the point the snapshot shows:
- MariaDB: `BACKUP STAGE START` then `BACKUP STAGE BLOCK_COMMIT` (the briefest lock it has: reads and writes
  go on, only commits wait), released with `BACKUP STAGE END`;
- MySQL, or a MariaDB where BACKUP STAGE is refused: `FLUSH TABLES WITH READ LOCK`, released with `UNLOCK TABLES`
  (MySQL 8's `LOCK INSTANCE FOR BACKUP` blocks DDL, not commits, so it cannot line up several snapshots).
Both need the RELOAD privilege. Without it `SnapshotUnavailableError` says so, and a caller falls back to the
mysqldump engine: a parallel dump whose connections saw different moments would be inconsistent, silently.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

import pymysql

from multicloud_dr.backup import source as src
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)

ACCESS_DENIED = {1044, 1045, 1142, 1227}   # no such privilege (RELOAD), or access denied


class SnapshotUnavailableError(DrError):
    """The server or the account allows no lock that lines up several snapshots: use the mysqldump engine."""


@dataclass
class SharedSnapshot:
    """`connections`, each inside a transaction that sees the same moment; the binlog coordinates of that moment."""

    connections: list[pymysql.connections.Connection]
    lock: str                               # the statement that held commits back
    lock_seconds: float                     # how long commits waited
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid: str | None = None

    def close(self) -> None:
        """End every transaction (a consistent snapshot only reads: rollback) and close the connections."""
        for conn in self.connections:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.rollback()
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()

    def __enter__(self) -> SharedSnapshot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _hold_commits(cur, flavor: str) -> tuple[str, str]:
    """Hold commits back on the coordinator's session: (the lock taken, the statement that releases it)."""
    if flavor == "mariadb":
        try:
            cur.execute("BACKUP STAGE START")
            cur.execute("BACKUP STAGE BLOCK_COMMIT")
            return "BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE END"
        except pymysql.MySQLError as err:
            if err.args[0] in ACCESS_DENIED:
                raise
            with contextlib.suppress(pymysql.MySQLError):
                cur.execute("BACKUP STAGE END")
            log.info("BACKUP STAGE refused (%s): taking FLUSH TABLES WITH READ LOCK instead", err.args[-1])
    cur.execute("FLUSH TABLES WITH READ LOCK")
    return "FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES"


def _coordinates(cur, flavor: str) -> tuple[str | None, int | None, str | None]:
    cur.execute("SHOW MASTER STATUS" if flavor == "mariadb" else "SHOW BINARY LOG STATUS")
    row = cur.fetchone()
    file, position = (row[0], int(row[1])) if row else (None, None)
    cur.execute("SELECT @@gtid_binlog_pos" if flavor == "mariadb" else "SELECT @@gtid_executed")
    gtid = cur.fetchone()[0] or None
    return file, position, gtid


def open_shared_snapshot(endpoint: Endpoint, database: str, jobs: int) -> SharedSnapshot:
    """`jobs` connections to `database` that all see one moment (see the module's docstring); the lock is held only
    while they start their transactions. SnapshotUnavailableError when no such lock is allowed."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs!r}")
    workers = [src.connect(endpoint, database) for _ in range(jobs)]
    try:
        for conn in workers:
            with conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with contextlib.closing(src.connect(endpoint, database)) as coordinator, coordinator.cursor() as cur:
            cur.execute("SELECT VERSION()")
            flavor = "mariadb" if "mariadb" in cur.fetchone()[0].lower() else "mysql"
            try:
                held = time.monotonic()
                lock, release = _hold_commits(cur, flavor)
            except pymysql.MySQLError as err:
                if err.args[0] in ACCESS_DENIED:
                    raise SnapshotUnavailableError(
                        f"{endpoint.describe()} refused the lock a parallel backup needs to line up its connections' "
                        f"snapshots ({err.args[-1]}): grant the backup account RELOAD, or use the mysqldump engine"
                    ) from None
                raise
            try:
                file, position, gtid = _coordinates(cur, flavor)
                for conn in workers:
                    with conn.cursor() as wcur:
                        wcur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            finally:
                cur.execute(release)
                lock_seconds = time.monotonic() - held
    except BaseException:
        for conn in workers:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                conn.close()
        raise
    log.info("%d connections share one snapshot of %s (commits held %.3f s by %s; binlog %s:%s, gtid %s)", jobs,
             database, lock_seconds, lock, file, position, gtid or "-")
    return SharedSnapshot(workers, lock, lock_seconds, file, position, gtid)
