"""The shared snapshot of a parallel backup (backup/snapshot.py: the first piece of issue 17; the backup itself still
runs mysqldump), on the lab's MariaDB primary while a writer commits rows as fast as it can: every connection sees
the same moment, the binlog coordinates read under the lock name exactly that moment, and an account without the
lock's privilege gets an error that says so instead of connections that saw different moments."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid

import pytest

from multicloud_dr.backup.snapshot import SnapshotUnavailableError, open_shared_snapshot

from .conftest import drop_database, mysql_connect

JOBS = 3


@pytest.fixture
def scratch(primary):
    name = f"t_snap_{uuid.uuid4().hex[:6]}"
    with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB")
    yield name
    drop_database(primary, name)


class Writer:
    """Commits one row at a time (autocommit) until stopped, and records each row's GTID (MariaDB's @@last_gtid)."""

    def __init__(self, primary, database: str) -> None:
        self.conn = mysql_connect(primary, database)
        self.gtids: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("INSERT INTO t (v) VALUES ('x')")
                row_id = cur.lastrowid
                cur.execute("SELECT @@last_gtid")
                self.gtids[row_id] = cur.fetchone()[0]

    def __enter__(self) -> Writer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while len(self.gtids) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.close()


def _seen(conn) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM t")
        return cur.fetchone()


def _seq_no(gtid_set: str, domain_server: str) -> int:
    """The sequence number of `domain-server` in a MariaDB GTID position ("0-1-57,1-3-9")."""
    for gtid in gtid_set.split(","):
        domain, server, seq = gtid.strip().split("-")
        if f"{domain}-{server}" == domain_server:
            return int(seq)
    raise AssertionError(f"{domain_server} not in {gtid_set!r}")


def test_every_connection_sees_one_moment_and_the_coordinates_name_it(primary, scratch):
    with Writer(primary, scratch) as writer:
        with open_shared_snapshot(primary, scratch, JOBS) as snapshot:
            time.sleep(0.3)   # the writer goes on committing once the lock is released
            seen = [_seen(conn) for conn in snapshot.connections]
            with contextlib.closing(mysql_connect(primary, scratch)) as fresh:
                now = _seen(fresh)
            again = [_seen(conn) for conn in snapshot.connections]
        time.sleep(0.1)
    assert len(set(seen)) == 1, f"the {JOBS} connections saw different moments: {seen}"
    assert again == seen, "a snapshot moved on within its transaction"
    rows, max_id = seen[0]
    assert rows == max_id and now[0] > rows, (seen, now)   # a moment in the past, with the writes since not in it
    assert snapshot.lock == "BACKUP STAGE BLOCK_COMMIT" and snapshot.binlog_file and snapshot.binlog_position
    # The GTID position read under the lock is the commit of the last row the snapshot holds, before the next one.
    domain_server = writer.gtids[max_id].rsplit("-", 1)[0]
    seq = _seq_no(snapshot.gtid, domain_server)
    assert _seq_no(writer.gtids[max_id], domain_server) <= seq < _seq_no(writer.gtids[max_id + 1], domain_server)
    print(f"{JOBS} connections at row {max_id}; commits held {snapshot.lock_seconds * 1000:.1f} ms; gtid {seq}")


def test_without_the_lock_the_same_connections_would_see_different_moments(primary, scratch):
    """What the test above would catch: transactions started one after another under the same writer differ."""
    conns = [mysql_connect(primary, scratch) for _ in range(JOBS)]
    try:
        with Writer(primary, scratch):
            for conn in conns:
                with conn.cursor() as cur:
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                time.sleep(0.05)
            seen = [_seen(conn) for conn in conns]
    finally:
        for conn in conns:
            conn.close()
    assert len(set(seen)) == JOBS, seen


def test_an_account_without_reload_is_told_to_use_the_mysqldump_engine(primary, scratch):
    user, password = f"t_noreload_{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON `{scratch}`.* TO %s@'%%'", (user,))
    try:
        with pytest.raises(SnapshotUnavailableError) as raised:
            open_shared_snapshot(dataclasses.replace(primary, login=user, password=password), scratch, JOBS)
        message = str(raised.value)
        assert "RELOAD" in message and "mysqldump engine" in message and password not in message
    finally:
        with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
