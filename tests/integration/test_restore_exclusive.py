"""F27: two restores into the same target database at once, on the lab's real MariaDB DR server.

The second one must refuse at once with one clear line, whatever backup it restores and however it
names the server (127.0.0.1 or localhost); the first completes, equal to its source, and nothing of
it is dropped by the second.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.mysql_restore import restore_status, scratch_name
from multicloud_dr.restore.target_lock import lock_name

from .conftest import mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))


def _databases(endpoint) -> set[str]:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {r[0] for r in cur.fetchall()}


def _lock_holder(endpoint, database: str):
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT IS_USED_LOCK(%s)", (lock_name(database),))
        return cur.fetchone()[0]


@pytest.fixture
def target_name(restore_target):
    return restore_target("t_excl")


def _backup(database, backup_root, blob_service, store, day):
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), database, backup_root,
                                      datetime(2026, 11, day, 3, tzinfo=UTC)), blob_service)
    assert verify_backup(store, result.manifest_url).status == "verified"
    return result.manifest_url


def test_f27_a_second_restore_into_the_same_target_refuses_at_once(big_db, small_db, backup_root, blob_service,
                                                                    store, dr, target_name, snapshot):
    first_backup = _backup(big_db[0], backup_root, blob_service, store, day=1)
    other_backup = _backup(small_db[0], backup_root, blob_service, store, day=2)
    first = subprocess.Popen([DRCTL, "restore", "--from", str(first_backup), "--target", "mysql_dr", "--database",
                              target_name, "--replace", "--jobs", "2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _lock_holder(dr, target_name) is None:
            assert first.poll() is None, f"the first restore ended before it held the target: {first.stderr.read()}"
            assert time.monotonic() < deadline, "the first restore never took the target's lock"
            time.sleep(0.05)
        loading = scratch_name(target_name, "restore")
        while loading not in _databases(dr):   # the first restore is writing its private database
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)

        # Another backup, and the server named by another alias: the same target all the same.
        alias = (f"mysql://{quote(dr.login, safe='')}:{quote(dr.password or '', safe='')}@localhost:{dr.port}"
                 f"?{urlsplit(os.environ['LAB_MYSQL_DR_URI']).query}")   # the lab's TLS (localhost is in its cert)
        began = time.monotonic()
        second = subprocess.run([DRCTL, "restore", "--from", str(other_backup), "--target", alias, "--database",
                                 target_name, "--replace"], capture_output=True, text=True, timeout=120, check=False)
        refused_in = time.monotonic() - began
        assert second.returncode == 2, second.stderr
        lines = [line for line in second.stderr.splitlines() if "drctl: error:" in line]
        assert len(lines) == 1 and "another restore" in lines[0] and "Traceback" not in second.stderr, second.stderr
        assert refused_in < 15, f"the second restore took {refused_in:.1f} s to refuse: it did more than refuse"
        assert first.poll() is None, "the first restore ended while the second was refused"
        assert loading in _databases(dr), "the second restore dropped the first one's private database"
        assert second.stdout == ""

        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert json.loads(out)["verified"] is True
    assert restore_status(dr, target_name)["status"] == "complete"
    assert restore_status(dr, target_name)["manifest"] == str(first_backup)
    assert snapshot(dr, target_name) == snapshot(get_endpoint("mysql_primary"), big_db[0])
    assert _lock_holder(dr, target_name) is None, "the lock outlived the restore"


def test_f27_the_lock_frees_with_its_holder_and_the_next_restore_may_run(small_db, backup_root, blob_service, store,
                                                                         dr, target_name, snapshot):
    """A holder that dies (here: its connection closes) frees the target at once, with no stale state."""
    from multicloud_dr.backup import source as src
    from multicloud_dr.restore.target_lock import TargetBusyError, TargetLock

    with TargetLock(src.connect, dr, target_name), pytest.raises(TargetBusyError, match="another restore"), \
            TargetLock(src.connect, dr, target_name):
        pass
    assert _lock_holder(dr, target_name) is None
    url = _backup(small_db[0], backup_root, blob_service, store, day=3)
    done = subprocess.run([DRCTL, "restore", "--from", str(url), "--target", "mysql_dr", "--database", target_name],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert snapshot(dr, target_name) == snapshot(get_endpoint("mysql_primary"), small_db[0])
