"""The binary-log archive: the primary's binlogs copied to Blob storage in pieces, for point-in-time recovery.

    <location>/<database>/binlog/<binlog file>/<start:020d>-<end:020d>.binlog        a piece
    <location>/<database>/binlog/<binlog file>/<start:020d>-<end:020d>.binlog.json   its index entry
    <location>/<database>/binlog/.lease                                          held by the archiver
    <location>/<database>/binlog/archived_to.json                               where the last read ended

A piece is what `mariadb-binlog --read-from-remote-server --raw --start-position=<start>` returns for one
binlog file: the replication protocol (the account needs REPLICATION SLAVE and, for SHOW BINARY LOGS,
BINLOG MONITOR / REPLICATION CLIENT, as on RDS), non-blocking, so it stops at the end of what the server has
written, the file being written included. Each piece is a binlog file of its own (the magic number, the
server's format description, then the events from `<start>` to `<end>`), readable by mariadb-binlog and
mysqlbinlog alike; a long read is cut into pieces of about `backup.binlogs.max_piece_mb`, where a transaction
starts, as it streams (the tool's output goes through a named pipe: nothing of it is kept on disk, and memory
holds one piece). `<start>` and `<end>` are the server's positions in that file: a retry, or a second
archiver, derives the same names and writes nothing new. The last piece of a file that the server has
rotated away from is marked `closed`; continuity (coverage()) follows files and positions, and names every
gap, such as a binlog purged on the primary before it was archived (F34).

Why the tool and not a library: mariadb-binlog is on every host that runs the backup (it ships with
mysqldump), speaks both MariaDB's and MySQL's protocol variants and writes the bytes as the server sent them;
the Python replication libraries decode events instead, and a replay from decoded events is ours to get
right. The password reaches it in a memfd option file (backup/source.py), never argv or disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from multicloud_dr.backup.layout import StorageUrl, validate_database_name
from multicloud_dr.exceptions import DrError, InputError

log = logging.getLogger(__name__)

BINLOG_DIR = "binlog"
PIECE_SUFFIX = ".binlog"
INDEX_SUFFIX = ".binlog.json"
STATUS = "archived_to.json"
LEASE_NAME = ".lease"
MAGIC = b"\xfebin"
FORMAT_DESCRIPTION_EVENT = 15
_FILE = re.compile(r"^(?P<base>[A-Za-z0-9_.-]+)\.(?P<seq>\d{6,})$")
_PIECE = re.compile(r"^(?P<start>\d{20})-(?P<end>\d{20})" + re.escape(INDEX_SUFFIX) + "$")
# mariadb-binlog's event header line: "#261203 13:33:19 server id 1  end_log_pos 342 CRC32 0x1a2b3c4d <TAB>GTID 0-1-7"
_HEADER = re.compile(r"^#(\d{6}\s+\d{1,2}:\d{2}:\d{2})\s+server id\s+\d+\s+end_log_pos\s+(\d+).*?\t(.*)$")
_GTID = re.compile(r"^GTID\s+(\d+-\d+-\d+)")


class BinlogArchiveError(DrError):
    """The archive cannot go on as asked (the server logs no binlog, a piece is not what it should be)."""


class BinlogGapError(BinlogArchiveError):
    """Part of the binlog stream is not archived and can no longer be (purged on the primary first)."""


def file_key(name: str) -> tuple[str, int]:
    """`mysql-bin.000042` -> ("mysql-bin", 42): binlog files in the server's order."""
    match = _FILE.match(name)
    if not match:
        raise InputError(f"{name!r} is not a binlog file name (<base>.<number>)")
    return match.group("base"), int(match.group("seq"))


