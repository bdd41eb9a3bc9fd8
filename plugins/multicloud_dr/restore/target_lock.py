"""One restore per target database at a time (F27: two restores into one target at once).

The lock is held on the target server itself, with `GET_LOCK`, by a connection kept open for the
whole restore. It is keyed by the target database's name, so it does not matter which backup is
restored, from which machine, or whether the target was reached as `127.0.0.1` or `localhost`: the
server is the one place every restore into that database must pass through. A second restore is
refused at once (timeout 0), before it has dropped, created or written anything. A holder that dies
loses its connection, and the server frees the lock with it: nothing stale is left to clean up.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

import pymysql

from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)


class TargetBusyError(DrError):
    """Another restore holds the target database (exit 2: wait for it, or restore under another name)."""

    exit_code = 2


class TargetLockLostError(DrError):
    """The lock's connection was lost mid-restore: another restore may have started meanwhile."""


def lock_name(database: str) -> str:
    """MySQL caps user-lock names at 64 characters; a database name may hold anything, so it is hashed."""
    return "multicloud_dr.restore." + hashlib.sha256(database.encode()).hexdigest()[:40]


class TargetLock:
    """`with TargetLock(connect, endpoint, database):` holds the target for the block; `check()` says
    whether it is still held (called before the swap, the one step that must never run twice at once).

    `connect` makes a pymysql connection to the target server (the restore's own, with its TLS and
    timeouts)."""

    def __init__(self, connect, endpoint: Endpoint, database: str) -> None:
        self.connect, self.endpoint, self.database = connect, endpoint, database
        self.name = lock_name(database)
        self._conn: pymysql.connections.Connection | None = None
        self._id: int | None = None

    def __enter__(self) -> TargetLock:
        conn = self.connect(self.endpoint)
        try:
            with conn.cursor() as cur:
                # The connection sits idle while the restore runs on others: keep the server from
                # closing it (and so releasing the lock) under a short wait_timeout.
                cur.execute("SET SESSION wait_timeout = 86400")
                cur.execute("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (self.name,))
                got, self._id = cur.fetchone()
                if got != 1:
                    cur.execute("SELECT IS_USED_LOCK(%s)", (self.name,))
                    (holder,) = cur.fetchone()
                    raise TargetBusyError(
                        f"another restore into {self.database!r} on {self.endpoint.describe()} is running "
                        f"(it holds the target's lock, server connection {holder}): wait for it to finish, "
                        f"or restore under another database name")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        self._conn = conn
        log.info("holding the restore lock of %s on %s", self.database, self.endpoint.describe())
        return self

    def check(self) -> None:
        """Raise TargetLockLostError unless this lock is still held by our connection."""
        try:
            with self._conn.cursor() as cur:  # type: ignore[union-attr]
                cur.execute("SELECT IS_USED_LOCK(%s)", (self.name,))
                (holder,) = cur.fetchone()
        except pymysql.err.MySQLError as err:
            raise TargetLockLostError(f"the restore lock's connection to {self.endpoint.describe()} was lost "
                                      f"({err.args[-1]}): stopping before the swap; run the restore again") from None
        if holder != self._id:
            raise TargetLockLostError(f"the restore lock of {self.database!r} is no longer ours: stopping before "
                                      f"the swap; run the restore again")

    def __exit__(self, *exc) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(Exception), self._conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (self.name,))
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
