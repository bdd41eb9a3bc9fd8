"""The binlog archive's check: `binlog_archive/<database>`, the backup path's current RPO once binlogs are archived.

From the oldest verified backup's binlog position on, the archive (backup/binlog.py) must hold every piece
without a gap; its value is the age of the newest point the archive is known to cover: the newest archived
transaction, or the time the archiver last read the primary to its end (an idle primary writes nothing new,
and loses nothing). A gap (a binlog purged on the primary before it was archived, F34) is a breach naming it.
Ages are measured on the storage service's clock against the database server's times (never this worker's).
"""

from __future__ import annotations

from datetime import datetime

from multicloud_dr.backup.binlog import BinlogArchive, coverage
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.replication.result import BREACH, CheckResult, judge


def check_binlog_archive(name: str, store: BackupStore, root: StorageUrl, database: str,
                         threshold: float) -> CheckResult:
    store.check_container()
    archive = BinlogArchive(store, root, database)
    verified = [r for r in store.list_manifests(root, database)
                if r.manifest.verification.status == "verified" and r.manifest.binlog_file]
    now = store.server_now()
    if not verified:
        return CheckResult(name, BREACH, None, threshold,
                           f"no verified backup of {database} with a binlog position under {root}: the archive has "
                           f"nothing to start from (run mysql_backup)", facts={"storage_now": now.isoformat()})
    oldest = verified[0].manifest
    pieces = archive.pieces()
    cov = coverage(pieces, oldest.binlog_file, oldest.binlog_position)
    status = archive.read_status() or {}
    reached = [t for t in (cov.last_event_at,
                           status.get("covered_until") if cov.end == (status.get("file"), status.get("position"))
                           else None) if t]
    facts = {"pieces": len(pieces), "from": f"{oldest.binlog_file}:{oldest.binlog_position}",
             "to": f"{cov.end[0]}:{cov.end[1]}" if cov.end else None, "gaps": cov.gaps,
             "covered_until": max(reached) if reached else None, "storage_now": now.isoformat()}
    if not reached:
        return CheckResult(name, BREACH, None, threshold,
                           f"nothing of {database} archived after backup {oldest.backup_id} "
                           f"({oldest.binlog_file}:{oldest.binlog_position}) under {archive.base}: run "
                           f"mysql_binlog_archive or `drctl binlogs archive`"
                           + (f"; gaps: {'; '.join(cov.gaps)}" if cov.gaps else ""), facts=facts)
    age = (now - datetime.fromisoformat(max(reached))).total_seconds()
    detail = (f"binlogs archived without a gap from backup {oldest.backup_id} ({facts['from']}) to {facts['to']}; "
              f"everything committed before {max(reached)} is archived ({age:.0f} s ago)")
    if cov.gaps:
        return CheckResult(name, BREACH, round(age, 3), threshold,
                           f"the binlog archive of {database} has a gap: {'; '.join(cov.gaps)}; a point-in-time "
                           f"restore cannot cross it (take a new backup: the archive is whole from it on)", facts=facts)
    return judge(name, max(age, 0.0), threshold, detail, facts=facts)
