"""Restore a backup into a MySQL server, never leaving the target half-restored (F18).

1. The backup is leased for the restore's duration (retention skips it, F12). Its objects must be there,
   with the sizes the manifest gives, before anything is written on the target.
2. Tables and rows load into a private database (`_mcdr_restore_<hash>`), streamed straight from
   storage and decompressed on the fly (no download to disk): CREATE TABLEs in dump order on one
   connection, INSERT statements spread over `jobs` connections (parallel across tables and within a
   table), with unique/foreign-key checks off and the binlog off where the account may do that. Only
   the statement shapes the dump tool writes are run (restore/statements.py): anything else refuses the
   backup before the target is touched.
3. The bytes read must hash to the manifest's SHA-256 of each object, checked while they stream (F28: a
   backup damaged after it was verified). A difference stops the restore before the swap; the manifest is
   marked failed; a restore of "latest" then restores the previous verified backup and says so.
4. Row counts and per-table checksums are compared with the manifest while the data is still in the
   private database: a difference fails the restore before the target is touched (F17).
5. One atomic RENAME TABLE moves every table into the target (an existing target's tables move out
   to a scratch database in the same statement, with --replace). Views, triggers, routines and events
   are then created in the target: after the data, so no trigger fires during the load.
6. A row in `_multicloud_dr.restores` records each step (loading, swapping, swapped, then complete; failed or
   broken when it stopped); only `complete` means the database is usable (`check_usable`, which the
   failover gate asks). A restore killed at any point leaves either the old target, or a target marked
   incomplete that a re-run replaces (with or without --replace); a re-run always starts from a clean
   private database.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import re
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pymysql
import zstandard
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from multicloud_dr.backup import source as src
from multicloud_dr.backup.codec import Decompressor
from multicloud_dr.backup.layout import BackupLayout, StorageUrl
from multicloud_dr.backup.lease import BackupLease
from multicloud_dr.backup.manifest import Manifest, Segment, StoredObject
from multicloud_dr.backup.scan import DumpScanner
from multicloud_dr.backup.store import BackupStore, ManifestRecord
from multicloud_dr.backup.verify import LATEST, record_failed_read, resolve_backup
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import DrError, InputError
from multicloud_dr.progress import MB, Progress
from multicloud_dr.restore.load_data import LoadDataSwitch, LoadPlan, RowsConnection, load_rows, plan_for
from multicloud_dr.restore.statements import (
    DATA,
    POST,
    SESSION,
    SKIP,
    TABLE,
    Statement,
    check_values,
    defer_secondary_keys,
    split,
)
from multicloud_dr.restore.target_lock import TargetLock
from multicloud_dr.sql import quote_identifier as _q

log = logging.getLogger(__name__)

STATE_DB = "_multicloud_dr"
USABLE = "complete"
# What loading a table section costs the target server, roughly: per row, and per byte of SQL (measured on
# the restore benchmark's tables: about 9 us a row and 12 ms a MB). The rows matter more: a section of
# BLOBs four times the bytes of a log table costs less. Rows per section come from the manifest.
ROW_COST = 9e-6
BYTE_COST = 12e-9
BYTES_PER_ROW_UNKNOWN = 200   # when the manifest cannot say which table a section holds
# A section below this much SQL never loads on a second connection.
SHARED_SEGMENT = 64 * MB
# Test-only: the F18 tests stop a restore at a named point to kill it there. With MCDR_TEST_PAUSE_AT=<point>
# and MCDR_TEST_PAUSE_FILE=<path>, the restore creates <path>.paused at that point and waits until <path>
# exists. Nothing sets these outside the tests; unset, `_test_pause` returns at once.
TEST_PAUSE_AT, TEST_PAUSE_FILE = "MCDR_TEST_PAUSE_AT", "MCDR_TEST_PAUSE_FILE"


class RestoreError(DrError):
    """The restore failed; the target database was not replaced."""


class BackupDamagedError(RestoreError):
    """The backup's objects are not what its manifest says (SHA-256, size) or are gone: damaged after it was
    verified (F28). Found before the swap: the target is untouched."""


class TargetNotEmptyError(InputError):
    """The target database has tables and --replace was not given."""


class RestoreNotUsableError(InputError):
    """The database was not left `complete` by a restore: it must not be failed over to."""


@dataclass
class RestoreRequest:
    target: Endpoint
    database: str                 # the target database's name
    jobs: int = 4
    replace: bool = False
    binlog: bool = False          # write the restore to the target's binlog (off: faster, where permitted)
    load_data: bool = True        # rows by LOAD DATA LOCAL where a table allows it (INSERT if the server refuses)
    lease_seconds: int = 60
    # Point-in-time recovery (restore/pitr.py): the archived binlogs replayed onto the backup up to this time
    # (exclusive, whole seconds) or GTID (inclusive), before the swap.
    until: datetime | None = None
    until_gtid: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise InputError(f"jobs (parallel loading connections) must be 1 or more, got {self.jobs!r}")


@dataclass
class RestoreResult:
    database: str
    manifest: str
    seconds: float
    tables: int
    rows: int
    bytes: int                    # compressed bytes read from storage
    bytes_raw: int
    verified: bool
    checks: dict = field(default_factory=dict)
    # Newer backups that were damaged, so the restore of "latest" fell back past them: {"manifest", "reason"}.
    fell_back_from: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"database": self.database, "manifest": self.manifest, "seconds": round(self.seconds, 3),
                "tables": self.tables, "rows": self.rows, "bytes": self.bytes, "bytes_raw": self.bytes_raw,
                "verified": self.verified, "checks": self.checks, "fell_back_from": self.fell_back_from}

    def summary(self) -> str:
        rate = self.rows / self.seconds if self.seconds else 0
        text = (f"restore {self.manifest} -> {self.database}: {self.tables} tables, {self.rows:,} rows, "
                f"{self.bytes_raw / MB:.1f} MB of SQL in {self.seconds:.1f} s ({rate:,.0f} rows/s, "
                f"{self.bytes_raw / MB / self.seconds if self.seconds else 0:.1f} MB/s), "
                f"verified={self.verified}")
        if self.fell_back_from:
            text += (f"; fell back past {len(self.fell_back_from)} damaged newer backup(s): "
                     + ", ".join(d["manifest"] for d in self.fell_back_from))
        return text


@dataclass
class _Loaded:
    """What loading tables and rows into the private database left for the steps after it."""

    post: list[bytes]                              # post-data statements (with their SET context), in dump order
    binlog_off: bool
    verified: dict[str, tuple[int, int]]           # tables already re-read: rows and CRC-32
    load_data_tables: list[str] = field(default_factory=list)   # tables whose rows went by LOAD DATA


def scratch_name(database: str, kind: str) -> str:
    return f"_mcdr_{kind}_{hashlib.sha1(database.encode()).hexdigest()[:12]}"  # noqa: S324 (a name, not security)


def _connect(endpoint: Endpoint, database: str | None = None, rows: bool = False) -> pymysql.connections.Connection:
    """rows: a connection that can also load rows with LOAD DATA (from memory, see load_data)."""
    return src.connect(endpoint, database, read_timeout=3600, write_timeout=3600,
                       **({"factory": RowsConnection} if rows else {}))


def _test_pause(point: str) -> None:
    """Test-only (see TEST_PAUSE_AT): wait here for the test that asked for it."""
    if os.environ.get(TEST_PAUSE_AT) != point:
        return
    release = Path(os.environ[TEST_PAUSE_FILE])
    release.with_name(release.name + ".paused").touch()
    while not release.exists():
        time.sleep(0.05)


class _State:
    """The restore's bookkeeping row on the target server."""

    def __init__(self, endpoint: Endpoint, database: str, manifest: str) -> None:
        self.endpoint, self.database, self.manifest = endpoint, database, manifest
        with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {STATE_DB}")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {STATE_DB}.restores (database_name VARCHAR(64) PRIMARY KEY, "
                        "manifest VARCHAR(1024) NOT NULL, status VARCHAR(16) NOT NULL, detail TEXT, "
                        "started_at DATETIME(6) NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB")

    def previous(self) -> str | None:
        with contextlib.closing(_connect(self.endpoint)) as conn, conn.cursor() as cur:
            cur.execute(f"SELECT status FROM {STATE_DB}.restores WHERE database_name = %s", (self.database,))
            row = cur.fetchone()
        return row[0] if row else None

    def set(self, status: str, detail: str = "") -> None:
        with contextlib.closing(_connect(self.endpoint)) as conn, conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {STATE_DB}.restores VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)) "
                "ON DUPLICATE KEY UPDATE manifest=VALUES(manifest), status=VALUES(status), detail=VALUES(detail), "
                "updated_at=UTC_TIMESTAMP(6), started_at=IF(VALUES(status)='loading', UTC_TIMESTAMP(6), started_at)",
                (self.database, self.manifest, status, detail[:60000]))


