"""Point-in-time recovery on the lab's real MariaDB servers: the primary's binlogs archived to Azurite in
pieces (read over the replication protocol by mariadb-binlog), then a restore into the DR server brought
forward from the backup to a chosen second: it holds exactly the rows the test wrote before that second."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multicloud_dr.backup import binlog
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.source import option_file
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.restore.mysql_restore import RestoreRequest, restore_backup, restore_status
from multicloud_dr.restore.pitr import PointNotCoveredError

from .conftest import drop_database, mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))


@pytest.fixture
def writes_db(primary):
    """A database of the test's own on the primary with one table of timestamped rows."""
    name = f"t_pitr_{uuid.uuid4().hex[:6]}"
    with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.events (id INT AUTO_INCREMENT PRIMARY KEY, "
                    f"written_at DATETIME(6) NOT NULL, note VARCHAR(40) NOT NULL)")
        for i in range(20):
            cur.execute(f"INSERT INTO `{name}`.events (written_at, note) VALUES (UTC_TIMESTAMP(6), %s)", (f"pre-{i}",))
        conn.commit()
    yield name
    drop_database(primary, name)


class Writer(threading.Thread):
    """Inserts a row every 20 ms, each with the primary's own UTC time, until stopped."""

    def __init__(self, endpoint, database: str) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.database, self.stop = endpoint, database, threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with contextlib.closing(mysql_connect(self.endpoint, self.database)) as conn, conn.cursor() as cur:
                n = 0
                while not self.stop.is_set():
                    cur.execute("INSERT INTO events (written_at, note) VALUES (UTC_TIMESTAMP(6), %s)", (f"w-{n}",))
                    conn.commit()
                    n += 1
                    time.sleep(0.02)
        except BaseException as err:
            self.error = err


def _server_now(endpoint) -> datetime:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        return cur.fetchone()[0].replace(tzinfo=UTC)


