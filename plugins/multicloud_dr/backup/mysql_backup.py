"""One backup of one MySQL database: mysqldump -> compress -> SHA-256 -> staged blocks -> commit ->
manifest. Idempotent per logical date:

1. a manifest for this run's name already exists -> nothing is written, its summary is returned (F10);
2. a lease on the backup's `.lease` blob keeps two runs of the same backup apart (F8, F9);
3. the dump streams through compression and upload without touching disk (F14), and only when
   mysqldump exited 0, its footer is there and every table it was asked for was dumped, are the
   blocks committed (F2, F3, F16) and then the manifest written (its presence = the backup exists);
4. a committed dump whose manifest was never written (the run stopped between the two) is read back,
   checked and given its manifest instead of being dumped again over it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import zstandard
from azure.storage.blob import BlobServiceClient

import multicloud_dr
from multicloud_dr.backup import source as src
from multicloud_dr.backup.blockblob import SHA256_METADATA, StagedBlockWriter, commit
from multicloud_dr.backup.codec import CONTENT_TYPE, SegmentedCompressor
from multicloud_dr.backup.layout import BackupLayout, StorageUrl, stamp, validate_database_name
from multicloud_dr.backup.lease import BackupLease, LeaseHeldError
from multicloud_dr.backup.manifest import Manifest, Segment, StoredObject, TableEntry
from multicloud_dr.backup.scan import DumpScanner, ScanResult
from multicloud_dr.backup.store import BackupStore, ManifestRecord
from multicloud_dr.backup.verify import read_back
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, DrError
from multicloud_dr.progress import MB, Progress

log = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024
F_SETPIPE_SZ = 1031  # Linux: a bigger pipe means fewer, larger reads of the dump


class DumpFailedError(DrError):
    """mysqldump failed or its output is incomplete; nothing was committed."""


@dataclass
class BackupRequest:
    source: Endpoint
    database: str
    root: StorageUrl                 # wasb://container/prefix
    logical_date: datetime
    codec: str = "zstd"
    block_size: int = 8 * MB
    tier_blocks: int = 10_000
    max_inflight_bytes: int = 64 * MB
    upload_concurrency: int = 4
    lease_seconds: int = 60
    # How long to wait for another process holding this backup's lease (a duplicate try: a scheduler restarted
    # mid-run starts one while the first still dumps, F21) before failing with LeaseHeldError. While waiting, a
    # manifest written by the holder ends the wait: the backup exists, nothing is written. 0: fail at once.
    lease_wait_seconds: float = 0.0
    lease_poll_seconds: float = 5.0
    compress_threads: int = 2
    progress_interval: float = 5.0

    def __post_init__(self) -> None:
        # Checked here, before a lease or a blob is touched: a zero block size fails only mid-upload.
        for name in ("block_size", "tier_blocks", "max_inflight_bytes", "upload_concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.compress_threads < 0:  # 0: zstd compresses on the calling thread
            raise ConfigError(f"compress_threads must be 0 or more, got {self.compress_threads!r}")
        if self.root.scheme != "wasb":
            raise ConfigError(f"backups are written to Azure Blob: give wasb://CONTAINER/PREFIX, not {self.root}")


@dataclass
class BackupResult:
    manifest_url: StorageUrl
    manifest: Manifest
    created: bool                    # False: the backup existed already, nothing was written
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        m = self.manifest
        return {
            "manifest": str(self.manifest_url),
            "objects": [{"name": o.name, "bytes": o.bytes, "sha256": o.sha256} for o in m.objects],
            "codec": m.codec,
            "seconds": round(self.seconds, 3),
            "bytes_raw": m.bytes_raw,
            "bytes_stored": m.bytes_stored,
            "binlog": {"file": m.binlog_file, "position": m.binlog_position} if m.binlog_file else None,
            "gtid": m.gtid,
            "database": m.database,
            "backup_id": m.backup_id,
            "tables": len(m.tables),
            "rows": m.total_rows,
            "created": self.created,
            "verification": m.verification.status,
            "warnings": self.warnings,
        }

    def summary(self) -> str:
        m = self.manifest
        verb = "written" if self.created else "already existed, nothing written"
        ratio = m.bytes_raw / m.bytes_stored if m.bytes_stored else 0
        rate = m.bytes_raw / MB / self.seconds if self.seconds > 0 and self.created else 0
        where = f"binlog {m.binlog_file}:{m.binlog_position}, gtid {m.gtid or '-'}" if m.binlog_file else "no binlog"
        return (f"backup {m.backup_id} {verb}: {m.bytes_raw / MB:.1f} MB -> {m.bytes_stored / MB:.1f} MB {m.codec} "
                f"({ratio:.2f}x) in {self.seconds:.1f} s" + (f" ({rate:.0f} MB/s)" if rate else "")
                + f", {len(m.tables)} tables, {m.total_rows:,} rows, {where}")


def _existing(record: ManifestRecord, seconds: float) -> BackupResult:
    log.info("backup %s already exists (%s): nothing to do", record.manifest.backup_id, record.url)
    return BackupResult(record.url, record.manifest, created=False, seconds=seconds)


def run_backup(request: BackupRequest, service: BlobServiceClient,
               on_child: Callable[[subprocess.Popen | None], None] | None = None) -> BackupResult:
    """Back up one database; `on_child` is told the mysqldump process (so an operator can kill it)."""
    database = validate_database_name(request.database)
    if request.root.scheme != "wasb":
        raise ConfigError(f"backups are written to Azure Blob: give wasb://CONTAINER/PREFIX, not {request.root}")
    layout = BackupLayout(request.root, database, stamp(request.logical_date), request.codec)
    store = BackupStore(service, request.root.bucket)
    progress = Progress(f"backup {database}/{layout.stamp}", interval=request.progress_interval)
    store.check_container()
    existing = store.read_manifest(layout.manifest)
    if existing is not None:
        return _existing(existing, progress.seconds)

    pre = src.preflight(request.source, database)
    for warning in pre.warnings:
        log.warning("preflight: %s", warning)
    lease = _take_lease(request, layout, store)
    if isinstance(lease, ManifestRecord):
        return _existing(lease, progress.seconds)
    with lease:
        existing = store.read_manifest(layout.manifest)  # finished while we waited for the lease?
        if existing is not None:
            return _existing(existing, progress.seconds)
        data_blob = store.blob(layout.data)
        if data_blob.exists():
            manifest = _adopt_orphan(layout, store, pre)
        else:
            manifest = _dump_and_upload(request, layout, store, pre, lease, progress, on_child)
        lease.confirm()
        if not store.create_manifest(layout.manifest, manifest):
            return _existing(store.read_manifest(layout.manifest), progress.seconds)  # type: ignore[arg-type]
    result = BackupResult(layout.manifest, manifest, created=True, seconds=progress.seconds,
                          warnings=list(manifest.warnings))
    log.info("%s", result.summary())
    return result


def _take_lease(request: BackupRequest, layout: BackupLayout, store: BackupStore) -> BackupLease | ManifestRecord:
    """This backup's lease, held; or the manifest another holder wrote while we waited for it."""
    deadline = time.monotonic() + request.lease_wait_seconds
    waited_since = time.monotonic()
    while True:
        lease = BackupLease(store.blob(layout.lease), duration=request.lease_seconds)
        try:
            lease.acquire()
            return lease
        except LeaseHeldError:
            if time.monotonic() >= deadline:
                raise
        existing = store.read_manifest(layout.manifest)
        if existing is not None:
            log.info("the other backup of %s finished while this one waited: nothing to write", layout.stamp)
            return existing
        log.info("another backup of %s/%s holds its lease: waiting for it (%.0f s so far, at most %.0f s more)",
                 layout.database, layout.stamp, time.monotonic() - waited_since,
                 max(0.0, deadline - time.monotonic()))
        time.sleep(min(request.lease_poll_seconds, max(0.1, deadline - time.monotonic())))