def restore_status(endpoint: Endpoint, database: str) -> dict | None:
    """What the last restore into `database` on this server left: the failover gate's question."""
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
        try:
            cur.execute(f"SELECT * FROM {STATE_DB}.restores WHERE database_name = %s", (database,))
        except pymysql.err.ProgrammingError:
            return None
        return cur.fetchone()


def check_usable(endpoint: Endpoint, database: str) -> dict:
    """The last restore into `database` completed (its row says `complete`); else RestoreNotUsableError.
    A restore that stopped anywhere (killed, failed, before or after its swap) never reads as usable."""
    status = restore_status(endpoint, database)
    if status is None:
        raise RestoreNotUsableError(f"no restore into {database} is recorded on {endpoint.describe()}: restore a "
                                    f"backup into it first")
    if status["status"] != USABLE:
        raise RestoreNotUsableError(
            f"the last restore into {database} on {endpoint.describe()} did not complete (it is "
            f"{status['status']}, since {status['updated_at']}): the database is not usable; run the restore "
            f"again (drctl restore --from {status['manifest']} --database {database})")
    return status


class _CorruptStream(RestoreError):
    """What was read does not decompress as the manifest describes (`_BackupReader.confirm_intact` then says
    whether the stored bytes differ from the manifest's SHA-256: a damaged backup)."""