@dataclass(frozen=True)
class Piece:
    file: str
    start: int                      # the server's position of the first event in it (4: the file's start)
    end: int                        # the server's position after its last event
    bytes: int
    sha256: str
    closed: bool                    # the server had rotated to a newer file, and this piece ends the file
    binlog_format: str              # the server's @@binlog_format when it was read (a restore needs ROW)
    first_gtid: str | None = None
    last_gtid: str | None = None
    first_event_at: str | None = None   # timestamps of its first and last transaction (the server's clock)
    last_event_at: str | None = None
    archived_at: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return (*file_key(self.file), self.start)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def header_length(data: bytes) -> int:
    """Bytes before the first event that follows a piece's format description event (magic + that event)."""
    if len(data) < 17 or data[:4] != MAGIC or data[8] != FORMAT_DESCRIPTION_EVENT:
        raise BinlogArchiveError("not a binlog piece: no magic number and format description event at its start")
    return 4 + int.from_bytes(data[13:17], "little")


def local_position(piece: Piece, server_position: int, data_prefix: bytes) -> int:
    """Where `server_position` of the piece's binlog file lies in the piece's own bytes."""
    if not piece.start <= server_position <= piece.end:
        raise InputError(f"position {server_position} is not in {piece.file} {piece.start}-{piece.end}")
    if piece.start == 4:
        return server_position     # a piece from the file's start is the file's own bytes
    return header_length(data_prefix) + server_position - piece.start


class BinlogArchive:
    """The pieces of one database's archive under `<root>/<database>/binlog/`."""

    def __init__(self, store, root: StorageUrl, database: str) -> None:
        self.store = store
        self.root = root
        self.database = validate_database_name(database)
        self.base = root.join(database, BINLOG_DIR)

    def piece_url(self, file: str, start: int, end: int) -> StorageUrl:
        file_key(file)
        return self.base.join(file, f"{start:020d}-{end:020d}{PIECE_SUFFIX}")

    def lease_blob(self):
        return self.store.blob(self.base.join(LEASE_NAME))

    def pieces(self) -> list[Piece]:
        """Every indexed piece, in binlog order (a piece whose index entry is missing is not archived yet)."""
        found = []
        for item in self.store.container.list_blobs(name_starts_with=self.base.path + "/"):
            rest = item.name[len(self.base.path) + 1:]
            parts = rest.split("/")
            if len(parts) != 2 or not _PIECE.match(parts[1]):
                continue
            try:
                data = json.loads(self.store.container.get_blob_client(item.name).download_blob().readall())
                found.append(Piece(**data))
            except (ResourceNotFoundError, ValueError, TypeError) as err:
                log.warning("skipping binlog index entry %s: %s", item.name, err)
        return sorted(found, key=lambda p: p.key)

    def download_piece(self, piece: Piece, path: Path) -> bytes:
        """Stream the piece to `path` (chunk by chunk: memory stays small), checking its SHA-256 and size against
        the index entry; returns its first bytes (its header, for local_position)."""
        digest, size, head = hashlib.sha256(), 0, b""
        with path.open("wb") as out:
            for chunk in self.store.blob(self.piece_url(piece.file, piece.start, piece.end)).download_blob().chunks():
                digest.update(chunk)
                size += len(chunk)
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                out.write(chunk)
        if digest.hexdigest() != piece.sha256 or size != piece.bytes:
            raise BinlogArchiveError(f"binlog piece {piece.file} {piece.start}-{piece.end} is damaged: SHA-256 "
                                     f"{digest.hexdigest()[:12]}... of {size} bytes, the index says "
                                     f"{piece.sha256[:12]}... of {piece.bytes}")
        return head

    def write_piece(self, piece: Piece, data: bytes) -> bool:
        """Upload the piece, then its index entry; False when both were there already (a retry)."""
        url = self.piece_url(piece.file, piece.start, piece.end)
        wrote = False
        try:
            self.store.blob(url).upload_blob(data, overwrite=False)
            wrote = True
        except ResourceExistsError:
            stored = self.store.blob(url).download_blob().readall()
            if hashlib.sha256(stored).hexdigest() != piece.sha256:
                # Same coordinates, other bytes: a piece is the server's bytes, so this is not a retry.
                raise BinlogArchiveError(f"{url} exists with other content: another server's binlog under the "
                                         f"same name? Check backup.location and the source") from None
        index = self.store.blob(StorageUrl(url.scheme, url.bucket, url.path[: -len(PIECE_SUFFIX)] + INDEX_SUFFIX))
        try:
            index.upload_blob(json.dumps(piece.to_dict(), sort_keys=True).encode(), overwrite=False)
            wrote = True
        except ResourceExistsError:
            pass
        return wrote

    def write_status(self, status: dict[str, Any]) -> None:
        self.store.blob(self.base.join(STATUS)).upload_blob(json.dumps(status, sort_keys=True).encode(),
                                                            overwrite=True)

    def read_status(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.blob(self.base.join(STATUS)).download_blob().readall())
        except ResourceNotFoundError:
            return None