def _manifest(layout: BackupLayout, request_date: datetime, pre: src.Preflight, scan: ScanResult,
              obj: StoredObject, tool: str, started, finished, warnings: list[str], stored_at) -> Manifest:
    missing = [t for t in pre.tables if t not in scan.tables]
    if missing:
        raise DumpFailedError(f"tables missing from the dump: {', '.join(missing)}")
    return Manifest(
        backup_id=f"{layout.database}/{layout.stamp}", database=layout.database, logical_date=request_date,
        source={"server": pre.server, "version": pre.version, "flavor": pre.flavor},
        started_at=started, finished_at=finished, stored_at=stored_at,
        binlog_file=scan.binlog_file, binlog_position=scan.binlog_position, gtid=scan.gtid,
        tools={"dump": tool, "multicloud_dr": multicloud_dr.__version__,
               "codec": f"zstandard {zstandard.__version__}" if layout.codec == "zstd" else "zlib"},
        codec=layout.codec, objects=[obj],
        tables={name: TableEntry(**stats.to_dict()) for name, stats in scan.tables.items()},
        non_innodb_tables=pre.non_innodb, warnings=warnings,
    )


def _dump_and_upload(request: BackupRequest, layout: BackupLayout, store: BackupStore, pre: src.Preflight,
                     lease: BackupLease, progress: Progress,
                     on_child: Callable[[subprocess.Popen | None], None] | None) -> Manifest:
    binary, version_line = src.dump_binary()
    progress.expected = pre.estimated_bytes or None
    blob = store.blob(layout.data)
    writer = StagedBlockWriter(blob, block_size=request.block_size, tier_blocks=request.tier_blocks,
                               max_inflight_bytes=request.max_inflight_bytes, concurrency=request.upload_concurrency)
    scanner = DumpScanner()
    comp = SegmentedCompressor(request.codec, request.compress_threads)
    raw = 0
    with src.option_file(request.source) as cnf, tempfile.TemporaryFile() as stderr:
        argv = src.dump_argv(binary, version_line, cnf, layout.database, pre)
        log.info("running %s", " ".join(a for a in argv if not a.startswith("--defaults-file")))
        proc = src.start_dump(argv, stderr)
        if on_child:
            on_child(proc)
        try:
            fd = proc.stdout.fileno()  # type: ignore[union-attr]
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, READ_SIZE)
            while chunk := os.read(fd, READ_SIZE):
                raw += len(chunk)
                scanner.feed(chunk)
                writer.write(comp.compress(chunk))
                progress.update(raw, f"{writer.bytes / MB:.1f} MB stored")
                lease.check()
            writer.write(comp.flush())
            code = proc.wait()
            stderr.seek(0)
            messages = stderr.read().decode("utf-8", "replace").strip()
            if code != 0:
                raise DumpFailedError(f"mysqldump exited with status {code}: {messages[-1500:] or '(no message)'}; "
                                      f"nothing was committed")
            scan = scanner.finish()
            if not scan.complete:
                raise DumpFailedError("the dump has no completion footer (it was cut short); nothing was committed")
            changed = sorted(set(pre.tables) ^ set(scan.structures))
            if changed:
                raise DumpFailedError(f"the set of tables changed while the dump ran (DDL?): {', '.join(changed)}; "
                                      f"nothing was committed: run the backup again")
            if src.schema_fingerprint(request.source, layout.database) != pre.schema:
                raise DumpFailedError("the schema changed while the dump ran (ALTER/RENAME/CREATE INDEX ...): the dump "
                                      "may mix new definitions with old data; nothing was committed: run it again")
            warnings = list(pre.warnings) + [line for line in messages.splitlines() if line.strip()]
            block_ids, sha256 = writer.finish()
            lease.confirm()   # the commit makes the dump visible: only while the lease is provably ours
            committed = commit(blob, block_ids, sha256, writer.bytes, CONTENT_TYPE[request.codec],
                               metadata={"raw_bytes": str(raw)})
        except BaseException:
            writer.abort()
            raise
        finally:
            if proc.poll() is None:  # we are failing: do not leave the dump running (F3)
                proc.kill()
            proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
            if on_child:
                on_child(None)
    finished = src.server_now(request.source)
    stored_at = committed.stored_at or store.server_now()  # the service's clock either way (F25)
    segments = [Segment(offset=o, bytes=n, raw_bytes=r) for o, n, r in comp.segments]
    obj = StoredObject(name=str(layout.data), bytes=committed.bytes, sha256=committed.sha256, raw_bytes=raw,
                       segments=segments if committed.bytes == comp.bytes else [])
    return _manifest(layout, request.logical_date, pre, scan, obj, version_line, pre.server_time, finished, warnings,
                     stored_at)


