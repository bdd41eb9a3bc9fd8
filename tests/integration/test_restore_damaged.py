"""F28: a backup damaged after it was verified, on the lab's real MariaDB and Azurite.

F28 means: a byte of a verified backup's object changed in storage (or the object is gone) after the
verification said it was good. The restore must find it while it streams, before its swap: the target
database is untouched and its restore state does not read as usable; the manifest says `failed` from
then on; a restore of `latest` falls back to the previous verified backup and says so (a log line and
the result's `fell_back_from`). Retention no longer counts a backup whose re-read failed among the
verified backups it must keep.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.retention import RetentionPolicy, plan_retention
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore import mysql_restore
from multicloud_dr.restore.mysql_restore import (
    BackupDamagedError,
    RestoreNotUsableError,
    RestoreRequest,
    check_usable,
    restore_backup,
    restore_status,
    run_restore,
    scratch_name,
)

from .conftest import mysql_connect


@pytest.fixture
def target(restore_target):
    """A target database on the DR server that holds yesterday's data (one table, one row)."""
    return restore_target("t_damaged", yesterday=True)


def _tables(endpoint, database) -> list[str]:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (database,))
        return [r[0] for r in cur.fetchall()]


def _databases(endpoint) -> set[str]:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {r[0] for r in cur.fetchall()}


def _verified_backup(database, backup_root, blob_service, store, day, codec="zstd"):
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), database, backup_root,
                                      datetime(2026, 11, day, 3, tzinfo=UTC), codec=codec), blob_service)
    assert verify_backup(store, result.manifest_url).status == "verified"
    return store.read_manifest(result.manifest_url)


def _two_verified_backups(scratch_database, primary, backup_root, blob_service, store, snapshot, codec="zstd"):
    """A backup, a change of the source, a second backup: (older record, its snapshot, newer record)."""
    source = scratch_database(0.3)
    older = _verified_backup(source, backup_root, blob_service, store, day=1, codec=codec)
    at_older = snapshot(primary, source)
    with contextlib.closing(mysql_connect(primary, source)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE added_after_the_first_backup (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO added_after_the_first_backup VALUES (1), (2)")
    newer = _verified_backup(source, backup_root, blob_service, store, day=2, codec=codec)
    assert "added_after_the_first_backup" in newer.manifest.tables
    return source, older, at_older, newer


def _damage(store, record, how: str) -> None:
    """Flip one byte in the middle of the object's largest table section (or of the object), or delete it."""
    obj = record.manifest.objects[0]
    blob = store.blob(StorageUrl.parse(obj.name))
    if how == "delete":
        blob.delete_blob()
        return
    data = bytearray(blob.download_blob().readall())
    if obj.segments:
        largest = max(obj.segments[1:], key=lambda s: s.bytes)
        at = largest.offset + largest.bytes // 2
    else:
        at = len(data) // 2
    data[at] ^= 0x01
    blob.upload_blob(bytes(data), overwrite=True)


@pytest.mark.parametrize(("codec", "how"), [("zstd", "flip"), ("gzip", "flip"), ("zstd", "delete")])
def test_f28_latest_falls_back_to_the_previous_verified_backup_and_says_so(
        codec, how, scratch_database, primary, backup_root, blob_service, store, dr, target, snapshot, caplog,
        monkeypatch):
    caplog.set_level("WARNING", logger="multicloud_dr.restore.mysql_restore")
    source, older, at_older, newer = _two_verified_backups(scratch_database, primary, backup_root, blob_service,
                                                           store, snapshot, codec)
    _damage(store, newer, how)

    # The moment the fallback starts, the damaged backup's attempt is over: it must not have touched the target.
    seen_at_fallback = []
    real_restore_into = mysql_restore._restore_into

    def restore_into(request, store_, record, lock):
        if record.url == older.url:
            status = restore_status(dr, target)
            seen_at_fallback.append({"tables": _tables(dr, target), "status": status and status["status"]})
            with pytest.raises(RestoreNotUsableError):
                check_usable(dr, target)
        return real_restore_into(request, store_, record, lock)

    monkeypatch.setattr(mysql_restore, "_restore_into", restore_into)
    result = restore_backup(RestoreRequest(dr, target, jobs=2, replace=True), blob_service, "latest", backup_root,
                            source)

    # A missing object is found before anything is written on the target (no restore row yet); a changed
    # byte while the rows stream into the private database (the row says failed).
    assert seen_at_fallback == [{"tables": ["yesterday"], "status": None if how == "delete" else "failed"}], \
        "the damaged backup's restore touched the target or left it looking usable"
    assert result.manifest == str(older.url)
    assert [d["manifest"] for d in result.fell_back_from] == [str(newer.url)]
    reason = result.fell_back_from[0]["reason"]
    assert ("SHA-256" in reason) if how == "flip" else ("missing" in reason), reason
    assert result.to_dict()["fell_back_from"] == result.fell_back_from
    assert f"falling back to the previous verified backup {older.manifest.backup_id}" in caplog.text
    assert snapshot(dr, target) == at_older, "the restored database is not the older backup's"
    assert check_usable(dr, target)["manifest"] == str(older.url)

    damaged = store.read_manifest(newer.url).manifest.verification
    assert damaged.status == "failed" and damaged.detail.startswith(f"restore into {target}")
    # Retention: the damaged backup no longer counts as verified; the one restored is the newest kept.
    plan = plan_retention(store, backup_root, source, RetentionPolicy(keep_days=30, min_keep=1),
                          now=datetime(2027, 6, 1, tzinfo=UTC))
    actions = {d.backup_id: d.action for d in plan.decisions}
    assert actions == {older.manifest.backup_id: "keep", newer.manifest.backup_id: "delete"}, actions


def test_f28_a_damaged_backup_asked_for_by_url_is_refused_and_nothing_else_is_restored(
        scratch_database, primary, backup_root, blob_service, store, dr, target, snapshot):
    _, _, _, newer = _two_verified_backups(scratch_database, primary, backup_root, blob_service, store, snapshot)
    _damage(store, newer, "flip")
    with pytest.raises(BackupDamagedError, match=r"SHA-256 .* the backup was damaged after it was verified"):
        run_restore(RestoreRequest(dr, target, jobs=2, replace=True), store, newer)
    assert _tables(dr, target) == ["yesterday"], "a damaged backup's restore touched the target"
    assert restore_status(dr, target)["status"] == "failed"
    with pytest.raises(RestoreNotUsableError, match="did not complete"):
        check_usable(dr, target)
    assert scratch_name(target, "restore") not in _databases(dr)
    assert store.read_manifest(newer.url).manifest.verification.status == "failed"


def test_f28_retention_does_not_count_a_backup_whose_re_read_failed(scratch_database, primary, backup_root,
                                                                     blob_service, store, snapshot):
    """The newer backup's object is gone; its re-verification must record that (it used to stop on the
    missing blob and leave the manifest `verified`), so retention keeps the older verified backup as the
    newest good one instead of deleting it."""
    source, older, _, newer = _two_verified_backups(scratch_database, primary, backup_root, blob_service, store,
                                                    snapshot)
    _damage(store, newer, "delete")
    result = verify_backup(store, newer.url)
    assert result.status == "failed" and "missing" in result.detail
    assert store.read_manifest(newer.url).manifest.verification.status == "failed"
    plan = plan_retention(store, backup_root, source, RetentionPolicy(keep_days=30, min_keep=1),
                          now=datetime(2027, 6, 1, tzinfo=UTC))
    kept = {d.backup_id for d in plan.decisions if d.action == "keep"}
    assert kept == {older.manifest.backup_id}, plan.to_dict()
