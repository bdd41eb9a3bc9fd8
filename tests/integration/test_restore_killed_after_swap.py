"""F18 inside the swap-to-replay window: a restore killed (SIGKILL) after its RENAME moved the tables into
the target, before or while its views, triggers, routines and events are created.

The target then holds the backup's tables without all of its objects. It must not read as usable
(`restore_status` / `check_usable`, the failover gate's question), and a re-run of the same restore must
complete and equal the source: also without --replace, since the tables in the target are the killed
restore's own. The restore runs in a process of its own, stopped at the point by the test-only pause
(MCDR_TEST_PAUSE_AT, see restore/mysql_restore.py), and killed there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from azure.storage.blob import BlobLeaseClient

from multicloud_dr.backup.layout import BackupLayout
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.mysql_restore import (
    TEST_PAUSE_AT,
    TEST_PAUSE_FILE,
    RestoreNotUsableError,
    RestoreRequest,
    check_usable,
    restore_status,
    run_restore,
    scratch_name,
)

from .conftest import mysql_connect

RESTORE = """
import sys
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.restore.mysql_restore import RestoreRequest, run_restore

url, database, replace = StorageUrl.parse(sys.argv[1]), sys.argv[2], sys.argv[3] == "replace"
store = BackupStore(blob_service_client("azure_blob_dr"), url.bucket)
run_restore(RestoreRequest(get_endpoint("mysql_dr"), database, jobs=2, replace=replace, lease_seconds=15), store,
            store.read_manifest(url))
"""


@pytest.fixture
def target_name(restore_target):
    return restore_target("t_killed")


def _objects(endpoint, database) -> int:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM information_schema.views WHERE table_schema = %s) + "
                    "(SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = %s) + "
                    "(SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s) + "
                    "(SELECT COUNT(*) FROM information_schema.events WHERE event_schema = %s)", (database,) * 4)
        return int(cur.fetchone()[0])


def _base_tables(endpoint, database) -> set[str]:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE'", (database,))
        return {r[0] for r in cur.fetchall()}


@pytest.mark.parametrize(("point", "existing_target"), [("post-swap", False), ("mid-replay", True)])
def test_f18_a_restore_killed_between_swap_and_replay_is_not_usable_and_a_rerun_completes(
        point, existing_target, small_db, backup_root, blob_service, store, dr, target_name, snapshot, tmp_path):
    source = get_endpoint("mysql_primary")
    made = run_backup(BackupRequest(source, small_db[0], backup_root,
                                    datetime(2026, 11, 20, 3, tzinfo=UTC)), blob_service)
    assert verify_backup(store, made.manifest_url).status == "verified"
    if existing_target:   # an earlier database is being replaced (--replace)
        with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{target_name}`")
            cur.execute(f"CREATE TABLE `{target_name}`.yesterday (id INT PRIMARY KEY)")

    release = tmp_path / "release"
    paused = tmp_path / "release.paused"
    env = {**os.environ, TEST_PAUSE_AT: point, TEST_PAUSE_FILE: str(release)}
    proc = subprocess.Popen([sys.executable, "-c", RESTORE, str(made.manifest_url), target_name,
                             "replace" if existing_target else "no-replace"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not paused.exists():
            assert proc.poll() is None, f"the restore ended before it reached {point}: {proc.stderr.read()}"
            assert time.monotonic() < deadline, f"the restore never reached {point}"
            time.sleep(0.05)
        # The swap is done: the target holds the backup's tables, not (all) its views/triggers/routines/events.
        assert _base_tables(dr, target_name) == set(made.manifest.tables)
        assert _objects(dr, target_name) < 5
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    status = restore_status(dr, target_name)
    assert status["status"] in ("swapping", "swapped"), status
    with pytest.raises(RestoreNotUsableError, match="did not complete"):
        check_usable(dr, target_name)
    # The killed process's lease on the backup would free itself within its 15 s; broken here, not waited for.
    holder = [b.name for b in store.container.list_blobs(name_starts_with=BackupLayout.from_manifest_url(
        made.manifest_url).base.join(".inuse-").path)]
    for name in holder:
        BlobLeaseClient(store.container.get_blob_client(name)).break_lease(lease_break_period=0)

    # The re-run: no --replace (the target's tables are the killed restore's own).
    result = run_restore(RestoreRequest(dr, target_name, jobs=2), store, store.read_manifest(made.manifest_url))
    assert result.verified
    assert check_usable(dr, target_name)["status"] == "complete"
    assert snapshot(dr, target_name) == snapshot(source, small_db[0])
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN (%s, %s)",
                    (scratch_name(target_name, "restore"), scratch_name(target_name, "old")))
        assert cur.fetchall() == (), "the re-run left its private databases behind"