def _rows(endpoint, database: str) -> dict[int, datetime]:
    with contextlib.closing(mysql_connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, written_at FROM events")
        return {row[0]: row[1].replace(tzinfo=UTC) for row in cur.fetchall()}


def _drctl(*args: str) -> dict:
    done = subprocess.run([DRCTL, *args], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"drctl {' '.join(args)}: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def _verified_backup(primary, database, root, service, store, logical_date=None):
    """A verified backup of `database` (named by the primary's clock unless given): its manifest."""
    when = logical_date or _server_now(primary).replace(microsecond=0)
    backup = run_backup(BackupRequest(primary, database, root, when), service)
    assert verify_backup(store, backup.manifest_url).status == "verified"
    return store.read_manifest(backup.manifest_url).manifest


def _archive(primary, archive, start_at=None, **kwargs):
    with contextlib.closing(mysql_connect(primary)) as conn, option_file(primary) as defaults:
        return binlog.archive_once(conn, defaults, archive, start_at=start_at, **kwargs)


def test_a_restore_until_t_holds_exactly_the_rows_written_before_t(primary, dr, writes_db, backup_root, blob_service,
                                                                  store, restore_target):
    manifest = _verified_backup(primary, writes_db, backup_root, blob_service, store)
    archive = binlog.BinlogArchive(store, backup_root, writes_db)

    writer = Writer(primary, writes_db)
    writer.start()
    try:
        time.sleep(1.5)
        # While writing; pieces cut at 8 KiB, so one read of the primary makes several (cut where transactions start).
        first = _archive(primary, archive, (manifest.binlog_file, manifest.binlog_position), max_piece_bytes=8192)
        now = _server_now(primary)
        point = (now + timedelta(seconds=1)).replace(microsecond=0)     # a whole second, on the server's clock
        time.sleep((point - now).total_seconds() + 1.5)                  # ... and keep writing past it
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    second = _drctl("binlogs", "archive", "--source", "mysql_primary", "--to", str(backup_root), "--database",
                    writes_db, "--once")
    assert first.pieces_written >= 3 and second["pieces_written"] >= 1, "archived in pieces, as the primary wrote"
    again = _archive(primary, archive)
    assert again.pieces_written == 0, "a second archiver run over the same binlogs writes nothing new"

    source = _rows(primary, writes_db)
    before = {i for i, at in source.items() if at < point}
    after = set(source) - before
    assert len(before) > 20 and after, "rows on both sides of the point, and after the backup: else this proves nothing"

    listing = _drctl("binlogs", "list", "--at", str(backup_root), "--database", writes_db, "--json")
    assert listing["gaps"] == [] and listing["from_backup"] == f"{manifest.binlog_file}:{manifest.binlog_position}"
    assert len(listing["pieces"]) == first.pieces_written + second["pieces_written"]

    target = restore_target("t_pitr_restored")
    result = _drctl("restore", "--from", "latest", "--at", str(backup_root), "--source-database", writes_db,
                    "--target", "mysql_dr", "--database", target, "--until", point.isoformat())
    restored = _rows(dr, target)
    missing, extra = sorted(before - set(restored))[:5], sorted(set(restored) - before)[:5]
    assert set(restored) == before, (f"{len(restored)} rows restored, {len(before)} written before {point}: "
                                     f"missing {missing}, extra {extra}")
    assert all(restored[i] == source[i] for i in restored), "the restored rows are the source's"
    pit = result["checks"]["point_in_time"]
    assert pit["until"] == point.isoformat() and pit["pieces"] >= 1
    assert pit["from"] == f"{manifest.binlog_file}:{manifest.binlog_position}"
    status = restore_status(dr, target)
    assert status["status"] == "complete" and point.isoformat() in status["detail"], "the point is recorded"


def test_a_point_later_than_the_archive_is_refused_before_the_target_is_touched(primary, dr, writes_db, backup_root,
                                                                                blob_service, store, restore_target):
    manifest = _verified_backup(primary, writes_db, backup_root, blob_service, store)
    archive = binlog.BinlogArchive(store, backup_root, writes_db)
    done = _archive(primary, archive, (manifest.binlog_file, manifest.binlog_position))
    later = datetime.fromisoformat(done.covered_until) + timedelta(hours=1)
    target = restore_target("t_pitr_refused")
    with pytest.raises(PointNotCoveredError, match=r"is not covered: the archive .* covers"):
        restore_backup(RestoreRequest(dr, target, until=later), store.service, "latest", backup_root, writes_db)
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (target,))
        assert cur.fetchone() is None, "nothing was written on the target"


def _write(endpoint, database: str, n: int) -> None:
    with contextlib.closing(mysql_connect(endpoint, database)) as conn, conn.cursor() as cur:
        for i in range(n):
            cur.execute("INSERT INTO events (written_at, note) VALUES (UTC_TIMESTAMP(6), %s)", (f"x-{i}",))
        conn.commit()


def test_f34_a_binlog_purged_before_it_was_archived_is_a_gap_named_by_the_check_and_refused_by_a_restore(
        primary, dr, writes_db, backup_root, blob_service, store, restore_target):
    from multicloud_dr.replication.health import run_check

    manifest = _verified_backup(primary, writes_db, backup_root, blob_service, store)
    archive = binlog.BinlogArchive(store, backup_root, writes_db)
    _archive(primary, archive, (manifest.binlog_file, manifest.binlog_position))
    spec = {"name": f"binlog_archive/{writes_db}", "kind": "binlog_archive", "database": writes_db,
            "location": str(backup_root), "storage_conn_id": "azure_blob_dr", "threshold": 120}
    assert run_check(spec).status == "ok", "whole so far"

    # The archiver is stopped while the primary writes, rotates twice, and purges what it has not archived.
    _write(primary, writes_db, 5)
    with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute("FLUSH BINARY LOGS")
        _write(primary, writes_db, 5)
        cur.execute("FLUSH BINARY LOGS")
        cur.execute("SHOW MASTER STATUS")
        current = cur.fetchone()[0]
        time.sleep(1)   # the replica has read past the files purged next (it is caught up on the lab)
        cur.execute(f"PURGE BINARY LOGS TO '{current}'")
    lost = manifest.binlog_file
    _write(primary, writes_db, 5)
    time.sleep(1.1)
    after_gap = _server_now(primary).replace(microsecond=0)
    resumed = _archive(primary, archive)
    assert resumed.gaps and lost in resumed.gaps[0], resumed.gaps
    assert resumed.pieces_written >= 1, "what is still on the primary is archived after the gap"

    check = run_check(spec)
    assert check.status == "breach" and "gap" in check.detail and lost in check.detail, check.detail

    target = restore_target("t_pitr_gap")
    with pytest.raises(PointNotCoveredError, match="gaps"):
        restore_backup(RestoreRequest(dr, target, until=after_gap), store.service, "latest", backup_root, writes_db)
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (target,))
        assert cur.fetchone() is None, "nothing was written on the target"


