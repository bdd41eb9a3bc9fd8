"""drctl restore on the lab's real servers: equal to the source (F17), never half-applied (F18), the
MariaDB sandbox line handled on purpose (F19), and a non-empty target protected."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.exceptions import InputError
from multicloud_dr.restore.mysql_restore import (
    RestoreRequest,
    TargetNotEmptyError,
    restore_status,
    run_restore,
    scratch_name,
)

from .conftest import mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))


def _connect(endpoint, database=None):
    return mysql_connect(endpoint, database)


def _databases(endpoint) -> set[str]:
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {r[0] for r in cur.fetchall()}


def _drop(endpoint, *names) -> None:
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def target_name(restore_target):
    return restore_target("t_restored")


def _verified_backup(database, backup_root, blob_service, store, day=1):
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), database, backup_root,
                                      datetime(2026, 11, day, 3, tzinfo=UTC)), blob_service)
    assert verify_backup(store, result.manifest_url).status == "verified"
    return store.read_manifest(result.manifest_url)


def test_f17_restore_equals_the_source(small_db, backup_root, blob_service, store, dr, target_name, snapshot):
    record = _verified_backup(small_db[0], backup_root, blob_service, store)
    assert len(record.manifest.objects[0].segments) == len(record.manifest.tables) + 1
    result = run_restore(RestoreRequest(dr, target_name, jobs=3), store, record)
    assert result.verified and result.rows == record.manifest.total_rows
    assert result.checks["load"] == "segments"   # the tables' sections loaded side by side
    assert result.checks["objects"] == {"views": 1, "triggers": 1, "routines": 2, "events": 1}
    source, restored = snapshot(get_endpoint("mysql_primary"), small_db[0]), snapshot(dr, target_name)
    for key in source:
        assert restored[key] == source[key], f"{key} differs after the restore"
    assert restore_status(dr, target_name)["status"] == "complete"
    assert not {scratch_name(target_name, "restore"), scratch_name(target_name, "old")} & _databases(dr)


def test_f17_tables_loaded_on_two_connections_restore_equal(small_db, backup_root, blob_service, store, dr,
                                                           target_name, snapshot, monkeypatch):
    """The costliest table section may load on a second connection too (rows of a keyed table in any
    order); made to share every section here, the result must still equal the source."""
    from multicloud_dr.restore import mysql_restore

    monkeypatch.setattr(mysql_restore, "_shared_sections", lambda costs, sizes, jobs: set(costs))
    helpers = []
    real_loader = mysql_restore._Loader

    def counting_loader(*args, **kwargs):
        helpers.append(args[1])
        return real_loader(*args, **kwargs)

    monkeypatch.setattr(mysql_restore, "_Loader", counting_loader)
    record = _verified_backup(small_db[0], backup_root, blob_service, store, day=7)
    result = run_restore(RestoreRequest(dr, target_name, jobs=2), store, record)
    assert result.verified and result.checks["load"] == "segments"
    assert helpers, "no table section was shared by a second connection: the test does not test that"
    assert snapshot(dr, target_name) == snapshot(get_endpoint("mysql_primary"), small_db[0])


def test_f17_a_gzip_backup_restores_from_one_stream(small_db, backup_root, blob_service, store, dr, target_name,
                                                  snapshot):
    """gzip backups (and backups made before segments) have no segments: the one-stream path loads them."""
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), small_db[0], backup_root,
                                      datetime(2026, 11, 6, 3, tzinfo=UTC), codec="gzip"), blob_service)
    assert verify_backup(store, result.manifest_url).status == "verified"
    record = store.read_manifest(result.manifest_url)
    assert record.manifest.objects[0].segments == []
    restored = run_restore(RestoreRequest(dr, target_name, jobs=3), store, record)
    assert restored.verified and restored.checks["load"] == "stream"
    assert snapshot(dr, target_name) == snapshot(get_endpoint("mysql_primary"), small_db[0])


def test_f17_data_that_differs_from_the_manifest_fails_before_the_target_is_touched(
        small_db, backup_root, blob_service, store, dr, target_name):
    """The manifest is the reference: here it claims one more row in `visits` than the dump holds (as if
    a row had been lost on the way). The restore must refuse to swap and say which table differs."""
    from multicloud_dr.restore.mysql_restore import RestoreError

    record = _verified_backup(small_db[0], backup_root, blob_service, store, day=5)
    manifest = record.manifest.model_copy(deep=True)
    manifest.tables["visits"].rows += 1
    store.replace_manifest(record, manifest)
    record = store.read_manifest(record.url)
    with pytest.raises(RestoreError, match=r"visits: \d+ rows restored, \d+ in the backup"):
        run_restore(RestoreRequest(dr, target_name, jobs=3), store, record)
    assert target_name not in _databases(dr), "a restore that failed verification created the target"
    assert restore_status(dr, target_name)["status"] == "failed"


def test_parallel_verification_reads_the_same_checksums_as_one_dump(small_db):
    """Verification dumps groups of tables side by side; each table's rows and CRC must equal what one
    whole-database dump gives (the backup's way of computing them)."""
    from multicloud_dr.restore.mysql_restore import _checksums

    primary = get_endpoint("mysql_primary")
    together = _checksums(primary, small_db[0], jobs=1)
    apart = _checksums(primary, small_db[0], jobs=3)
    assert len(together) >= 8 and apart == together


def test_a_non_empty_target_needs_replace_and_replace_swaps_it(small_db, backup_root, blob_service, store, dr,
                                                               target_name, snapshot):
    record = _verified_backup(small_db[0], backup_root, blob_service, store)
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {target_name}")
        cur.execute(f"CREATE TABLE {target_name}.keep_me (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {target_name}.keep_me VALUES (42)")
    with pytest.raises(TargetNotEmptyError, match="--replace"):
        run_restore(RestoreRequest(dr, target_name), store, record)
    with contextlib.closing(_connect(dr, target_name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM keep_me")
        assert cur.fetchall() == ((42,),), "a refused restore touched the target"
    run_restore(RestoreRequest(dr, target_name, replace=True), store, record)
    restored = snapshot(dr, target_name)
    assert "table keep_me" not in restored
    assert restored == {**snapshot(get_endpoint("mysql_primary"), small_db[0])}


def test_an_unverified_backup_is_refused(small_db, backup_root, blob_service, store, dr, target_name):
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), small_db[0], backup_root,
                                      datetime(2026, 11, 4, 3, tzinfo=UTC)), blob_service)
    with pytest.raises(InputError, match="not verified"):
        run_restore(RestoreRequest(dr, target_name), store, store.read_manifest(result.manifest_url))
    assert target_name not in _databases(dr)


