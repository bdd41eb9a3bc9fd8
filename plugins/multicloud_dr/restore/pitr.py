"""Point-in-time recovery: after a backup is loaded into the restore's private database (and verified against
its manifest), the archived binlogs (backup/binlog.py) from the backup's recorded position up to the point
asked for are replayed into that same private database; only then does the restore swap it in.

- The point: `until` (a time: every transaction whose events are timed before it, as mysqlbinlog's
  --stop-datetime reads them; binlog events carry whole seconds) or `until_gtid` (up to and including that
  transaction).
- plan_replay() runs before anything is written on the target: the backup must record its binlog position,
  the archive must hold every piece from it to the point without a gap, in row format. A point it does not
  cover is refused, saying what it covers.
- Only the backed-up database's events are replayed (`--database`), its name rewritten to the private
  database's (`--rewrite-db`). As with mysqlbinlog, a statement is filtered by its default database: a DDL
  that names the database without `USE` is not replayed (row changes always are).
- Each piece is read back from storage and its SHA-256 checked before it is replayed; one piece is on disk
  at a time (a private temporary directory), piped through the binlog tool into one `mariadb` session.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from multicloud_dr.backup.binlog import BinlogArchive, Coverage, Piece, binlog_tool, coverage, local_position
from multicloud_dr.backup.retention import as_utc as utc
from multicloud_dr.exceptions import DrError, InputError

log = logging.getLogger(__name__)


# The tool sets each transaction's GTID and server id as the primary's. Replayed into the DR server, whose own
# GTIDs have moved on, a binlogged replay would then be refused (gtid_strict_mode: "out-of-order sequence
# number") or would pass the primary's GTIDs off as the DR server's: these lines are left out, so the DR server
# numbers what it writes itself.
_PRIMARY_GTID = re.compile(rb"^/\*M!100001 SET @@session\.(gtid_seq_no|gtid_domain_id|server_id)=\d+\*/")


class PointNotCoveredError(InputError):
    """The archive cannot bring the backup to the point asked for: nothing was written."""


class ReplayError(DrError):
    """Replaying the archived binlogs failed: the private database is dropped, the target untouched."""


@dataclass
class ReplayPlan:
    source_database: str
    start: tuple[str, int]
    until: datetime | None
    until_gtid: str | None
    pieces: list[Piece]
    covered_until: str | None
    coverage: Coverage = field(repr=False)

    def describe(self) -> str:
        point = self.until.isoformat() if self.until else f"GTID {self.until_gtid}"
        return (f"binlogs from {self.start[0]}:{self.start[1]} to {point} ({len(self.pieces)} archived pieces, "
                f"{sum(p.bytes for p in self.pieces):,} bytes)")


def parse_until(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--until {text!r} is not a time: give it as 2026-12-01T10:00:00Z") from None
    if when.tzinfo is None:
        raise InputError(f"--until {text!r} has no time zone: add Z (UTC) or an offset")
    return when.astimezone(UTC)


def _gtid_parts(gtid: str) -> tuple[int, int, int]:
    try:
        domain, server, seq = (int(part) for part in gtid.split("-"))
    except ValueError:
        raise InputError(f"--until-gtid {gtid!r} is not a MariaDB GTID (domain-server-sequence, e.g. 0-1-150)") \
            from None
    return domain, server, seq


def plan_replay(archive: BinlogArchive, manifest, until: datetime | None, until_gtid: str | None) -> ReplayPlan:
    """What to replay onto `manifest`'s backup to reach the point, or PointNotCoveredError saying why not."""
    if (until is None) == (until_gtid is None):
        raise InputError("give exactly one of --until and --until-gtid")
    if not manifest.binlog_file or manifest.binlog_position is None:
        raise PointNotCoveredError(f"backup {manifest.backup_id} records no binlog position (binary logging was "
                                   f"off on its source): it cannot be brought forward to a point in time")
    if until is not None and until < utc(manifest.started_at):
        raise PointNotCoveredError(f"{until.isoformat()} is before backup {manifest.backup_id} was taken "
                                   f"({utc(manifest.started_at).isoformat()}): restore an older backup")
    start = (manifest.binlog_file, manifest.binlog_position)
    cov = coverage(archive.pieces(), *start)
    covered_until = cov.last_event_at
    status = archive.read_status()
    if status and not cov.gaps and cov.end == (status.get("file"), status.get("position")):
        covered_until = max(filter(None, (covered_until, status.get("covered_until"))))
    what = (f"the archive at {archive.base} covers {start[0]}:{start[1]} (backup {manifest.backup_id}, "
            f"{utc(manifest.started_at).isoformat()}) to {covered_until or 'nothing yet'}")
    if cov.gaps:
        what += f", then has gaps: {'; '.join(cov.gaps)}"
    if until is not None and (covered_until is None or until > datetime.fromisoformat(covered_until)):
        raise PointNotCoveredError(f"{until.isoformat()} is not covered: {what}. Nothing was written")
    if until_gtid is not None:
        domain, _, seq = _gtid_parts(until_gtid)
        reached = [p.last_gtid for p in cov.pieces if p.last_gtid and _gtid_parts(p.last_gtid)[0] == domain]
        if not reached or _gtid_parts(reached[-1])[2] < seq:
            raise PointNotCoveredError(f"GTID {until_gtid} is not covered: {what} (newest GTID "
                                       f"{cov.last_gtid or '-'}). Nothing was written")
    statement_logged = sorted({p.binlog_format for p in cov.pieces if p.binlog_format.upper() != "ROW"})
    if statement_logged:
        raise PointNotCoveredError(f"the primary logged {', '.join(statement_logged)} binlogs: a point-in-time "
                                   f"replay needs binlog_format=ROW on the primary (statements replayed into "
                                   f"another database can change other data)")
    needed = [p for p in cov.pieces if p.first_event_at is None or until is None
              or datetime.fromisoformat(p.first_event_at) < until or p is cov.pieces[0]]
    return ReplayPlan(manifest.database, start, until, until_gtid, needed, covered_until, cov)