class _BackupReader:
    """The backup's objects as a restore reads them, checked against the manifest while they stream (F28).

    Before anything is written on the target, every object must be there with its manifest size; every
    read after that is conditional on the ETag seen then (all of them read the same bytes). The bytes must
    hash to the object's SHA-256 before the swap. A restore of one stream hashes what it loads. A restore
    by segments reads them out of order, several at once, and SHA-256 needs them in order: one more reader
    streams each object in order alongside the load, for its hash only. That costs the storage a second
    read of the compressed bytes (a seventh of the SQL), and the target server nothing."""

    def __init__(self, store: BackupStore, manifest: Manifest, progress: Progress) -> None:
        self.store, self.manifest, self.progress = store, manifest, progress
        self.lock = threading.Lock()
        self.bytes = 0          # compressed bytes read for the load
        self.raw = 0            # SQL they decompressed to
        self._etags: dict[str, str] = {}
        self._hasher: threading.Thread | None = None
        self._hash_error: BaseException | None = None
        self._stop = threading.Event()

    def check_objects(self) -> None:
        for obj in self.manifest.objects:
            try:
                props = self.store.blob(StorageUrl.parse(obj.name)).get_blob_properties()
            except ResourceNotFoundError:
                raise BackupDamagedError(f"{obj.name} is missing from storage (the manifest lists it)") from None
            if props.size != obj.bytes:
                raise BackupDamagedError(f"{obj.name} is {props.size:,} bytes in storage, the manifest says "
                                         f"{obj.bytes:,}")
            self._etags[obj.name] = props.etag

    def _chunks(self, obj: StoredObject, **ranged) -> Iterator[bytes]:
        try:
            download = self.store.blob(StorageUrl.parse(obj.name)).download_blob(
                etag=self._etags[obj.name], match_condition=MatchConditions.IfNotModified, **ranged)
            yield from download.chunks()
        except ResourceNotFoundError:
            raise BackupDamagedError(f"{obj.name} disappeared from storage while it was being read") from None
        except ResourceModifiedError:
            raise BackupDamagedError(f"{obj.name} was rewritten in storage while it was being read") from None

    def _count(self, stored: int = 0, raw: int = 0) -> None:
        with self.lock:
            self.bytes += stored
            self.raw += raw
            self.progress.update(self.raw)

    @staticmethod
    def _compare(obj: StoredObject, sha256: str, size: int) -> None:
        if size != obj.bytes or sha256 != obj.sha256:
            raise BackupDamagedError(f"{obj.name}: the {size:,} bytes read hash to SHA-256 {sha256}, the manifest "
                                     f"says {obj.sha256} ({obj.bytes:,} bytes): the backup was damaged after it "
                                     f"was verified")

    # -- one stream: hashed as it loads ----------------------------------------------------------------------
    def stream_statements(self) -> Iterator[Statement]:
        for obj in self.manifest.objects:
            yield from split(self._stream_of(obj), where=obj.name)

    def _stream_of(self, obj: StoredObject) -> Iterator[bytes]:
        decomp = Decompressor(self.manifest.codec)
        sha = hashlib.sha256()
        size = 0
        corrupt: str | None = None
        for chunk in self._chunks(obj, max_concurrency=2):
            sha.update(chunk)
            size += len(chunk)
            self._count(stored=len(chunk))
            if corrupt:
                continue   # read on to the end: the hash says whether the stored bytes are the backup's
            try:
                for out in decomp.pieces(chunk):
                    self._count(raw=len(out))
                    yield out
            except (zstandard.ZstdError, zlib.error) as err:
                corrupt = f"{obj.name} does not decompress: {err}"
        self._compare(obj, sha.hexdigest(), size)
        if corrupt or not decomp.finished():
            raise _CorruptStream(corrupt or f"{obj.name} ends early (truncated)")

    # -- segments: read out of order, hashed by a reader of their own -------------------------------------
    def segment_statements(self, obj: StoredObject, index: int, segment: Segment) -> Iterator[Statement]:
        """The statements of one segment (one zstd frame), read with a ranged read and decompressed alone."""
        where = f"{obj.name} (section {index}, from byte {sum(s.raw_bytes for s in obj.segments[:index]):,} of its SQL)"
        return split(_read_ahead(self._segment_of(obj, segment)), where=where if index else obj.name)

    def _segment_of(self, obj: StoredObject, segment: Segment) -> Iterator[bytes]:
        decomp = Decompressor(self.manifest.codec)
        raw = 0
        for chunk in self._chunks(obj, offset=segment.offset, length=segment.bytes):
            self._count(stored=len(chunk))
            try:
                for out in decomp.pieces(chunk):   # what waits in the read-ahead queue stays ~10 MB a piece
                    raw += len(out)
                    self._count(raw=len(out))
                    yield out
            except (zstandard.ZstdError, zlib.error) as err:
                raise _CorruptStream(f"{obj.name} does not decompress at its segment {segment.offset}: {err}") from None
        if not decomp.finished() or raw != segment.raw_bytes or len(decomp.frame_starts) != 1:
            raise _CorruptStream(f"{obj.name}: the segment at {segment.offset} is not the single complete frame of "
                                 f"{segment.raw_bytes} bytes the manifest describes")

    def _hash_all(self) -> None:
        """Read every object in order and compare its SHA-256 and size with the manifest (until stop())."""
        for obj in self.manifest.objects:
            sha = hashlib.sha256()
            size = 0
            for chunk in self._chunks(obj, max_concurrency=2):
                if self._stop.is_set():
                    return
                sha.update(chunk)
                size += len(chunk)
            self._compare(obj, sha.hexdigest(), size)

    def start_hashing(self, on_damage: threading.Event) -> None:
        """Hash every object in order on a thread of its own; `on_damage` is set if one differs."""
        def run() -> None:
            try:
                self._hash_all()
            except BaseException as err:  # raised by finish_hashing()
                self._hash_error = err
                on_damage.set()

        self._hasher = threading.Thread(target=run, name="restore-sha256", daemon=True)
        self._hasher.start()

    def confirm_intact(self) -> None:
        """After a failed load: raise BackupDamagedError if the objects' bytes differ from the manifest (the
        hashing reader's verdict, or one read of each object when there is none); any other trouble with
        that check is left to the failure being raised."""
        try:
            if self._hasher is not None:
                self.finish_hashing()
            else:
                self._hash_all()
        except BackupDamagedError:
            raise
        except Exception as err:  # the load's own failure is what gets reported
            log.debug("could not re-check the backup's hashes after the failed load: %s", err)

    def damage_found(self) -> BaseException | None:
        """The hashing reader's error so far, without waiting for it."""
        return self._hash_error

    def finish_hashing(self) -> None:
        """Wait for the hashing reader; raise what it found."""
        if self._hasher is not None:
            self._hasher.join()
        if self._hash_error is not None:
            raise self._hash_error

    def stop(self) -> None:
        self._stop.set()
        if self._hasher is not None:
            self._hasher.join(timeout=30)