def test_retention_deletes_the_binlog_pieces_before_the_oldest_kept_backup_and_no_piece_a_kept_one_needs(
        primary, writes_db, backup_root, blob_service, store):
    from multicloud_dr.backup.retention import RetentionPolicy, run_retention

    old = _verified_backup(primary, writes_db, backup_root, blob_service, store, datetime(2026, 11, 1, 3, tzinfo=UTC))
    archive = binlog.BinlogArchive(store, backup_root, writes_db)
    _archive(primary, archive, (old.binlog_file, old.binlog_position))
    _write(primary, writes_db, 10)
    _archive(primary, archive)
    kept = _verified_backup(primary, writes_db, backup_root, blob_service, store, datetime(2026, 11, 2, 3, tzinfo=UTC))
    _write(primary, writes_db, 10)
    _archive(primary, archive)
    before = archive.pieces()
    key = binlog.file_key
    unneeded = [p for p in before if (key(p.file), p.end) <= (key(kept.binlog_file), kept.binlog_position)]
    assert unneeded and len(unneeded) < len(before), "pieces on both sides of the kept backup's position"

    dry = run_retention(blob_service, backup_root, writes_db, RetentionPolicy(keep_days=0, min_keep=1))
    assert dry.binlog_pieces and archive.pieces() == before, "a dry run deletes nothing"
    done = run_retention(blob_service, backup_root, writes_db, RetentionPolicy(keep_days=0, min_keep=1), dry_run=False)
    assert done.deleted == [old.backup_id]
    after = archive.pieces()
    assert {(p.file, p.start) for p in after} == {(p.file, p.start) for p in before} - {(p.file, p.start)
                                                                                       for p in unneeded}
    cov = binlog.coverage(after, kept.binlog_file, kept.binlog_position)
    assert cov.ok and cov.end == binlog.coverage(before, kept.binlog_file, kept.binlog_position).end, \
        "from the kept backup on the archive is still whole"


def test_a_restore_until_the_archives_last_gtid_holds_every_archived_row(primary, dr, writes_db, backup_root,
                                                                         blob_service, store, restore_target):
    """What the emergency failover by restore does when binlogs are archived (failover/data.py)."""
    manifest = _verified_backup(primary, writes_db, backup_root, blob_service, store)
    archive = binlog.BinlogArchive(store, backup_root, writes_db)
    _write(primary, writes_db, 30)
    _archive(primary, archive, (manifest.binlog_file, manifest.binlog_position))
    cov = binlog.coverage(archive.pieces(), manifest.binlog_file, manifest.binlog_position)
    assert cov.last_gtid
    target = restore_target("t_pitr_gtid")
    result = restore_backup(RestoreRequest(dr, target, until_gtid=cov.last_gtid), store.service, "latest",
                            backup_root, writes_db)
    assert set(_rows(dr, target)) == set(_rows(primary, writes_db)), "every archived row, none lost"
    assert result.checks["point_in_time"]["until"] == cov.last_gtid