# -- continuity ----------------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """What the archive holds from a starting point on, without a break, and every gap after it."""

    start: tuple[str, int]
    end: tuple[str, int] | None = None          # (file, position) the unbroken stretch reaches
    last_event_at: str | None = None           # its newest transaction's time
    last_gtid: str | None = None
    gaps: list[str] = dataclasses.field(default_factory=list)
    pieces: list[Piece] = dataclasses.field(default_factory=list)   # the unbroken stretch's pieces, in order

    @property
    def ok(self) -> bool:
        return not self.gaps


def coverage(pieces: list[Piece], start_file: str, start_pos: int) -> Coverage:
    """Follow the pieces from (start_file, start_pos): within a file each piece must start where the stretch
    ends; a file's closed last piece hands on to the next file number at its start. The unbroken stretch
    ends at the first gap; later gaps are listed too."""
    result = Coverage(start=(start_file, start_pos), end=(start_file, start_pos))   # empty, until a piece follows
    base, seq = file_key(start_file)
    want_seq, want_pos = seq, start_pos
    broken = False
    for piece in sorted(pieces, key=lambda p: p.key):
        p_base, p_seq = file_key(piece.file)
        if p_base != base or (p_seq, piece.end) < (seq, start_pos) or (p_seq == seq and piece.end <= start_pos
                                                                        and start_pos != 4):
            continue   # before the starting point, or another server's file series
        if p_seq < want_seq or (p_seq == want_seq and piece.end <= want_pos and not piece.closed):
            continue   # already covered (an overlapping piece of an earlier archiver)
        if p_seq > want_seq:
            missing = f"{base}.{want_seq:06d}" + (f" from position {want_pos}" if want_pos > 4 else "")
            if p_seq > want_seq + 1:
                missing += f" through {base}.{p_seq - 1:06d}"
            result.gaps.append(f"{missing} not archived (purged on the primary before it was archived?)")
            broken = True
            want_seq, want_pos = p_seq, 4
        if piece.start > want_pos:
            result.gaps.append(f"{piece.file} positions {want_pos}-{piece.start} not archived")
            broken = True
        want_pos = max(want_pos, piece.end)
        if not broken:
            result.pieces.append(piece)
            result.end = (piece.file, piece.end)
            if piece.last_event_at:
                result.last_event_at = piece.last_event_at
                result.last_gtid = piece.last_gtid or result.last_gtid
        if piece.closed:
            want_seq, want_pos = p_seq + 1, 4
    return result


# -- reading the primary -------------------------------------------------------------------------------------


def binlog_tool() -> str:
    import shutil

    for name in ("mariadb-binlog", "mysqlbinlog"):
        if path := shutil.which(name):
            return path
    raise BinlogArchiveError("neither mariadb-binlog nor mysqlbinlog is on PATH: install the MariaDB or MySQL "
                             "client package (it comes with mysqldump)")


GTID_EVENT = 162                 # MariaDB's GTID event: the first event of every transaction
MAX_PIECE_BYTES = 64 * 2**20