def client_binary() -> str:
    import shutil

    for name in ("mariadb", "mysql"):
        if path := shutil.which(name):
            return path
    raise ReplayError("neither the mariadb nor the mysql client is on PATH: install the MariaDB or MySQL client")


def replay(plan: ReplayPlan, archive: BinlogArchive, option_file: Path, into: str, *,
           disable_log_bin: bool) -> dict[str, Any]:
    """Replay the plan's pieces into database `into` through one `mariadb` session (option_file: the target's
    account). Returns what was replayed and the point reached."""
    started = time.monotonic()
    client = subprocess.Popen(
        [client_binary(), f"--defaults-file={option_file}", "--binary-mode", "--batch", into],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    replayed = 0

    def client_failed() -> ReplayError:
        client.kill()
        errors = client.stderr.read().decode(errors="replace").strip()   # type: ignore[union-attr]
        return ReplayError(f"replaying the binlogs into {into} failed: {errors[-500:] or 'the client stopped'}")

    try:
        with tempfile.TemporaryDirectory(prefix="mcdr-pitr-") as work:
            for index, piece in enumerate(plan.pieces):
                path = Path(work) / "piece.binlog"
                head = archive.download_piece(piece, path)   # SHA-256 checked against the index
                argv = [binlog_tool(), f"--database={plan.source_database}",
                        f"--rewrite-db={plan.source_database}->{into}"]
                if disable_log_bin:
                    argv.append("--disable-log-bin")
                if index == 0:
                    argv.append(f"--start-position={local_position(piece, plan.start[1], head)}")
                if plan.until is not None:
                    argv.append(f"--stop-datetime={plan.until.strftime('%Y-%m-%d %H:%M:%S')}")
                else:
                    argv.append(f"--stop-position={plan.until_gtid}")
                argv.append(str(path))
                # Line by line into the client (nothing held in memory). TZ=UTC: the tool reads
                # --stop-datetime in its own time zone, and the point asked for is in UTC.
                with tempfile.TemporaryFile() as tool_errors:
                    tool = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=tool_errors,
                                            env={"TZ": "UTC", "PATH": "/usr/local/bin:/usr/bin:/bin"})
                    try:
                        for line in tool.stdout:   # type: ignore[union-attr]
                            if not _PRIMARY_GTID.match(line):
                                client.stdin.write(line)   # type: ignore[union-attr]
                    except BrokenPipeError:
                        tool.kill()
                        raise client_failed() from None
                    finally:
                        tool.wait()
                    tool_errors.seek(0)
                    tool_stderr = tool_errors.read()
                if client.poll() not in (None, 0):
                    raise client_failed()
                if tool.returncode != 0:
                    raise ReplayError(f"reading binlog piece {piece.file} {piece.start}-{piece.end} failed: "
                                      f"{tool_stderr.decode(errors='replace').strip()[-300:]}")
                replayed += piece.bytes
                log.info("replayed %s %d-%d (%d of %d pieces, %s bytes)", piece.file, piece.start, piece.end,
                         index + 1, len(plan.pieces), f"{replayed:,}")
                path.unlink()
        client.stdin.close()                        # type: ignore[union-attr]
        if client.wait() != 0:
            raise client_failed()
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    point = plan.until.isoformat() if plan.until else plan.until_gtid
    seconds = time.monotonic() - started
    log.info("point-in-time replay into %s reached %s: %d pieces, %s bytes in %.1f s", into, point,
             len(plan.pieces), f"{replayed:,}", seconds)
    return {"until": point, "from": f"{plan.start[0]}:{plan.start[1]}", "pieces": len(plan.pieces),
            "bytes": replayed, "seconds": round(seconds, 3), "covered_until": plan.covered_until}
