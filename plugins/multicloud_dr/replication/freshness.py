"""Backup freshness: the age of the newest verified backup of a database.

Age is measured on the storage service's clock (its Date header) against the time the dump was
committed there (`stored_at`, also the storage service's clock), never this worker's clock (F25).
A backup that is stored but not verified does not count: it is not known to restore.
"""

from __future__ import annotations

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.replication.result import BREACH, CheckResult, judge


def check_backup_freshness(name: str, store: BackupStore, root: StorageUrl, database: str,
                           threshold: float) -> CheckResult:
    store.check_container()
    records = store.list_manifests(root, database)
    verified = [r for r in records if r.manifest.verification.status == "verified"]
    now = store.server_now()
    facts = {"backups": len(records), "verified": len(verified), "storage_now": now.isoformat()}
    if not verified:
        unverified = f" ({len(records)} stored, none verified)" if records else ""
        return CheckResult(name, BREACH, None, threshold,
                           f"no verified backup of {database} under {root}{unverified}: run the mysql_backup DAG "
                           f"or `drctl backup` and `drctl verify`", facts=facts)
    newest = max(verified, key=lambda r: r.manifest.stored_at)
    age = (now - newest.manifest.stored_at).total_seconds()
    facts |= {"newest": str(newest.url), "stored_at": newest.manifest.stored_at.isoformat(),
              "gtid": newest.manifest.gtid}
    detail = f"newest verified backup {newest.manifest.backup_id} is {_age(age)} old ({newest.url})"
    if age > threshold:
        detail += "; the nightly backup has not succeeded since: see the mysql_backup DAG's runs"
    return judge(name, age, threshold, detail, facts=facts)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