def stream_remote_pieces(option_file: Path, file: str, start: int, max_bytes: int = MAX_PIECE_BYTES,
                         timeout: float = 3600) -> Iterator[tuple[int, int, bytes]]:
    """The server's events of `file` from `start` to its current end, as (start, end, bytes) pieces of at most
    about `max_bytes`, each a binlog file of its own (see the module doc), cut only where a transaction starts.

    The tool's raw output goes into a named pipe that is read as it is written: nothing of it lands on disk,
    and memory holds one piece. (mariadb-binlog ignores --stop-position in raw mode, so the tool cannot be
    asked for less; the pieces are cut here by the events' own headers: length and end position.)"""
    with tempfile.TemporaryDirectory(prefix="mcdr-binlog-") as work, tempfile.TemporaryFile() as errors:
        out = Path(work) / "raw-"
        fifo = Path(f"{out}{file}")
        os.mkfifo(fifo, 0o600)
        proc = subprocess.Popen(
            [binlog_tool(), f"--defaults-file={option_file}", "--read-from-remote-server", "--raw",
             f"--start-position={start}", f"--result-file={out}", "--", file],
            stdout=subprocess.DEVNULL, stderr=errors)
        # Non-blocking: a tool that fails before it opens the pipe must not leave this read waiting forever.
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.monotonic() + timeout
        buffer = bytearray()
        header: bytes | None = None
        piece, piece_start, piece_end = bytearray(), start, start
        try:
            while True:
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    buffer += chunk
                elif proc.poll() is not None and chunk == b"":
                    break
                else:
                    if time.monotonic() > deadline:
                        raise BinlogArchiveError(f"reading {file} from {start} took over {timeout:.0f} s")
                    time.sleep(0.005)
                    continue
                if header is None:
                    if len(buffer) < 17 or len(buffer) < 4 + int.from_bytes(buffer[13:17], "little"):
                        continue
                    header = bytes(buffer[: header_length(bytes(buffer[:17]))])
                    del buffer[: len(header)]
                    piece += header
                while len(buffer) >= 19:
                    length = int.from_bytes(buffer[9:13], "little")
                    if len(buffer) < length:
                        break
                    event, kind, next_pos = bytes(buffer[:length]), buffer[4], int.from_bytes(buffer[13:17], "little")
                    del buffer[:length]
                    if next_pos == 0:
                        continue          # an event the server made up for the reader, not one of the file's
                    if kind == GTID_EVENT and len(piece) - len(header) >= max_bytes:
                        yield piece_start, piece_end, bytes(piece)
                        piece, piece_start = bytearray(header), next_pos - length
                    piece += event
                    piece_end = next_pos
            proc.wait()
            if proc.returncode != 0:
                errors.seek(0)
                detail = (errors.read().decode(errors="replace").strip().splitlines() or ["no message"])[-1]
                raise BinlogArchiveError(f"reading {file} from position {start} failed: {detail}")
            if header is None:
                raise BinlogArchiveError(f"reading {file} from position {start} returned no binlog")
            if buffer:
                raise BinlogArchiveError(f"reading {file} from position {start} ended inside an event")
            yield piece_start, piece_end, bytes(piece)
        finally:
            os.close(fd)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def describe_piece(data: bytes) -> dict[str, Any]:
    """First/last GTID and transaction time of a piece, read by the binlog tool from its own bytes."""
    with tempfile.NamedTemporaryFile(suffix=".binlog") as tmp:
        tmp.write(data)
        tmp.flush()
        proc = subprocess.run([binlog_tool(), "--base64-output=decode-rows", tmp.name],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BinlogArchiveError(f"the binlog piece does not parse: {proc.stderr.strip()[-300:]}")
    gtids, times = [], []
    for line in proc.stdout.splitlines():
        match = _HEADER.match(line)
        if match and (gtid := _GTID.match(match.group(3))):
            gtids.append(gtid.group(1))
            times.append(datetime.strptime(" ".join(match.group(1).split()), "%y%m%d %H:%M:%S")
                         .replace(tzinfo=UTC).isoformat())
    return {"first_gtid": gtids[0] if gtids else None, "last_gtid": gtids[-1] if gtids else None,
            "first_event_at": times[0] if times else None, "last_event_at": times[-1] if times else None}


@dataclass
class ArchiveResult:
    pieces_written: int = 0
    bytes_written: int = 0
    position: tuple[str, int] | None = None
    covered_until: str | None = None
    gaps: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        where = f"{self.position[0]}:{self.position[1]}" if self.position else "-"
        return (f"{self.pieces_written} pieces, {self.bytes_written} bytes archived; at {where}, everything "
                f"committed before {self.covered_until or '-'} archived" + (f"; GAPS: {'; '.join(self.gaps)}"
                                                                            if self.gaps else ""))


def _server_state(conn) -> tuple[str, list[tuple[str, int]], tuple[str, int], datetime]:
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format, UTC_TIMESTAMP(6)")
        log_bin, fmt, now = cur.fetchone()
        if not log_bin:
            raise BinlogArchiveError("binary logging is off on the primary (log_bin): there is nothing to archive; "
                                     "enable it (RDS: automated backups on, binlog retention set)")
        cur.execute("SHOW BINARY LOGS")
        logs = [(row[0], int(row[1])) for row in cur.fetchall()]
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    if not row or not logs:
        raise BinlogArchiveError("the primary lists no binary logs (SHOW MASTER STATUS is empty)")
    return str(fmt), logs, (row[0], int(row[1])), now.replace(tzinfo=UTC)


def resume_point(archive: BinlogArchive, start_at: tuple[str, int] | None,
                 current: tuple[str, int]) -> tuple[str, int]:
    """Where this run reads from: where the last read ended (archived_to.json, even when it found nothing new);
    else after the newest archived piece; else `start_at` (the oldest kept backup's binlog position); else the
    primary's current position (nothing older can be needed)."""
    status = archive.read_status()
    if status and status.get("file") and status.get("position"):
        return status["file"], int(status["position"])
    pieces = archive.pieces()
    if pieces:
        newest = pieces[-1]
        if newest.closed:
            base, seq = file_key(newest.file)
            return f"{base}.{seq + 1:06d}", 4
        return newest.file, newest.end
    return start_at or current


def archive_once(conn, option_file: Path, archive: BinlogArchive, *, start_at: tuple[str, int] | None = None,
                 lease=None, max_piece_bytes: int = MAX_PIECE_BYTES) -> ArchiveResult:
    """Archive everything the primary has written since the last piece, up to its current end."""
    fmt, logs, current, server_now = _server_state(conn)
    sizes = dict(logs)
    order = [name for name, _ in sorted(logs, key=lambda item: file_key(item[0]))]
    file, pos = resume_point(archive, start_at, current)
    result = ArchiveResult()
    while True:
        if file not in sizes:
            newer = [name for name in order if file_key(name) > file_key(file)]
            if not newer:
                raise BinlogArchiveError(f"the primary has no binlog {file} nor any later one (it lists "
                                         f"{order[0]} to {order[-1]}): was it reset? Archive from scratch")
            result.gaps.append(f"{file} from position {pos} to {newer[0]} purged on the primary before it was "
                               f"archived")
            log.error("binlog gap: %s", result.gaps[-1])
            file, pos = newer[0], 4
            continue
        active = file == current[0]
        size = current[1] if active else sizes[file]
        if pos > size:
            raise BinlogArchiveError(f"the archive is at {file}:{pos} but the primary's {file} ends at {size}: "
                                     f"is this archive another server's?")
        reads = stream_remote_pieces(option_file, file, pos, max_piece_bytes) if pos < size or not active else ()
        for first, end, data in reads:
            if first != pos:
                raise BinlogArchiveError(f"read {file} from {pos} but got events from {first}")
            closed = not active and end == size
            if end > pos or closed:
                piece = Piece(file=file, start=pos, end=end, bytes=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), closed=closed, binlog_format=fmt,
                              archived_at=datetime.now(UTC).isoformat(timespec="seconds"), **describe_piece(data))
                if lease is not None:
                    lease.confirm()
                if archive.write_piece(piece, data):
                    result.pieces_written += 1
                    result.bytes_written += len(data)
                    log.info("archived %s %d-%d (%d bytes, transactions %s to %s)", file, pos, end, len(data),
                             piece.first_event_at or "-", piece.last_event_at or "-")
            pos = end
        if not active and pos != size:
            raise BinlogArchiveError(f"read {file} to {pos}, but the file ends at {size}")
        if active:
            break
        file, pos = order[order.index(file) + 1], 4
    result.position = (file, pos)
    # The read reached the primary's end as it was at `server_now`: everything committed before it is archived.
    result.covered_until = server_now.isoformat(timespec="seconds")
    archive.write_status({"file": file, "position": pos, "covered_until": result.covered_until,
                          "checked_at": datetime.now(UTC).isoformat(timespec="seconds"), "gaps": result.gaps})
    return result