def _read_ahead(items, depth: int = 4):
    """The items of an iterator, produced by a thread of their own up to `depth` ahead: downloading and
    decompressing the next chunks overlaps with loading this one (both release the GIL)."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as err:  # handed to the consumer
            box.put(err)

    thread = threading.Thread(target=produce, name="restore-read", daemon=True)
    thread.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _load_error(err: BaseException) -> BaseException:
    return err if isinstance(err, DrError) else RestoreError(f"loading rows failed: {err}")


class _Loader:
    """INSERT statements spread over `jobs` connections, each with the dump's session settings.

    Rows of a table with a primary key may arrive in any order (InnoDB keeps them in key order).
    A table without one keeps its rows in insertion order, and the dump reads them back in that
    order: its statements all go to one connection, in order, so the restored table reads the same.
    """

    def __init__(self, endpoint: Endpoint, database: str, jobs: int, session: list[bytes], binlog: bool,
                 rows: bool = False) -> None:
        self.queues: list[queue.Queue[tuple[bytes, LoadPlan | None] | None]] = [queue.Queue(maxsize=2)
                                                                                for _ in range(jobs)]
        self.error: BaseException | None = None
        self.binlog_off = False
        self.threads = []
        self.conns = []
        self._next = 0
        for work in self.queues:
            conn = _connect(endpoint, database, rows=rows)
            conn.autocommit(True)
            for sql in session:
                conn.query(sql)
            conn.query("SET unique_checks = 0, foreign_key_checks = 0")
            if not binlog:
                try:
                    conn.query("SET sql_log_bin = 0")
                    self.binlog_off = True
                except pymysql.err.OperationalError:  # no privilege: the load is binlogged, just slower
                    pass
            self.conns.append(conn)
            thread = threading.Thread(target=self._work, args=(conn, work), daemon=True, name="restore-load")
            thread.start()
            self.threads.append(thread)

    def _work(self, conn, work: queue.Queue) -> None:
        while (item := work.get()) is not None:
            if self.error is None:
                try:
                    _insert(conn, *item)
                except BaseException as err:  # reported by put()/finish()
                    self.error = err

    def put(self, sql: bytes, ordered_key: str | None = None) -> None:
        """Queue one INSERT; statements with the same `ordered_key` run in order on one connection."""
        if self.error is not None:
            raise _load_error(self.error)
        if ordered_key is not None:
            index = zlib.crc32(ordered_key.encode()) % len(self.queues)
        else:
            index = self._next
            self._next = (self._next + 1) % len(self.queues)
        self.queues[index].put((sql, None))

    def offer(self, sql: bytes, plan: LoadPlan | None = None) -> bool:
        """Queue one INSERT (its rows loaded by `plan`, if any) if a connection has room for it now; False
        if all are busy."""
        if self.error is not None:
            raise _load_error(self.error)
        for work in self.queues:
            try:
                work.put_nowait((sql, plan))
                return True
            except queue.Full:
                continue
        return False

    def finish(self) -> None:
        for work in self.queues:
            work.put(None)
        for thread in self.threads:
            thread.join()
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()
        if self.error is not None:
            raise _load_error(self.error)

    def abort(self) -> None:
        self.error = self.error or RestoreError("aborted")
        for work in self.queues:
            with contextlib.suppress(queue.Empty):
                while True:
                    work.get_nowait()
            with contextlib.suppress(queue.Full):
                work.put_nowait(None)
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()


def _insert(conn, sql: bytes, plan: LoadPlan | None = None, attempts: int = 6) -> None:
    """One INSERT, or its rows with LOAD DATA by `plan` (autocommit: all or nothing). An INSERT that goes
    as SQL must hold literal values only (statements.check_values). MariaDB loads the first rows into an
    empty table with unique and foreign-key checks off under a table lock, so two connections starting on
    the same empty table can deadlock (1213): the loser's statement was rolled back whole and is simply
    re-run."""
    if plan is None:
        check_values(sql)
    for attempt in range(1, attempts + 1):
        try:
            if plan is None:
                conn.query(sql)
            else:
                load_rows(conn, sql, plan)
            return
        except pymysql.err.OperationalError as err:
            if err.args[0] not in (1213, 1205) or attempt == attempts:
                raise
            log.info("INSERT hit %s (attempt %d/%d): re-running it", err.args[1], attempt, attempts)
            time.sleep(0.05 * attempt)


def _table_names(cur, database: str, kind: str = "BASE TABLE") -> list[str]:
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = %s "
                "ORDER BY table_name", (database, kind))
    return [r[0] for r in cur.fetchall()]


def _object_counts(cur, database: str) -> dict[str, int]:
    counts = {}
    for name, query in (
        ("views", "SELECT COUNT(*) FROM information_schema.views WHERE table_schema = %s"),
        ("triggers", "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = %s"),
        ("routines", "SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s"),
        ("events", "SELECT COUNT(*) FROM information_schema.events WHERE event_schema = %s"),
    ):
        cur.execute(query, (database,))
        counts[name] = cur.fetchone()[0]
    return counts


def _expected_objects(post: list[bytes]) -> dict[str, int]:
    """Objects the dump creates (placeholder views are replaced by the final ones: count names)."""
    views = set(re.findall(rb"VIEW `((?:[^`]|``)+)` AS", b"\n".join(post)))
    kinds = Counter()
    for sql in post:
        head = sql[:400]
        if re.search(rb"\*/ /\*!50003 TRIGGER |^CREATE\s+(?:DEFINER=\S+\s+)?TRIGGER ", head):
            kinds["triggers"] += 1
        elif re.search(rb"\*/ /\*!50106 EVENT |^CREATE\s+(?:DEFINER=\S+\s+)?EVENT ", head):
            kinds["events"] += 1
        elif re.search(rb"^CREATE\s+(?:DEFINER=\S+\s+)?(?:PROCEDURE|FUNCTION) ", head):
            kinds["routines"] += 1
    return {"views": len(views), "triggers": kinds["triggers"], "routines": kinds["routines"],
            "events": kinds["events"]}


def _dump_groups(endpoint: Endpoint, database: str, jobs: int) -> list[list[str]]:
    """The database's tables in `jobs` groups of about equal size (largest first, to the lightest group)."""
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name, data_length FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE' ORDER BY data_length DESC, table_name", (database,))
        tables = cur.fetchall()
    groups: list[tuple[int, list[str]]] = [(0, []) for _ in range(max(1, min(jobs, len(tables))))]
    for name, size in tables:
        groups.sort(key=lambda g: g[0])
        total, names = groups[0]
        groups[0] = (total + (size or 0), [*names, name])
    return [names for _, names in groups if names]


def _dump_checksums(binary: str, cnf, database: str, tables: list[str]) -> dict[str, tuple[int, int]]:
    """Rows and CRC-32 of some tables, as the backup computed them: the same dump command (the options that
    decide how rows are written come from one place, source.dump_command), the same scanner (a table's
    data section does not depend on the other tables in the dump)."""
    scanner = DumpScanner()
    argv = src.dump_command(binary, cnf, database, tables, options=("--no-create-info", "--skip-triggers"))
    with tempfile.TemporaryFile() as err:
        proc = src.start_dump(argv, err)
        try:
            for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
                scanner.feed(chunk)
        except BaseException:
            proc.kill()   # stopping part-way: the dump must not outlive the re-read
            raise
        finally:
            code = proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        if code != 0:
            err.seek(0)
            raise RestoreError(f"re-reading {database} for verification failed: {err.read().decode()[-500:]}")
    return {name: (t.rows, t.crc32) for name, t in scanner.finish().tables.items()}


