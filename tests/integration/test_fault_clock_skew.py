"""F25 (FAULTS.md), "worker clock skew": the machine that runs a DR command has a wall clock days off (a VM
restored from a snapshot, a dead NTP daemon). What must happen: backup freshness and retention judge ages by
the servers' clocks (the storage service's Date header, the time it stored a dump), so a skewed worker neither
calls a fresh backup stale nor a stale one fresh, and retention deletes nothing early and keeps nothing late.

Each command runs as a child process under Debian's `faketime` (libfaketime through LD_PRELOAD) three days
ahead and three days behind, against the lab's real Azurite and MariaDB, whose clocks are right; the answers
are compared with the same command run without skew. Only the wall clock is skewed
(FAKETIME_DONT_FAKE_MONOTONIC=1): a host whose NTP is off still has a steady monotonic clock. Backups with old
server-side dates are seeded as manifests whose `stored_at` lies in the past (Azurite's own timestamps cannot
be backdated). Azurite, unlike Azure, does not reject requests whose x-ms-date is off by more than 15 minutes,
which is what lets the skewed code paths run here at all.

Retention has no `drctl` command: it runs here through the library's `run_retention`, the function the DAG's
retention task calls, in a child Python process under faketime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import BackupLayout, StorageUrl
from multicloud_dr.backup.verify import latest_verified

from .conftest import seed_backup

ROOT = Path(__file__).resolve().parents[2]
DRCTL = str(Path(sys.executable).with_name("drctl"))
SKEWS = {"+3d": timedelta(days=3), "-3d": timedelta(days=-3)}
DAY = 86400.0
FRESHNESS_THRESHOLD = 26 * 3600.0   # the shipped topology's backup_age_seconds


def _faketime() -> str:
    path = shutil.which("faketime")
    if path is None:
        pytest.fail("faketime is not installed (F25 needs it): apt-get install -y faketime (in the Makefile's "
                    "DEBIAN_PACKAGES, so `make install` installs it)")
    return path


def run_skewed(argv: list[str], skew: str | None, env: dict[str, str] | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `argv` with the wall clock `skew` off (faketime -f '+3d'), or unskewed for None."""
    env = {**os.environ, **(env or {}), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    prefix = [_faketime(), "-f", skew] if skew else []
    return subprocess.run(prefix + argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def seed(store, root: StorageUrl, database: str, days_old: float, status: str, server_now: datetime) -> BackupLayout:
    """A backup stored `days_old` days before the storage server's `server_now`."""
    return seed_backup(store, root, database, days_old, status, server_now)


def write_topology(path: Path, databases: list[str], root: StorageUrl) -> Path:
    """The shipped topology with only these MySQL databases (no replicas, no DMS), backed up under `root`."""
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["databases"] = [{"name": name, "engine": "mysql", "primary_conn_id": "mysql_primary"} for name in databases]
    data["backup"] = {**data["backup"], "location": str(root), "copies": []}
    data["replication"] = {**data["replication"], "dms": []}
    data["replication"]["thresholds"]["backup_age_seconds"] = FRESHNESS_THRESHOLD
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _backup_id(layout: BackupLayout) -> str:
    return f"{layout.database}/{layout.stamp}"


@pytest.mark.parametrize("skew", list(SKEWS))
def test_f25_faketime_really_skews_the_child_wall_clock(lab, skew):
    """The premise of the other tests: `date` and the venv's Python (drctl's interpreter) in the child see
    the wall clock `skew` off, while its monotonic clock is untouched."""
    expected = SKEWS[skew].total_seconds()
    before = time.time()
    shell = run_skewed(["date", "+%s"], skew)
    python = run_skewed([sys.executable, "-c", "import json, time; from datetime import UTC, datetime; "
                         "print(json.dumps([time.time(), datetime.now(UTC).timestamp(), time.monotonic()]))"], skew)
    assert shell.returncode == 0 and python.returncode == 0, shell.stderr + python.stderr
    wall, aware, monotonic = json.loads(python.stdout)
    for seen in (float(shell.stdout), wall, aware):
        assert abs(seen - before - expected) < 60, (skew, seen - before)
    assert abs(monotonic - time.monotonic()) < 60   # not skewed (and never negative, as -3d would make it)


# -- freshness ---------------------------------------------------------------------------------------------------
@pytest.fixture
def freshness_topology(store, backup_root, tmp_path):
    """Two databases under one backup root: one whose newest verified backup is an hour old, one whose newest
    is 30 hours old (the threshold is 26 h), by the storage server's clock; a topology naming them."""
    now = store.server_now()
    fresh, stale = f"fresh_{uuid.uuid4().hex[:6]}", f"stale_{uuid.uuid4().hex[:6]}"
    seed(store, backup_root, fresh, 1 / 24, "verified", now)
    seed(store, backup_root, fresh, 3, "verified", now)
    seed(store, backup_root, stale, 30 / 24, "verified", now)
    seed(store, backup_root, stale, 2 / 24, "unverified", now)    # newer, but not known to restore
    return write_topology(tmp_path / "topology.yaml", [fresh, stale], backup_root), fresh, stale


def _freshness(topology: Path, names: list[str], skew: str | None) -> tuple[int, dict[str, dict]]:
    argv = [DRCTL, "replication", "check", "--json"] + [a for n in names for a in ("--only", f"backup_freshness/{n}")]
    done = run_skewed(argv, skew, env={"MULTICLOUD_DR_TOPOLOGY": str(topology)})
    assert done.returncode in (0, 1), f"drctl replication check failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.returncode, {c["name"].split("/", 1)[1]: c for c in json.loads(done.stdout)["checks"]}


def test_f25_backup_freshness_is_the_same_with_the_worker_clock_3_days_off(freshness_topology):
    topology, fresh, stale = freshness_topology
    code, unskewed = _freshness(topology, [fresh, stale], None)
    assert code == 1   # the stale one is a breach
    assert (unskewed[fresh]["status"], unskewed[stale]["status"]) == ("ok", "breach")
    assert abs(unskewed[fresh]["value"] - 3600) < 120 and abs(unskewed[stale]["value"] - 30 * 3600) < 120
    for skew in SKEWS:
        code, skewed = _freshness(topology, [fresh, stale], skew)
        assert code == 1, skew
        for name in (fresh, stale):
            assert skewed[name]["status"] == unskewed[name]["status"], (skew, name, skewed[name]["detail"])
            # The same age to within the seconds between the two runs: no trace of 3 days (259,200 s).
            assert abs(skewed[name]["value"] - unskewed[name]["value"]) < 60, (skew, name, skewed[name])
            assert skewed[name]["facts"]["newest"] == unskewed[name]["facts"]["newest"]


# -- retention ---------------------------------------------------------------------------------------------------
RETENTION_CHILD = textwrap.dedent("""
    import json, sys, time
    from multicloud_dr.backup.retention import RetentionPolicy, run_retention
    from multicloud_dr.connections.wasb import blob_service_client

    root, database, mode = sys.argv[1:4]
    result = run_retention(blob_service_client("azure_blob_dr"), root, database,
                           RetentionPolicy(keep_days=30, min_keep=1), dry_run=mode == "dry-run")
    print(json.dumps({"worker_time": time.time(), "result": result.to_dict()}))
""")


def _retention(root: StorageUrl, database: str, mode: str, skew: str | None) -> dict:
    done = run_skewed([sys.executable, "-c", RETENTION_CHILD, str(root), database, mode], skew)
    assert done.returncode == 0, f"retention failed under {skew}: {done.stderr[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = SKEWS[skew].total_seconds() if skew else 0
    assert abs(out["worker_time"] - time.time() - expected) < 120, "the child's clock is not skewed"
    return out["result"]


@pytest.mark.parametrize("skew", list(SKEWS))
def test_f25_retention_deletes_the_same_backups_with_the_worker_clock_3_days_off(store, backup_root, skew):
    """keep_days=30 by the storage server's clock. A worker 3 days fast, judging by its own clock, would delete
    the 29-day-old backup; one 3 days slow would keep the 31-day-old one."""
    db = f"skew_{uuid.uuid4().hex[:6]}"
    now = store.server_now()
    newest = seed(store, backup_root, db, 1, "verified", now)
    young = seed(store, backup_root, db, 29, "verified", now)
    expired = seed(store, backup_root, db, 31, "unverified", now)
    old = seed(store, backup_root, db, 35, "verified", now)
    want_deleted = sorted([_backup_id(expired), _backup_id(old)])
    want_kept = sorted([_backup_id(newest), _backup_id(young)])

    unskewed = _retention(backup_root, db, "dry-run", None)
    assert (sorted(unskewed["would_delete"]), sorted(unskewed["kept"])) == (want_deleted, want_kept)
    planned = _retention(backup_root, db, "dry-run", skew)
    assert (sorted(planned["would_delete"]), sorted(planned["kept"])) == (want_deleted, want_kept), planned
    applied = _retention(backup_root, db, "apply", skew)
    assert sorted(applied["deleted"]) == want_deleted and sorted(applied["kept"]) == want_kept, applied
    for layout in (newest, young):
        assert all(store.blob(u).exists() for u in (layout.manifest, layout.data, layout.lease))
    for layout in (expired, old):
        assert not any(store.blob(u).exists() for u in (layout.manifest, layout.data, layout.lease))


# -- a backup made by a skewed worker ------------------------------------------------------------------------------
def _drctl_backup(database: str, root: StorageUrl, skew: str | None) -> dict:
    done = run_skewed([DRCTL, "backup", "--source", "mysql_primary", "--database", database, "--to", str(root)], skew)
    assert done.returncode == 0, f"drctl backup under {skew} failed: {done.stderr[-3000:]}"
    manifest = json.loads(done.stdout)["manifest"]
    done = run_skewed([DRCTL, "verify", manifest], skew)
    assert done.returncode == 0, f"drctl verify under {skew} failed: {done.stderr[-3000:]}"
    return {"manifest": manifest}


def test_f25_a_backup_made_and_verified_by_a_skewed_worker_carries_server_times_and_counts_as_fresh(
        store, backup_root, scratch_database, tmp_path):
    """`drctl backup` and `drctl verify` 3 days fast: the manifest's times (dump start and end: the database
    server's; stored and verified: the storage service's) are right, and freshness, run 3 days slow, calls
    the backup what it is: minutes old."""
    database = scratch_database(1)
    made = _drctl_backup(database, backup_root, "+3d")
    record = store.read_manifest(StorageUrl.parse(made["manifest"]))
    real_now = datetime.now(UTC)
    m = record.manifest
    for what, when in (("started_at", m.started_at), ("finished_at", m.finished_at), ("stored_at", m.stored_at),
                       ("verification.at", m.verification.at)):
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        assert abs(when - real_now) < timedelta(minutes=5), (what, when, real_now)
    assert m.verification.status == "verified"

    topology = write_topology(tmp_path / "topology.yaml", [database], backup_root)
    for skew in (*SKEWS, None):
        _, checks = _freshness(topology, [database], skew)
        assert checks[database]["status"] == "ok" and 0 <= checks[database]["value"] < 600, (skew, checks)


def test_f25_a_backup_named_by_a_skewed_worker_does_not_shadow_a_newer_one(store, backup_root, scratch_database):
    database = scratch_database(1)
    _drctl_backup(database, backup_root, "+3d")     # first, on a host 3 days fast
    newer = _drctl_backup(database, backup_root, None)
    assert str(latest_verified(store, backup_root, database).url) == newer["manifest"]