def oldest_backup_position(store, root: StorageUrl, database: str) -> tuple[str, int] | None:
    """Where the archive must start: the binlog position of the oldest verified backup that records one."""
    for record in store.list_manifests(root, database):
        manifest = record.manifest
        if manifest.verification.status == "verified" and manifest.binlog_file and manifest.binlog_position:
            return manifest.binlog_file, manifest.binlog_position
    return None


def run_archiver(source, store, root: StorageUrl, database: str, *, seconds: float = 0, interval: float = 10,
                 lease_seconds: int = 60, max_piece_bytes: int = MAX_PIECE_BYTES) -> ArchiveResult:
    """Archive `database`'s primary for `seconds` (0: one pass), reading it again every `interval`, under the
    archive's lease: a second archiver finds it held and leaves without writing. Raises BinlogGapError at the
    end when a binlog was purged before it could be archived (what could be archived is)."""
    import time

    from multicloud_dr.backup.lease import BackupLease, LeaseHeldError
    from multicloud_dr.backup.source import connect, option_file

    archive = BinlogArchive(store, root, database)
    start_at = oldest_backup_position(store, root, database)
    total = ArchiveResult()
    started = time.monotonic()
    try:
        lease = BackupLease(archive.lease_blob(), duration=lease_seconds, purpose="binlog archiver")
        lease.acquire()
    except LeaseHeldError as err:
        log.warning("%s: another archiver is running; nothing done", err)
        return total
    with lease, contextlib.closing(connect(source)) as conn, option_file(source) as defaults:
        while True:
            result = archive_once(conn, defaults, archive, start_at=start_at, lease=lease,
                                  max_piece_bytes=max_piece_bytes)
            total.pieces_written += result.pieces_written
            total.bytes_written += result.bytes_written
            total.position, total.covered_until = result.position, result.covered_until
            total.gaps += result.gaps
            elapsed = time.monotonic() - started
            if result.pieces_written:
                log.info("archive of %s: %d pieces, %s bytes in %.0f s (%.1f KB/s); at %s:%d", database,
                         total.pieces_written, f"{total.bytes_written:,}", elapsed,
                         total.bytes_written / 1024 / max(elapsed, 0.001), *result.position)
            if elapsed + interval > seconds:
                break
            time.sleep(interval)
    log.info("%s", total.summary())
    if total.gaps:
        raise BinlogGapError(f"binlogs of {database} purged on the primary before they were archived: "
                             f"{'; '.join(total.gaps)}. A point-in-time restore cannot cross the gap; the next "
                             f"verified backup starts a whole archive again")
    return total