def _checksums(endpoint: Endpoint, database: str, jobs: int = 2,
               tables: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Row counts and CRC-32s of a database's tables (all, or the ones named), `jobs` dumps side by side."""
    binary, _ = src.dump_binary()
    groups = _dump_groups(endpoint, database, jobs)
    if tables is not None:
        groups = [kept for group in groups if (kept := [t for t in group if t in tables])]
    results: dict[str, tuple[int, int]] = {}
    errors: list[BaseException] = []

    def dump(group: list[str], cnf) -> None:
        try:
            results.update(_dump_checksums(binary, cnf, database, group))
        except BaseException as err:  # raised below
            errors.append(err)

    with src.option_file(endpoint) as cnf:
        threads = [threading.Thread(target=dump, args=(group, cnf), name="restore-verify") for group in groups]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def _verify_tables(endpoint: Endpoint, database: str, manifest: Manifest,
                   verified: dict[str, tuple[int, int]] | None = None) -> dict:
    """Compare every table's rows and checksum with the manifest. `verified`: tables already re-read
    (right after each finished loading); the others, and any table the backup does not have, are
    re-read now."""
    got = dict(verified or {})
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        present = _table_names(cur, database)
    unread = [t for t in present if t not in got]
    if unread:
        got.update(_checksums(endpoint, database, tables=unread))
    problems = []
    for name, entry in manifest.tables.items():
        rows, crc = got.get(name, (None, None))
        if rows != entry.rows:
            problems.append(f"{name}: {rows} rows restored, {entry.rows} in the backup")
        elif f"{crc:08x}" != entry.crc32:
            problems.append(f"{name}: checksum {crc:08x} differs from the backup's {entry.crc32}")
    extra = sorted(set(got) - set(manifest.tables))
    if extra:
        problems.append(f"tables not in the backup: {', '.join(extra)}")
    if problems:
        raise RestoreError("the restored data differs from the backup: " + "; ".join(problems[:20]))
    return {"tables": len(got), "rows": sum(r for r, _ in got.values()), "checksums": "equal"}


def _section_costs(manifest: Manifest, work: list) -> dict[tuple[str, int], float]:
    """Estimated load cost of each table section in `work` ((object, index, segment) triples). The dump
    ends a frame before every table's section, so a single object's segments after the header are the
    manifest's tables in order; otherwise rows are estimated from the bytes."""
    rows: dict[tuple[str, int], int] = {}
    if len(manifest.objects) == 1 and len(manifest.objects[0].segments) == len(manifest.tables) + 1:
        name = manifest.objects[0].name
        rows = {(name, index): entry.rows for index, entry in enumerate(manifest.tables.values(), start=1)}
    return {(obj.name, index): rows.get((obj.name, index), segment.raw_bytes // BYTES_PER_ROW_UNKNOWN) * ROW_COST
            + segment.raw_bytes * BYTE_COST for obj, index, segment in work}


def _shared_sections(costs: dict[tuple[str, int], float], sizes: dict[tuple[str, int], int],
                     jobs: int) -> set[tuple[str, int]]:
    """Sections that may also load on a second connection (if the table has a primary key): only the
    costliest, and only if it is more than a fair share of the whole load, so it would otherwise finish
    alone at the end. A second connection on any other table only takes CPU from the one that does."""
    if not costs or jobs < 2:
        return set()
    costliest = max(costs, key=costs.__getitem__)
    if costs[costliest] > sum(costs.values()) / jobs and sizes[costliest] >= SHARED_SEGMENT:
        return {costliest}
    return set()


@dataclass
class _Section:
    """One table's section of the dump (a segment of an object, a zstd frame of its own), to load."""

    obj: StoredObject
    index: int
    segment: Segment
    cost: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.obj.name, self.index)


@dataclass
class _Unfinished:
    """A loaded section whose secondary keys and re-read are still to do."""

    cost: float
    created: list[str]                                  # the tables its CREATE TABLEs made
    deferred_keys: list[tuple[str, list[bytes]]]        # their secondary and foreign keys, added after the rows


class _SegmentLoad:
    """Tables and rows into `database`, several tables at once: each section (one table's part of the
    dump, a frame of its own) is read, decompressed and loaded by one of `jobs` connections, the costliest
    first. Loading different tables side by side is what scales; connections appending to the same table
    mostly wait on each other. A table's rows stay in dump order (tables without a primary key read back
    the same). `run()` returns the post-data statements in dump order, as `_load` does.

    The workers share the schedule (`pending`, `unfinished`) and the results (`post_of`, `verified`,
    `foreign_keys`) under `lock`; `failed` stops them all (a worker's error, the hashing reader's, the
    lease's)."""

    def __init__(self, request: RestoreRequest, reader: _BackupReader, database: str, lease: BackupLease) -> None:
        self.request, self.reader, self.database, self.lease = request, reader, database, lease
        manifest = reader.manifest
        work = [(obj, index, segment) for obj in manifest.objects for index, segment in enumerate(obj.segments)]
        self.header: tuple[StoredObject, int, Segment] = work[0]
        costs = _section_costs(manifest, work[1:])
        self.shared = _shared_sections(costs, {(o.name, i): s.raw_bytes for o, i, s in work[1:]}, request.jobs)
        self.order = [(obj.name, index) for obj, index, _ in work[1:]]    # dump order, for the post statements
        self.lock = threading.Lock()
        self.pending = sorted((_Section(o, i, s, costs[(o.name, i)]) for o, i, s in work[1:]), key=lambda s: -s.cost)
        self.unfinished: list[_Unfinished] = []     # costliest first
        self.session: list[bytes] = []              # the dump header's settings: every section starts from them
        self.header_post: list[bytes] = []
        self.post_of: dict[tuple[str, int], list[bytes]] = {}
        self.verified: dict[str, tuple[int, int]] = {}
        self.foreign_keys: list[tuple[str, bytes]] = []
        self.failed = threading.Event()
        self.errors: list[BaseException] = []
        self.binlog_off = False
        self.load_data = LoadDataSwitch(enabled=request.load_data)
        self.binary = ""
        self.cnf: Path | None = None

    def run(self) -> _Loaded:
        self.reader.start_hashing(self.failed)
        self._load_header()
        self.binary, _ = src.dump_binary()
        threads = [threading.Thread(target=self._worker, name="restore-load", daemon=True)
                   for _ in range(max(1, min(self.request.jobs, len(self.pending))))]
        with src.option_file(self.request.target) as cnf:
            self.cnf = cnf
            for thread in threads:
                thread.start()
            try:
                while alive := [t for t in threads if t.is_alive()]:
                    alive[0].join(timeout=1)
                    self.lease.check()
            except BaseException:
                self.failed.set()
                for thread in threads:
                    thread.join(timeout=30)
                raise
        if self.errors:
            raise _load_error(self.errors[0])
        if (damage := self.reader.damage_found()) is not None:
            raise damage
        self._add_foreign_keys()
        post = self.header_post + [sql for key in self.order for sql in self.post_of.get(key, [])]
        return _Loaded(post, self.binlog_off, self.verified, sorted(self.load_data.tables))

    def _load_header(self) -> None:
        obj, index, segment = self.header
        with contextlib.closing(_connect(self.request.target, self.database)) as main:
            main.query("SET unique_checks = 0, foreign_key_checks = 0")
            for statement in self.reader.segment_statements(obj, index, segment):
                if statement.kind == SESSION:
                    self.session.append(statement.sql)
                    main.query(statement.sql)
                    self.header_post.append(statement.sql)
                elif statement.kind == TABLE:
                    main.query(statement.sql)
                elif statement.kind == DATA:
                    _insert(main, statement.sql)
                elif statement.kind == POST:
                    self.header_post.append(statement.sql)

    def _worker(self) -> None:
        conn = None
        try:
            conn = _connect(self.request.target, self.database, rows=True)
            if not self.request.binlog:
                try:
                    conn.query("SET sql_log_bin = 0")
                    self.binlog_off = True
                except pymysql.err.OperationalError:  # no privilege: the load is binlogged, just slower
                    pass
            while not self.failed.is_set():
                with self.lock:
                    if self.pending:
                        section, waiting = self.pending.pop(0), None
                    elif self.unfinished:
                        section, waiting = None, self.unfinished.pop(0)
                    else:
                        return
                if waiting is not None:
                    self._finish(conn, waiting)
                    continue
                loaded = self._load_section(conn, section)
                if loaded is None:
                    return
                # Building the secondary keys and re-reading the rows can wait while other sections still
                # load: the load of the costliest table, started first, is what sets the restore's time, and
                # it goes faster with fewer others on the CPUs. Workers with no section left to load take
                # the waiting work, next to the last loads, where a CPU would otherwise idle.
                with self.lock:
                    if self.pending:
                        self.unfinished.append(loaded)
                        self.unfinished.sort(key=lambda job: -job.cost)
                        continue
                self._finish(conn, loaded)
        except BaseException as err:  # raised by run()
            self.errors.append(err)
            self.failed.set()
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _load_section(self, conn, section: _Section) -> _Unfinished | None:
        """One section's tables and rows; None if the load was stopped meanwhile."""
        # Every section starts from the dump header's session (the last one ends by restoring the server's
        # settings, foreign-key checks included, which must not leak into the next table).
        for sql in self.session:
            conn.query(sql)
        conn.query("SET unique_checks = 0, foreign_key_checks = 0")
        post: list[bytes] = []
        loaded = _Unfinished(section.cost, [], [])
        section_session = list(self.session)
        keyed = rows_loaded = False
        rows_plan: LoadPlan | None = None
        helper: _Loader | None = None
        began = time.monotonic()
        try:
            for statement in self.reader.segment_statements(section.obj, section.index, section.segment):
                if self.failed.is_set():
                    return None
                if statement.kind == DATA:
                    if not rows_loaded:
                        rows_plan = self._first_load(conn, statement.sql, statement.table)
                        rows_loaded = True
                        continue
                    # The costliest table, if it has a primary key, also loads on a second connection (rows
                    # may land in any order); the first INSERT went alone, into the empty table.
                    if helper is None and keyed and section.key in self.shared:
                        helper = _Loader(self.request.target, self.database, 1, section_session, self.request.binlog,
                                         rows=rows_plan is not None)
                    if helper is None or not helper.offer(statement.sql, rows_plan):
                        _insert(conn, statement.sql, rows_plan)
                elif statement.kind == TABLE:
                    sql = statement.sql
                    if sql.lstrip().startswith(b"CREATE TABLE") and statement.table:
                        loaded.created.append(statement.table)
                        keyed = b"PRIMARY KEY" in sql
                        sql, later = defer_secondary_keys(sql)
                        if later:
                            loaded.deferred_keys.append((statement.table, later))
                    conn.query(sql)
                elif statement.kind == SESSION:
                    conn.query(statement.sql)
                    section_session.append(statement.sql)
                    post.append(statement.sql)
                elif statement.kind == POST:
                    post.append(statement.sql)
            if helper is not None:
                helper.finish()
                helper = None
        finally:
            if helper is not None:
                helper.abort()
        with self.lock:
            self.post_of[section.key] = post
        log.debug("section %d (%.1f MB of SQL) loaded in %.1f s", section.index, section.segment.raw_bytes / MB,
                  time.monotonic() - began)
        return loaded

    def _first_load(self, conn, sql: bytes, table: str | None) -> LoadPlan | None:
        """A table's first INSERT, its rows by LOAD DATA where the table allows it and the server permits
        it; returns how the table's other statements load (None: as INSERTs)."""
        how = plan_for(conn, self.database, table, sql) if self.load_data.enabled and table is not None else None
        try:
            _insert(conn, sql, how)
        except pymysql.err.MySQLError as err:
            if how is None or not self.load_data.refused(err):
                raise
            log.warning("the target refuses LOAD DATA LOCAL (%s): loading with INSERT statements, which costs "
                        "the server more CPU; set local_infile=ON on the server for faster restores", err.args[-1])
            _insert(conn, sql)
            return None
        if how is not None:
            self.load_data.loaded(how.table)
        return how

    def _finish(self, conn, loaded: _Unfinished) -> None:
        """A loaded section's secondary keys, built by sorting, and the re-read of its rows for verification,
        side by side (the re-read reads rows only, which the index build does not change)."""
        began = time.monotonic()
        reread: dict = {}

        def reread_rows() -> None:
            try:
                reread["sums"] = _dump_checksums(self.binary, self.cnf, self.database, loaded.created)
            except BaseException as err:  # raised below
                reread["error"] = err

        reader = threading.Thread(target=reread_rows, name="restore-verify", daemon=True) if loaded.created else None
        if reader is not None:
            reader.start()
        try:
            for table, definitions in loaded.deferred_keys:
                # Foreign keys wait until every table exists (an ALTER cannot point one at a table another
                # connection has not created yet).
                keys = [d for d in definitions if not d.startswith(b"CONSTRAINT ")]
                if keys:
                    conn.query(f"ALTER TABLE {_q(table)} ".encode() + b", ".join(b"ADD " + d for d in keys))
                with self.lock:
                    self.foreign_keys.extend((table, d) for d in definitions if d.startswith(b"CONSTRAINT "))
        finally:
            if reader is not None:
                reader.join()
        if "error" in reread:
            raise reread["error"]
        with self.lock:
            self.verified.update(reread.get("sums", {}))
        log.debug("%s indexed and re-read in %.1f s", ", ".join(loaded.created), time.monotonic() - began)

    def _add_foreign_keys(self) -> None:
        if not self.foreign_keys:
            return
        with contextlib.closing(_connect(self.request.target, self.database)) as conn:
            conn.query("SET foreign_key_checks = 0")   # the rows are the source's: nothing to check
            for table in dict.fromkeys(t for t, _ in self.foreign_keys):
                conn.query(f"ALTER TABLE {_q(table)} ".encode()
                           + b", ".join(b"ADD " + d for t, d in self.foreign_keys if t == table))


def _load(request: RestoreRequest, reader: _BackupReader, database: str, lease: BackupLease) -> _Loaded:
    """Tables and rows into `database` from one stream, by INSERT; no table re-read yet (`_verify_tables`
    re-reads them all)."""
    post: list[bytes] = []
    session: list[bytes] = []
    loader: _Loader | None = None
    without_key: set[str] = set()
    main = _connect(request.target, database)
    try:
        main.query("SET unique_checks = 0, foreign_key_checks = 0")
        for statement in reader.stream_statements():
            kind = statement.kind
            if kind == DATA:
                if loader is None:
                    loader = _Loader(request.target, database, request.jobs, session, request.binlog)
                table = statement.table or ""
                loader.put(statement.sql, ordered_key=table if table in without_key else None)
                lease.check()
            elif kind == TABLE:
                if statement.sql.lstrip().startswith(b"CREATE TABLE") and b"PRIMARY KEY" not in statement.sql:
                    without_key.add(statement.table or "")
                main.query(statement.sql)
            elif kind == SESSION:
                if loader is None:
                    session.append(statement.sql)
                main.query(statement.sql)
                post.append(statement.sql)
            elif kind == POST:
                post.append(statement.sql)
            elif kind != SKIP:
                raise AssertionError(kind)
        if loader is not None:
            loader.finish()
        return _Loaded(post, bool(loader and loader.binlog_off), {})
    except BaseException:
        if loader is not None:
            loader.abort()
        raise
    finally:
        with contextlib.suppress(Exception):
            main.close()


def restore_backup(request: RestoreRequest, storage: str | BlobServiceClient, ref: str,
                   location: StorageUrl | str | None = None, source_database: str | None = None) -> RestoreResult:
    """Restore the backup `ref` names: "latest" (the newest verified backup of `source_database`, default the
    target's name, under `location`), falling back to the previous verified one, and the one before, while
    they turn out damaged (F28); or a manifest URL (that backup, and no other). `storage`: the storage
    connection's id or URI (or a client made from one)."""
    choice = resolve_backup(storage, ref, location, source_database or request.database)
    record, fallbacks = choice.record, choice.fallbacks
    if request.until is not None and ref == LATEST:
        # The newest verified backup taken before the point (and the older ones as fallbacks).
        from multicloud_dr.restore.pitr import PointNotCoveredError, utc

        candidates = [r for r in (record, *fallbacks) if utc(r.manifest.started_at) <= request.until]
        if not candidates:
            oldest = (record, *fallbacks)[-1].manifest
            raise PointNotCoveredError(f"no verified backup of {oldest.database} was taken before "
                                       f"{request.until.isoformat()}: the oldest is {oldest.backup_id} "
                                       f"({utc(oldest.started_at).isoformat()})")
        record, fallbacks = candidates[0], tuple(candidates[1:])
    log.info("restoring %s into %s", record.url, request.database)
    return run_restore(request, choice.store, record, fallbacks)


def run_restore(request: RestoreRequest, store: BackupStore, record: ManifestRecord,
                fallbacks: Sequence[ManifestRecord] = ()) -> RestoreResult:
    """Restore `record`'s backup into `request.database`. `fallbacks` (older verified backups, newest first,
    as resolve_backup gives them for "latest") are restored instead, in turn, while the one before turns out
    damaged: its objects differ from its manifest or are gone (BackupDamagedError, found before the swap).
    Each damaged backup is marked failed in its manifest, and the result lists it (`fell_back_from`)."""
    manifest = record.manifest
    if manifest.verification.status != "verified":
        raise InputError(f"{record.url} is {manifest.verification.status}, not verified: verify it first "
                         f"(drctl verify {record.url}) or restore another backup")
    target = request.database
    if len(target) > 64 or "`" in target:
        raise InputError(f"{target!r} is not a usable database name")
    damaged: list[dict] = []
    # Held before anything is written on the target, and until the restore ends (F27).
    with TargetLock(_connect, request.target, target) as target_lock:
        for candidate, older in zip((record, *fallbacks), (*fallbacks, None), strict=True):
            try:
                result = _restore_into(request, store, candidate, target_lock)
            except BackupDamagedError as err:
                _mark_failed(store, candidate, request, err)
                damaged.append({"manifest": str(candidate.url), "reason": str(err)})
                if older is None:
                    if len(damaged) > 1:
                        raise BackupDamagedError(
                            f"every verified backup tried is damaged ({len(damaged)}: "
                            f"{', '.join(d['manifest'] for d in damaged)}); the last: {err}. The target is "
                            f"untouched; look at the storage account, and restore from a copy (drctl backups list)"
                        ) from err
                    raise
                log.warning("backup %s is damaged (%s): falling back to the previous verified backup %s (%s)",
                            candidate.manifest.backup_id, err, older.manifest.backup_id, older.url)
                continue
            result.fell_back_from = damaged
            if damaged:
                log.warning("restored %s, the newest verified backup that is intact: %d newer one(s) are damaged "
                            "(%s)", result.manifest, len(damaged), ", ".join(d["manifest"] for d in damaged))
            return result
    raise AssertionError("unreachable")


def _mark_failed(store: BackupStore, record: ManifestRecord, request: RestoreRequest, err: BackupDamagedError) -> None:
    try:
        record_failed_read(store, record, f"restore into {request.database} on {request.target.describe()}: {err}")
    except (DrError, HttpResponseError) as failure:
        log.warning("could not mark %s failed (%s): it still reads as verified to retention and to other restores "
                    "until `drctl verify %s` runs", record.url, failure, record.url)


def _restore_into(request: RestoreRequest, store: BackupStore, record: ManifestRecord,
                  target_lock: TargetLock) -> RestoreResult:
    manifest = record.manifest
    target = request.database
    loading = scratch_name(target, "restore")
    old = scratch_name(target, "old")
    layout = BackupLayout.from_manifest_url(record.url, manifest.codec)
    progress = Progress(f"restore {manifest.backup_id} -> {target}", manifest.bytes_raw)
    reader = _BackupReader(store, manifest, progress)
    reader.check_objects()   # before anything is written on the target
    pitr = None
    if request.until is not None or request.until_gtid is not None:
        from multicloud_dr.backup.binlog import BinlogArchive
        from multicloud_dr.restore.pitr import plan_replay

        archive = BinlogArchive(store, layout.root, manifest.database)
        pitr = plan_replay(archive, manifest, request.until, request.until_gtid)   # refused here: target untouched
        log.info("point-in-time recovery: %s", pitr.describe())
    state = _State(request.target, target, str(record.url))

    with contextlib.closing(_connect(request.target)) as conn, conn.cursor() as cur:
        existing = _table_names(cur, target) + _table_names(cur, target, "VIEW")
    previous = state.previous()
    # Without --replace a target with tables is refused, unless it holds our own half-restored data
    # (a restore that got to its swap and then stopped): that target is not usable anyway.
    if existing and not request.replace and previous not in ("swapping", "swapped", "broken"):
        raise TargetNotEmptyError(f"database {target} on {request.target.describe()} has {len(existing)} tables/views:"
                                  f" pass --replace to replace it, or restore under another name")

    # Our own lease on the backup, one per target: retention sees the backup in use, and restores of it
    # into other targets are not blocked. (Exclusivity per target is the server-side TargetLock above.)
    holder = hashlib.sha1(f"{request.target.host}:{request.target.port}/{target}".encode()).hexdigest()[:16]  # noqa: S324
    with BackupLease(store.blob(layout.in_use(holder)), duration=request.lease_seconds,
                     purpose=f"restore into {target}") as lease:
        state.set("loading")
        with contextlib.closing(_connect(request.target)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {_q(loading)}")  # a killed earlier run's leftovers
            cur.execute(f"DROP DATABASE IF EXISTS {_q(old)}")
            cur.execute(f"CREATE DATABASE {_q(loading)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        touched = swapped = False
        try:
            segmented = manifest.codec == "zstd" and all(obj.segments for obj in manifest.objects)
            try:
                loaded = (_SegmentLoad(request, reader, loading, lease).run() if segmented
                          else _load(request, reader, loading, lease))
                reader.finish_hashing()   # every byte is the manifest's before anything moves (F28)
            except BackupDamagedError:
                raise
            except Exception:
                # Damaged bytes may fail the load before their hash is known (a frame that does not decompress,
                # a statement cut in two, SQL the server rejects): if they differ from the manifest, say that.
                reader.confirm_intact()
                raise
            finally:
                reader.stop()
            post = loaded.post
            loaded_at = time.monotonic()
            log.info("loaded %s in %.1f s (%s); verifying against the manifest", loading, progress.seconds,
                     f"{len(manifest.objects[0].segments) - 1} table sections side by side" if segmented
                     else "one stream")
            checks = {"load": "segments" if segmented else "stream",
                      "sha256": f"{len(manifest.objects)} object(s) equal to the manifest",
                      "data": _verify_tables(request.target, loading, manifest, loaded.verified)}
            log.info("verified %d tables in %.1f s", checks["data"]["tables"], time.monotonic() - loaded_at)
            if pitr is not None:
                from multicloud_dr.backup.source import option_file
                from multicloud_dr.restore.pitr import replay

                with option_file(request.target) as defaults:
                    checks["point_in_time"] = replay(pitr, archive, defaults, loading,
                                                     disable_log_bin=loaded.binlog_off or (not request.binlog
                                                     and _may_skip_binlog(request.target)))
            expected = _expected_objects(post)
            target_lock.check()
            state.set("swapping")
            touched = True
            _swap(request.target, loading, target, old)
            swapped = True
            _test_pause("post-swap")
            state.set("swapped")
            _replay(request.target, target, post)
            with contextlib.closing(_connect(request.target)) as conn, conn.cursor() as cur:
                got = _object_counts(cur, target)
            if got != expected:
                raise RestoreError(f"schema objects differ after the restore: {got} in {target}, {expected} in the "
                                   f"backup")
            # Only now is the replaced data let go of (on any failure above it stays in the old database).
            with contextlib.closing(_connect(request.target)) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {_q(loading)}")
                cur.execute(f"DROP DATABASE IF EXISTS {_q(old)}")
            checks["objects"] = got
            checks["binlog"] = "off" if loaded.binlog_off else "on"
            checks["load_data_tables"] = loaded.load_data_tables
        except BaseException as err:
            with contextlib.suppress(Exception):
                # "broken": the target lost its own views/triggers or holds this restore's tables without all
                # its objects: not usable.
                state.set("broken" if touched else "failed", str(err))
            if swapped:
                log.error("restore into %s failed after the swap: the replaced tables are kept in %s", target, old)
            with contextlib.suppress(Exception), contextlib.closing(_connect(request.target)) as conn, \
                    conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {_q(loading)}")
            raise
        state.set(USABLE, json_detail(checks))
    result = RestoreResult(target, str(record.url), progress.seconds, checks["data"]["tables"],
                           checks["data"]["rows"], reader.bytes, reader.raw, True, checks)
    log.info("%s", result.summary())
    return result


def _may_skip_binlog(endpoint: Endpoint) -> bool:
    """Whether the account may turn its session's binlog off (SET sql_log_bin needs SUPER / BINLOG ADMIN)."""
    with contextlib.closing(_connect(endpoint)) as conn:
        try:
            conn.query("SET sql_log_bin = 0")
            return True
        except pymysql.err.OperationalError:
            return False


def json_detail(checks: dict) -> str:
    return json.dumps(checks, default=str)


def _swap(endpoint: Endpoint, loading: str, target: str, old: str) -> None:
    """Every table into `target` in one atomic RENAME; an existing target's tables move to `old`."""
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        new_tables = _table_names(cur, loading)
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (target,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {_q(target)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        # Views, triggers, routines and events cannot move between databases: the old ones go, the
        # backup's are created after the swap.
        for view in _table_names(cur, target, "VIEW"):
            cur.execute(f"DROP VIEW {_q(target)}.{_q(view)}")
        cur.execute("SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s", (target,))
        for (trigger,) in cur.fetchall():
            cur.execute(f"DROP TRIGGER {_q(target)}.{_q(trigger)}")
        cur.execute("SELECT routine_name, routine_type FROM information_schema.routines WHERE routine_schema = %s",
                    (target,))
        for name, kind in cur.fetchall():
            cur.execute(f"DROP {kind} {_q(target)}.{_q(name)}")
        cur.execute("SELECT event_name FROM information_schema.events WHERE event_schema = %s", (target,))
        for (event,) in cur.fetchall():
            cur.execute(f"DROP EVENT {_q(target)}.{_q(event)}")
        moves = []
        old_tables = _table_names(cur, target)
        if old_tables:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {_q(old)}")
            moves += [f"{_q(target)}.{_q(t)} TO {_q(old)}.{_q(t)}" for t in old_tables]
        moves += [f"{_q(loading)}.{_q(t)} TO {_q(target)}.{_q(t)}" for t in new_tables]
        if moves:
            cur.execute("RENAME TABLE " + ", ".join(moves))


def _replay(endpoint: Endpoint, database: str, post: list[bytes]) -> None:
    """The views, triggers, routines and events, with their session settings, in dump order."""
    with contextlib.closing(_connect(endpoint, database)) as conn:
        for number, sql in enumerate(post, 1):
            try:
                conn.query(sql)
            except pymysql.err.OperationalError as err:
                if err.args[0] in (1419, 1227, 1449):  # privileges for routines/triggers/DEFINER
                    raise InputError(
                        f"creating a view/trigger/routine/event failed: {err.args[1]}. The restoring account "
                        f"needs SUPER (or log_bin_trust_function_creators=ON on the server, as on Azure MySQL "
                        f"Flexible Server), and the DEFINER accounts must exist on the target") from None
                raise
            if number == len(post) // 2:
                _test_pause("mid-replay")
