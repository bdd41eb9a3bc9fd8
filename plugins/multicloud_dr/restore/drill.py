"""The restore drill: restore the latest verified backup into a scratch database on the DR server,
measure it, predict whether restores will still fit the RTO, and clean up.

- The scratch database is named from the drill run's date (`drill_<database>_<yyyymmdd>t<hhmmss>`),
  so a retry reuses it. Only names starting with `drill_` are ever dropped here: a wiring mistake
  cannot drop a real database.
- The report is stored next to the backup it restored (`<backup>/drill-<stamp>.json`), written
  once. Earlier reports give the database's growth, which predicts the restore time 30 days ahead:
  restore time grows with the data, at the rate this drill measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pymysql
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContentSettings

from multicloud_dr.backup import source as src
from multicloud_dr.backup.layout import STAMP_FORMAT, BackupLayout, StorageUrl, stamp, validate_database_name
from multicloud_dr.backup.manifest import Manifest, ManifestError
from multicloud_dr.backup.store import BackupStore, ManifestRecord
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import InputError
from multicloud_dr.progress import MB
from multicloud_dr.restore.mysql_restore import STATE_DB, RestoreResult, scratch_name
from multicloud_dr.sql import quote_identifier as _q

log = logging.getLogger(__name__)

FORMAT = "multicloud-dr/restore-drill/v1"
SCRATCH_PREFIX = "drill_"
HORIZON_DAYS = 30           # how far ahead the restore time is predicted
GROWTH_WINDOW_DAYS = 90     # earlier drills older than this do not count towards the growth trend
_RUN_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_REPORT = re.compile(r"/\d{8}T\d{6}Z/drill-(\d{8}T\d{6}Z)\.json$")
_MAX_NAME = 64


class ReportExistsError(InputError):
    """This run's drill report exists already with other content."""


def drill_stamp(run_date: datetime) -> str:
    """The drill run's stamp (`YYYYMMDDTHHMMSSZ`, UTC) from its logical date or run_after."""
    return stamp(run_date)


def _stamp_of(run_stamp: str | datetime) -> str:
    if isinstance(run_stamp, datetime):
        return stamp(run_stamp)
    if not _RUN_STAMP.match(run_stamp):
        raise InputError(f"{run_stamp!r} is not a run stamp: expected YYYYMMDDTHHMMSSZ (UTC)")
    return run_stamp


def scratch_database_name(database: str, run_stamp: str | datetime) -> str:
    """`drill_<database>_<yyyymmdd>t<hhmmss>`, at most 64 characters, the same for every try of a run.

    Lower case: servers with lower_case_table_names=1 (Azure's MySQL default) store names lower-cased,
    and information_schema lookups by the mixed-case name would then miss them."""
    validate_database_name(database)
    suffix = "_" + _stamp_of(run_stamp).rstrip("Z")
    room = _MAX_NAME - len(SCRATCH_PREFIX) - len(suffix)
    if len(database) > room:  # keep it unique when shortened
        digest = hashlib.sha1(database.encode()).hexdigest()[:8]  # noqa: S324 (a name, not security)
        database = f"{database[: room - 9]}_{digest}"
    return (SCRATCH_PREFIX + database + suffix).lower()


def _check_scratch(name: str) -> str:
    if not name.startswith(SCRATCH_PREFIX) or len(name) > _MAX_NAME or "`" in name:
        raise InputError(f"{name!r} is not a drill scratch database (drill_...): refusing to drop it")
    return name


def _drop(target: Endpoint, name: str) -> list[str]:
    _check_scratch(name)
    return drop_restored(target, name)


def drop_restored(target: Endpoint, name: str) -> list[str]:
    """Drop a database a restore made, the restore's private databases for it, and its restore-state row.
    Returns the databases that existed. The caller checks that `name` is a scratch database."""
    names = [name, scratch_name(name, "restore"), scratch_name(name, "old")]
    with contextlib.closing(src.connect(target)) as conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN (%s, %s, %s)", names)
        existed = sorted(row[0] for row in cur.fetchall())
        for each in names:
            cur.execute(f"DROP DATABASE IF EXISTS {_q(each)}")
        try:
            cur.execute(f"DELETE FROM {STATE_DB}.restores WHERE database_name = %s", (name,))
        except pymysql.err.ProgrammingError as err:
            if err.args[0] not in (1049, 1146):  # no state database / table: no restore ever ran here
                raise
    return existed