def _adopt_orphan(layout: BackupLayout, store: BackupStore, pre: src.Preflight) -> Manifest:
    """A committed dump without a manifest: an earlier attempt stopped between commit and manifest."""
    blob = store.blob(layout.data)
    props = blob.get_blob_properties()
    log.warning("%s exists without a manifest (an earlier attempt stopped before writing it): reading it back",
                layout.data)
    rb = read_back(blob, layout.codec, props.size)
    stored_sha = (props.metadata or {}).get(SHA256_METADATA)
    if rb.error or not rb.scan.complete or rb.sha256 != stored_sha:
        raise DumpFailedError(
            f"{layout.data} exists without a manifest and does not check out ({rb.error or 'no footer or hash '}"
            f"mismatch); it was left untouched: move it aside and run again")
    _, version_line = src.dump_binary()
    # The frames it was written in are the segments a restore reads side by side.
    frames = rb.segments() if layout.codec == "zstd" and len(rb.frame_starts) > 1 else []
    segments = [Segment(offset=o, bytes=n, raw_bytes=r) for o, n, r in frames]
    obj = StoredObject(name=str(layout.data), bytes=rb.bytes, sha256=rb.sha256, raw_bytes=rb.raw_bytes,
                       segments=segments)
    return _manifest(layout, _logical_date(layout), pre, rb.scan, obj, version_line, props.creation_time,
                     props.last_modified, ["manifest rebuilt by reading back the committed dump of an earlier attempt"],
                     props.last_modified)


def _logical_date(layout: BackupLayout) -> datetime:
    from datetime import UTC

    from multicloud_dr.backup.layout import STAMP_FORMAT

    return datetime.strptime(layout.stamp, STAMP_FORMAT).replace(tzinfo=UTC)