def test_f18_killed_restore_leaves_the_target_untouched_and_a_rerun_is_clean(big_db, backup_root, blob_service,
                                                                              store, dr, target_name, snapshot):
    record = _verified_backup(big_db[0], backup_root, blob_service, store)
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:  # the target holds yesterday's data
        cur.execute(f"CREATE DATABASE {target_name}")
        cur.execute(f"CREATE TABLE {target_name}.yesterday (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {target_name}.yesterday VALUES (1)")
    loading = scratch_name(target_name, "restore")
    temp_before = set(Path(tempfile.gettempdir()).iterdir())
    proc = subprocess.Popen([DRCTL, "restore", "--from", str(record.url), "--target", "mysql_dr", "--database",
                             target_name, "--replace", "--jobs", "2", "--lease-seconds", "15"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def loaded_rows() -> int:
        with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(table_rows), 0) FROM information_schema.tables WHERE table_schema=%s",
                        (loading,))
            return int(cur.fetchone()[0])

    deadline = time.monotonic() + 60
    while loaded_rows() < 1000:
        assert proc.poll() is None, f"the restore finished before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the load never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # F29: the DR admin's password reached the verification dumps in memory only: nothing is left behind.
    left = [p for p in set(Path(tempfile.gettempdir()).iterdir()) - temp_before if p.name.startswith("mcdr-")]
    assert left == [], f"the killed restore left files behind: {left}"
    password = dr.password.encode()
    for path in set(Path(tempfile.gettempdir()).iterdir()) - temp_before:
        if path.is_file() and path.stat().st_size < 1 << 20:
            assert password not in path.read_bytes(), f"{path} holds the DR admin's password"

    with contextlib.closing(_connect(dr, target_name)) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == (("yesterday",),), "the killed restore changed the target"
    assert restore_status(dr, target_name)["status"] == "loading", "a killed restore must not read as usable"
    time.sleep(16)  # the killed restore's lease on this target expires

    rerun = subprocess.run([DRCTL, "restore", "--from", str(record.url), "--target", "mysql_dr", "--database",
                            target_name, "--replace"], capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["verified"] is True
    assert restore_status(dr, target_name)["status"] == "complete"
    assert snapshot(dr, target_name) == snapshot(get_endpoint("mysql_primary"), big_db[0])
    assert loading not in _databases(dr)


def test_f19_the_mariadb_sandbox_line_is_handled_deliberately(small_db, backup_root, blob_service, store):
    """MariaDB's dump tool starts with a line MySQL's client rejects; our restore skips it on purpose
    (the round trip above passes through it), and the README says how plain-client users strip it."""
    record = _verified_backup(small_db[0], backup_root, blob_service, store)
    first = store.blob(StorageUrl.parse(record.manifest.objects[0].name)).download_blob(offset=0, length=256 * 1024)
    import zstandard

    head = zstandard.ZstdDecompressor().decompressobj().decompress(first.readall())
    assert head.startswith(b"/*M!999999\\- enable the sandbox mode */"), head[:80]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "sandbox" in readme and "tail -n +2" in readme


def test_f12_retention_skips_a_backup_a_restore_is_reading(small_db, backup_root, blob_service, store):
    from multicloud_dr.backup.layout import BackupLayout
    from multicloud_dr.backup.lease import BackupLease
    from multicloud_dr.backup.retention import RetentionPolicy, apply_retention, plan_retention

    old = _verified_backup(small_db[0], backup_root, blob_service, store, day=1)
    _verified_backup(small_db[0], backup_root, blob_service, store, day=2)
    layout = BackupLayout.from_manifest_url(old.url)
    far_future = datetime(2027, 6, 1, tzinfo=UTC)  # both backups far older than the policy allows
    with BackupLease(store.blob(layout.in_use("some-restore")), duration=15, purpose="restore"):
        plan = plan_retention(store, backup_root, small_db[0], RetentionPolicy(keep_days=30), now=far_future)
        result = apply_retention(store, plan, dry_run=False)
        assert any("in use" in s["reason"] for s in result.to_dict()["skipped"]), result.to_dict()
        assert store.read_manifest(old.url) is not None, "retention deleted a backup a restore was reading"