def setup_scratch(target: Endpoint, name: str) -> list[str]:
    """Make sure the scratch database does not exist (a leftover of an earlier try is dropped): the
    restore creates it. Returns the leftovers that were dropped."""
    dropped = _drop(target, name)
    if dropped:
        log.warning("dropped leftovers of an earlier drill on %s: %s", target.describe(), ", ".join(dropped))
    return dropped


def teardown_scratch(target: Endpoint, name: str) -> list[str]:
    """Drop the scratch database and everything the restore made for it. Idempotent. Returns the
    databases that existed."""
    dropped = _drop(target, name)
    log.info("drill cleanup on %s: dropped %s", target.describe(), ", ".join(dropped) or "nothing (already clean)")
    return dropped


def database_size(target: Endpoint, name: str, *, scratch_checked: bool = False) -> int:
    """Bytes of data and indexes of a scratch database (information_schema), with fresh statistics: right
    after a bulk load the server's statistics may not have caught up. `scratch_checked`: the caller has made sure
    `name` is a scratch database of its own naming (a failover drill's `<database>_drill`)."""
    if not scratch_checked:
        _check_scratch(name)  # ANALYZE takes locks: never on a real database by mistake
    with contextlib.closing(src.connect(target)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE'", (name,))
        tables = [row[0] for row in cur.fetchall()]
        for start in range(0, len(tables), 100):
            batch = ", ".join(f"{_q(name)}.{_q(t)}" for t in tables[start:start + 100])
            cur.execute(f"ANALYZE NO_WRITE_TO_BINLOG TABLE {batch}")
            cur.fetchall()
        cur.execute("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                    "WHERE table_schema = %s", (name,))
        return int(cur.fetchone()[0])


def _at(report: dict) -> datetime | None:
    try:
        at = datetime.fromisoformat(report["at"])
    except (KeyError, TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def growth_per_day(points: list[tuple[datetime, int]]) -> float:
    """Least-squares linear growth in bytes per day; 0 without two different dates."""
    if len({at for at, _ in points}) < 2:
        return 0.0
    origin = min(at for at, _ in points)
    xs = [(at - origin).total_seconds() / 86400 for at, _ in points]
    ys = [float(size) for _, size in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
            / sum((x - mean_x) ** 2 for x in xs))


def drill_report(result: RestoreResult, manifest: Manifest, database_size_bytes: int, rto_seconds: int,
                 history: list[dict], *, run_stamp: str | None = None, at: datetime | None = None) -> dict:
    """What the drill measured and what it predicts. `history` holds earlier drill reports of the same
    database; `at` is the drill's date (default: the run stamp's, else now)."""
    if at is None:
        at = datetime.strptime(run_stamp, STAMP_FORMAT).replace(tzinfo=UTC) if run_stamp else datetime.now(UTC)
    run_stamp = _stamp_of(run_stamp or at)
    seconds = result.seconds
    rate = result.bytes_raw / seconds if seconds > 0 else 0.0

    points = [(at, database_size_bytes)]
    for earlier in history:
        when, size = _at(earlier), earlier.get("database_size_bytes")
        if (when is None or not isinstance(size, int) or earlier.get("run_stamp") == run_stamp
                or not at - timedelta(days=GROWTH_WINDOW_DAYS) <= when < at):
            continue
        points.append((when, size))
    growth = growth_per_day(points)
    # A shrinking database is not counted on: the prediction never goes below today's size.
    predicted_size = database_size_bytes + max(growth, 0.0) * HORIZON_DAYS
    scale = predicted_size / database_size_bytes if database_size_bytes > 0 else 1.0
    predicted_raw = result.bytes_raw * scale
    predicted_seconds = predicted_raw / rate if rate > 0 else seconds

    now_over, later_over = seconds > rto_seconds, predicted_seconds > rto_seconds
    alert = now_over or later_over
    what = f"restore of {manifest.database} ({manifest.backup_id})"
    if now_over:
        message = (f"{what} took {seconds:.0f} s, over the RTO of {rto_seconds} s: make restores faster (more "
                   f"jobs, a bigger DR server) or revise targets.rto_seconds")
    elif later_over:
        message = (f"{what} took {seconds:.0f} s; at {growth / MB:+.1f} MB/day it will take ~{predicted_seconds:.0f} s"
                   f" in {HORIZON_DAYS} days, over the RTO of {rto_seconds} s: make restores faster (more jobs, "
                   f"a bigger DR server) or revise targets.rto_seconds before then")
    else:
        message = (f"{what} took {seconds:.0f} s, ~{predicted_seconds:.0f} s predicted in {HORIZON_DAYS} days: "
                   f"within the RTO of {rto_seconds} s")
    return {
        "format": FORMAT,
        "database": manifest.database,
        "backup_id": manifest.backup_id,
        "manifest": result.manifest,
        "backup_logical_date": manifest.logical_date.isoformat(),
        "scratch_database": result.database,
        "run_stamp": run_stamp,
        "at": at.isoformat(),
        "seconds": round(seconds, 3),
        "tables": result.tables,
        "rows": result.rows,
        "manifest_rows": manifest.total_rows,
        "bytes": result.bytes,
        "bytes_raw": result.bytes_raw,
        "rows_per_second": round(result.rows / seconds, 1) if seconds > 0 else 0.0,
        "mb_per_second": round(rate / MB, 3),
        "verified": result.verified,
        "database_size_bytes": database_size_bytes,
        "prediction": {
            "horizon_days": HORIZON_DAYS,
            "history_points": len(points) - 1,
            "growth_bytes_per_day": round(growth),
            "restore_bytes_per_second": round(rate),
            "predicted_size_bytes": round(predicted_size),
            "predicted_seconds": round(predicted_seconds, 3),
        },
        "rto_seconds": rto_seconds,
        "alert": alert,
        "message": message,
    }


def _report_url(manifest_url: StorageUrl, run_stamp: str) -> StorageUrl:
    return BackupLayout.from_manifest_url(manifest_url).base.join(f"drill-{_stamp_of(run_stamp)}.json")


def store_report(store: BackupStore, manifest_url: StorageUrl, report: dict) -> StorageUrl:
    """Write the report next to the backup, once; the same report again is fine, another one is not."""
    url = _report_url(manifest_url, report["run_stamp"])
    data = json.dumps(report, indent=2, sort_keys=True).encode()
    blob = store.blob(url)
    try:
        blob.upload_blob(data, overwrite=False, content_settings=ContentSettings(content_type="application/json"))
    except ResourceExistsError:
        if blob.download_blob().readall() != data:
            raise ReportExistsError(f"{url} exists with another report of this run (the run was cleared and ran "
                                    f"again?): delete it to record this one") from None
        log.info("drill report %s was stored already", url)
    return url


def previous_reports(store: BackupStore, root: StorageUrl, database: str) -> list[dict]:
    """Every drill report stored under `<root>/<database>/`, oldest first; unreadable ones skipped."""
    prefix = "/".join(p for p in (root.path, validate_database_name(database)) if p) + "/"
    reports = []
    for item in store.container.list_blobs(name_starts_with=prefix):
        if not _REPORT.search("/" + item.name):
            continue
        try:
            report = json.loads(store.container.get_blob_client(item.name).download_blob().readall())
        except ValueError:
            log.warning("skipping %s: not a drill report (JSON does not parse)", item.name)
            continue
        if isinstance(report, dict) and report.get("format") == FORMAT and _at(report) is not None:
            reports.append(report)
    return sorted(reports, key=lambda r: _at(r))  # type: ignore[arg-type,return-value]


def report_drill(store: BackupStore, result: RestoreResult, root: StorageUrl, database_size_bytes: int,
                 rto_seconds: int, run_stamp: str, record: ManifestRecord | None = None) -> tuple[StorageUrl, dict]:
    """Compare the drill with earlier ones, predict, and store the report next to the backup. `record`: the
    restored backup's manifest when the caller holds it already (else it is read)."""
    manifest_url = StorageUrl.parse(result.manifest)
    if record is None or str(record.url) != result.manifest:
        record = store.read_manifest(manifest_url)
    if record is None:
        raise ManifestError(f"the restored backup's manifest {manifest_url} is gone (deleted by retention?)")
    history = previous_reports(store, root, record.manifest.database)
    report = drill_report(result, record.manifest, database_size_bytes, rto_seconds, history, run_stamp=run_stamp)
    url = store_report(store, manifest_url, report)
    return url, {**report, "report": str(url)}
