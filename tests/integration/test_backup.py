"""The nightly backup on the lab's real MariaDB and Azurite: one test per fault it must survive
(fault ids F1-F25 as the issues cite them), each asserting what a user would check: is there exactly one complete,
verifiable backup, or none at all, and was anything overwritten or leaked."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multicloud_dr.backup.blockblob import BlobConflictError, StagedBlockWriter, commit
from multicloud_dr.backup.layout import BackupLayout, StorageUrl, stamp
from multicloud_dr.backup.lease import BackupLease, LeaseHeldError
from multicloud_dr.backup.mysql_backup import BackupRequest, DumpFailedError, run_backup
from multicloud_dr.backup.source import SourceError
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import latest_verified, verify_backup
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.exceptions import ConfigError

from .conftest import mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))
KB = 1024


def _date(day: int, hour: int = 3) -> datetime:
    return datetime(2026, 11, day, hour, 0, 0, tzinfo=UTC)


def _blobs(store: BackupStore, root: StorageUrl) -> dict[str, tuple]:
    """name -> (etag, last_modified) of every committed blob under root."""
    return {b.name: (b.etag, b.last_modified)
            for b in store.container.list_blobs(name_starts_with=root.path + "/")}


def _uncommitted(store: BackupStore, layout: BackupLayout) -> int:
    try:
        _, uncommitted = store.blob(layout.data).get_block_list("uncommitted")
    except Exception:
        return 0
    return len(uncommitted)


def _backup(primary, database, root, service, day=1, **kwargs):
    return run_backup(BackupRequest(primary, database, root, _date(day), **kwargs), service)


def _mysqldump_running(database: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"mysqldump") and database.encode() in argv:
                pids.append(int(proc.name))
    return pids


# -- the happy path -----------------------------------------------------------------------------------
def test_backup_writes_one_verified_backup_with_a_complete_manifest(primary, small_db, backup_root, blob_service,
                                                                    store):
    database, counts = small_db
    result = _backup(primary, database, backup_root, blob_service)
    m = result.manifest
    assert result.created and m.database == database
    assert {name: t.rows for name, t in m.tables.items()} == counts, "row counts differ from what was inserted"
    assert m.binlog_file and m.binlog_position and m.gtid, "binlog coordinates / GTID missing"
    assert m.codec == "zstd" and len(m.objects) == 1
    obj = m.objects[0]
    assert obj.name == f"wasb://dr-backups/{backup_root.path}/{database}/20261101T030000Z/{database}.sql.zst"
    props = store.blob(StorageUrl.parse(obj.name)).get_blob_properties()
    assert props.size == obj.bytes and props.metadata["sha256"] == obj.sha256
    assert m.started_at <= m.finished_at and m.stored_at is not None
    verdict = verify_backup(store, result.manifest_url)
    assert verdict.status == "verified", verdict.detail
    assert latest_verified(store, backup_root, database).url == result.manifest_url


def test_gzip_codec_is_readable_with_gunzip(primary, small_db, backup_root, blob_service, store):
    result = _backup(primary, small_db[0], backup_root, blob_service, codec="gzip")
    data = store.blob(StorageUrl.parse(result.manifest.objects[0].name)).download_blob().readall()
    sql = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout
    assert sql.rstrip().splitlines()[-1].startswith(b"-- Dump completed")
    assert verify_backup(store, result.manifest_url).status == "verified"


# -- bad input: clear errors, nothing written --------------------------------------------------------------
def test_unknown_database_is_a_clear_error_and_writes_nothing(primary, backup_root, blob_service, store):
    with pytest.raises(SourceError, match="does not exist"):
        _backup(primary, "no_such_db", backup_root, blob_service)
    assert _blobs(store, backup_root) == {}


def test_missing_container_is_a_clear_error(primary, small_db, blob_service):
    with pytest.raises(ConfigError, match="container 'no-such-container' does not exist"):
        _backup(primary, small_db[0], StorageUrl.parse("wasb://no-such-container/x"), blob_service)


def test_drctl_bad_input_exits_2_with_one_line(small_db, backup_root):
    cases = [
        ["--source", "mysql_primary", "--database", "no_such_db"],
        ["--source", "mysql://dr_admin:x@127.0.0.1:9", "--database", small_db[0]],
        ["--source", "no_such_connection", "--database", small_db[0]],
    ]
    for args in cases:
        run = subprocess.run([DRCTL, "backup", *args, "--to", str(backup_root)], capture_output=True, text=True,
                             timeout=120, check=False)
        assert run.returncode == 2, (args, run.stderr)
        errors = [line for line in run.stderr.splitlines() if line.startswith("drctl: error:")]
        assert len(errors) == 1 and run.stdout == "", (args, run.stderr)
    run = subprocess.run([DRCTL, "backup", "--source", "mysql_primary", "--database", small_db[0],
                          "--to", "wasb://no-such-container/x"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 2 and "no-such-container" in run.stderr


def _env_with_storage(endpoint) -> dict[str, str]:
    """drctl's environment with a `proxied_blob` connection going through a test proxy."""
    conn = json.dumps({"conn_type": "wasb", "extra": endpoint.extra})
    return {**os.environ, "AIRFLOW_CONN_PROXIED_BLOB": conn}


def _drctl_backup(database, root, *extra, env=None, date="2026-11-01T03:00:00Z"):
    return subprocess.Popen([DRCTL, "backup", "--source", "mysql_primary", "--database", database, "--to", str(root),
                             "--logical-date", date, *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- F1: the uploader is killed after some blocks are staged --------------------------------------------------
def test_f1_killed_uploader_leaves_nothing_and_the_retry_makes_one_backup(big_db, backup_root, store, azure_proxy,
                                                                          tmp_path):
    database = big_db[0]
    layout = BackupLayout(backup_root, database, stamp(_date(1)))
    _, slow = azure_proxy(bytes_per_second=2_000_000)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc = _drctl_backup(database, backup_root, "--storage-conn", "proxied_blob", "--block-size", str(256 * KB),
                         "--lease-seconds", "15", "--upload-buffer-mb", "1",
                         env={**_env_with_storage(slow), "TMPDIR": str(private_tmp)})
    _wait_for(lambda: proc.poll() is not None or _uncommitted(store, layout) >= 3, 60, "staged blocks")
    assert proc.poll() is None, "the backup ended before it could be killed mid-upload"
    dump_pids = _mysqldump_running(database)
    assert dump_pids, "no mysqldump child seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _uncommitted(store, layout) >= 3
    assert not store.blob(layout.data).exists(), "a blob was committed by a killed upload"
    assert not store.blob(layout.manifest).exists()
    assert not list(private_tmp.rglob("*.cnf")), "the killed run left its password file behind (F15)"
    _wait_for(lambda: not any(p in _mysqldump_running(database) for p in dump_pids), 15,
              "the orphaned mysqldump to exit (its reader is gone)")

    time.sleep(16)  # the dead run's 15 s lease expires
    retry = _drctl_backup(database, backup_root, "--lease-seconds", "15")
    out, err = retry.communicate(timeout=300)
    assert retry.returncode == 0, err
    assert json.loads(out)["created"] is True
    committed = [n for n in _blobs(store, backup_root) if n.endswith(".sql.zst")]
    assert committed == [layout.data.path], committed
    assert verify_backup(store, layout.manifest).status == "verified"


# -- F2: mysqldump is killed mid-dump ----------------------------------------------------------------------------
def test_f2_killed_mysqldump_fails_the_backup_and_commits_nothing(primary, big_db, backup_root, store, azure_proxy):
    database = big_db[0]
    layout = BackupLayout(backup_root, database, stamp(_date(1)))
    _, slow = azure_proxy(bytes_per_second=2_000_000)
    children: list = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while (not children or _uncommitted(store, layout) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        if children:
            children[0].kill()

    threading.Thread(target=killer, daemon=True).start()
    request = BackupRequest(primary, database, backup_root, _date(1), block_size=256 * KB,
                            max_inflight_bytes=512 * KB)
    with pytest.raises(DumpFailedError, match="mysqldump exited with status"):
        run_backup(request, blob_service_client(slow), on_child=lambda c: children.append(c) if c else None)
    assert not store.blob(layout.data).exists() and not store.blob(layout.manifest).exists()


# -- F3: the reader side of the pipe dies ----------------------------------------------------------------------
def test_f3_failing_upload_stops_the_dump_quickly_without_orphans(primary, big_db, backup_root, store, azure_proxy):
    database = big_db[0]
    layout = BackupLayout(backup_root, database, stamp(_date(1)))
    proxy, failing = azure_proxy(forbid_after=3)
    children: list = []
    t0 = time.monotonic()
    with pytest.raises(Exception, match=r"403|Forbidden|staging blocks"):
        run_backup(BackupRequest(primary, database, backup_root, _date(1), block_size=256 * KB),
                   blob_service_client(failing), on_child=lambda c: children.append(c) if c else None)
    elapsed = time.monotonic() - t0
    assert proxy.plan.seen["forbidden"] >= 1
    assert elapsed < 60, f"the failure took {elapsed:.0f} s to surface"
    assert children and children[0].poll() is not None, "mysqldump still running after the backup failed"
    assert not store.blob(layout.data).exists() and not store.blob(layout.manifest).exists()


# -- F4 / F5: damaged objects are caught by verify and never chosen --
def _two_verified_backups(primary, database, root, service, store):
    older = _backup(primary, database, root, service, day=1)
    newer = _backup(primary, database, root, service, day=2)
    for result in (older, newer):
        assert verify_backup(store, result.manifest_url).status == "verified"
    return older, newer


def _data_blob(store, result):
    return store.blob(StorageUrl.parse(result.manifest.objects[0].name))


def _replace_data(store, result, data: bytes) -> None:
    blob = _data_blob(store, result)
    blob.upload_blob(data, overwrite=True, metadata=blob.get_blob_properties().metadata)


def test_f4_truncated_dump_fails_verify_and_latest_picks_the_previous(primary, small_db, backup_root, blob_service,
                                                                        store):
    older, newer = _two_verified_backups(primary, small_db[0], backup_root, blob_service, store)
    data = _data_blob(store, newer).download_blob().readall()
    _replace_data(store, newer, data[: len(data) * 2 // 3])
    verdict = verify_backup(store, newer.manifest_url)
    assert verdict.status == "failed" and "SHA-256" in verdict.detail
    assert latest_verified(store, backup_root, small_db[0]).url == older.manifest_url


def test_f4_cut_copy_with_a_matching_hash_is_still_rejected(primary, small_db, backup_root, blob_service, store):
    """Even if a manifest's hash were made to match a cut object, decompression and the footer catch it."""
    older, newer = _two_verified_backups(primary, small_db[0], backup_root, blob_service, store)
    record = store.read_manifest(newer.manifest_url)
    data = _data_blob(store, newer).download_blob().readall()
    cut = data[: len(data) // 2]
    _replace_data(store, newer, cut)
    # (its segments dropped too: a manifest whose segments do not tile the object does not even parse)
    obj = record.manifest.objects[0].model_copy(update={"bytes": len(cut), "sha256": hashlib.sha256(cut).hexdigest(),
                                                        "segments": []})
    store.replace_manifest(record, record.manifest.model_copy(update={"objects": [obj]}))
    verdict = verify_backup(store, newer.manifest_url)
    assert verdict.status == "failed" and ("ends early" in verdict.detail or "footer" in verdict.detail), verdict
    assert latest_verified(store, backup_root, small_db[0]).url == older.manifest_url


def test_f5_one_flipped_byte_fails_verify_and_restore_picks_the_previous(primary, small_db, backup_root,
                                                                          blob_service, store):
    older, newer = _two_verified_backups(primary, small_db[0], backup_root, blob_service, store)
    data = bytearray(_data_blob(store, newer).download_blob().readall())
    data[len(data) // 2] ^= 0x01
    _replace_data(store, newer, bytes(data))
    verdict = verify_backup(store, newer.manifest_url)
    assert verdict.status == "failed" and "differs from the manifest" in verdict.detail
    assert store.read_manifest(newer.manifest_url).manifest.verification.status == "failed"
    assert latest_verified(store, backup_root, small_db[0]).url == older.manifest_url


# -- F6: the commit's response is lost ---------------------------------------------------------------------------
def test_f6_lost_commit_reply_is_recognised_by_its_hash(primary, small_db, backup_root, store, azure_proxy):
    proxy, lossy = azure_proxy(drop_reply_once=b"comp=blocklist")
    result = run_backup(BackupRequest(primary, small_db[0], backup_root, _date(1), block_size=256 * KB),
                        blob_service_client(lossy))
    assert proxy.plan.seen["dropped"] == 1, "the proxy did not drop the commit reply"
    assert result.created
    assert verify_backup(store, result.manifest_url).status == "verified"
    assert [n for n in _blobs(store, backup_root) if n.endswith(".sql.zst")] == [
        StorageUrl.parse(result.manifest.objects[0].name).path]


def test_f6_existing_blob_with_another_hash_is_never_overwritten(backup_root, store):
    blob = store.blob(backup_root.join("x.sql.zst"))
    blob.upload_blob(b"the original", metadata={"sha256": "0" * 64})
    writer = StagedBlockWriter(blob, block_size=4)
    writer.write(b"different content")
    ids, sha = writer.finish()
    with pytest.raises(BlobConflictError, match="not overwritten"):
        commit(blob, ids, sha, writer.bytes, "application/zstd")
    assert blob.download_blob().readall() == b"the original"


# -- F7: connections reset during block uploads --------------------------------------------------------------------
def test_f7_connection_resets_are_retried_per_block(primary, big_db, backup_root, store, azure_proxy):
    proxy, flaky = azure_proxy(reset_first=3)
    result = run_backup(BackupRequest(primary, big_db[0], backup_root, _date(1), block_size=512 * KB),
                        blob_service_client(flaky))
    assert proxy.plan.seen["resets"] == 3
    assert verify_backup(store, result.manifest_url).status == "verified"
    committed, _ = _data_blob(store, result).get_block_list("committed")
    assert len(committed) == -(-result.manifest.bytes_stored // (512 * KB))


# -- F8 / F9: one run at a time; a dead holder's lease expires on time --
def test_f8_two_runs_of_the_same_backup_write_one(big_db, backup_root, store, azure_proxy):
    _, slow = azure_proxy(bytes_per_second=3_000_000)
    env = _env_with_storage(slow)
    runs = [_drctl_backup(big_db[0], backup_root, "--storage-conn", "proxied_blob", "--block-size", str(256 * KB),
                          env=env) for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    outcomes = [json.loads(out)["created"] if run.returncode == 0 else err
                for run, (out, err) in zip(runs, results, strict=True)]
    assert outcomes.count(True) == 1, outcomes
    loser = next(o for o in outcomes if o is not True)
    assert loser is False or "leased by another process" in loser, outcomes
    assert len([n for n in _blobs(store, backup_root) if n.endswith(".sql.zst")]) == 1


def test_f9_a_dead_holders_lease_frees_within_its_ttl_never_earlier(backup_root, store):
    lease_url = backup_root.join("db", "20261101T030000Z", ".lease")
    script = (
        "import time\n"
        "from multicloud_dr.backup.lease import BackupLease\n"
        "from multicloud_dr.connections.wasb import blob_service_client\n"
        "from multicloud_dr.connections import get_endpoint\n"
        "service = blob_service_client(get_endpoint('azure_blob_dr'))\n"
        f"blob = service.get_container_client('dr-backups').get_blob_client('{lease_url.path}')\n"
        "with BackupLease(blob, duration=15):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    killed = time.monotonic()
    with pytest.raises(LeaseHeldError):
        BackupLease(store.blob(lease_url), duration=15).__enter__()
    time.sleep(max(0.0, 10 - (time.monotonic() - killed)))
    with pytest.raises(LeaseHeldError):  # 10 s after the kill: still held, it does not free early
        BackupLease(store.blob(lease_url), duration=15).__enter__()
    deadline = killed + 15 + 5
    while True:
        try:
            with BackupLease(store.blob(lease_url), duration=15):
                freed = time.monotonic() - killed
            break
        except LeaseHeldError:
            assert time.monotonic() < deadline, "the lease did not free itself within its TTL"
            time.sleep(0.5)
    assert 10 <= freed <= 20, freed


def test_f21_a_duplicate_try_waits_for_the_lease_holder_and_writes_nothing(small_db, backup_root, store,
                                                                         blob_service, primary):
    """A second try of the same run (what a restarted scheduler starts while the first still dumps) waits for
    the holder's lease instead of failing on it: when the holder has written the manifest it ends with the
    holder's backup, writing nothing; when the holder dies without one, it takes over once the lease frees."""
    layout = BackupLayout(backup_root, small_db[0], "20261102T030000Z")
    holder = BackupLease(store.blob(layout.lease), duration=15)
    holder.acquire()
    outcome: dict = {}
    waiter = threading.Thread(target=lambda: outcome.update(result=_backup(
        primary, small_db[0], backup_root, blob_service, day=2, lease_wait_seconds=120, lease_poll_seconds=0.5)))
    waiter.start()
    time.sleep(3)
    assert waiter.is_alive(), "the duplicate did not wait for the lease"
    assert not store.blob(layout.data).exists(), "the duplicate wrote while the lease was held"
    holder.__exit__(None, None, None)  # the holder stops without a manifest: the waiter takes over
    waiter.join(timeout=120)
    first = outcome["result"]
    assert first.created and verify_backup(store, first.manifest_url).status == "verified"

    # Now a holder that finishes: the waiter returns the holder's backup and writes nothing.
    holder = BackupLease(store.blob(layout.lease), duration=15)
    holder.acquire()
    before = _blobs(store, backup_root)
    store.blob(layout.manifest).delete_blob()
    second: dict = {}
    waiter = threading.Thread(target=lambda: second.update(result=_backup(
        primary, small_db[0], backup_root, blob_service, day=2, lease_wait_seconds=120, lease_poll_seconds=0.5)))
    waiter.start()
    time.sleep(2)
    assert waiter.is_alive()
    store.create_manifest(layout.manifest, first.manifest)  # the holder's last write
    waiter.join(timeout=60)
    holder.__exit__(None, None, None)
    assert second["result"].created is False
    assert second["result"].manifest.backup_id == first.manifest.backup_id
    after = _blobs(store, backup_root)
    data = layout.data.path
    assert after[data] == before[data], "the waiter rewrote the dump"


def test_a_backup_fails_on_a_held_lease_once_its_wait_is_over(small_db, backup_root, store, blob_service, primary):
    layout = BackupLayout(backup_root, small_db[0], "20261103T030000Z")
    with BackupLease(store.blob(layout.lease), duration=15):
        started = time.monotonic()
        with pytest.raises(LeaseHeldError, match="leased by another process"):
            _backup(primary, small_db[0], backup_root, blob_service, day=3, lease_wait_seconds=2,
                    lease_poll_seconds=0.5)
        assert 2 <= time.monotonic() - started < 10
    assert not store.blob(layout.data).exists()


# -- F10: a successful run cleared and re-run writes nothing ----------------------------------------------------------
def test_f10_rerun_of_a_finished_date_writes_nothing(primary, small_db, backup_root, blob_service, store):
    first = _backup(primary, small_db[0], backup_root, blob_service)
    before = _blobs(store, backup_root)
    again = _backup(primary, small_db[0], backup_root, blob_service)
    assert not again.created and again.manifest == first.manifest
    assert _blobs(store, backup_root) == before, "the re-run changed or added objects"


def test_a_committed_dump_without_manifest_is_adopted_not_redumped(primary, small_db, backup_root, blob_service,
                                                                    store):
    first = _backup(primary, small_db[0], backup_root, blob_service)
    store.blob(first.manifest_url).delete_blob()  # as if the run stopped between commit and manifest
    data_before = {n: v for n, v in _blobs(store, backup_root).items() if n.endswith(".sql.zst")}
    again = _backup(primary, small_db[0], backup_root, blob_service)
    assert again.created and again.manifest.objects == first.manifest.objects
    assert again.manifest.tables == first.manifest.tables
    assert {n: v for n, v in _blobs(store, backup_root).items() if n.endswith(".sql.zst")} == data_before
    assert verify_backup(store, again.manifest_url).status == "verified"


# -- F13: block size grows so that no stream hits 50,000 blocks --
def test_f13_block_size_grows_on_a_real_blob(backup_root, store):
    blob = store.blob(backup_root.join("growth.bin"))
    writer = StagedBlockWriter(blob, block_size=1 * KB, tier_blocks=4, max_blocks=50)
    payload = os.urandom(40 * KB)
    writer.write(payload)
    ids, sha = writer.finish()
    commit(blob, ids, sha, writer.bytes, "application/octet-stream")
    committed, _ = blob.get_block_list("committed")
    sizes = [b.size for b in committed]
    assert sizes[:4] == [KB] * 4 and sizes[4:8] == [2 * KB] * 4 and sizes[8:12] == [4 * KB] * 4
    assert blob.download_blob().readall() == payload


def test_f13_a_stream_too_big_for_the_block_limit_fails_before_commit(backup_root, store):
    blob = store.blob(backup_root.join("toolong.bin"))
    writer = StagedBlockWriter(blob, block_size=1 * KB, tier_blocks=2, max_block_size=2 * KB, max_blocks=6)
    with pytest.raises(Exception, match="more than 6 blocks"):
        writer.write(os.urandom(20 * KB))
        writer.finish()
    writer.abort()
    assert not blob.exists()


# -- F15: no secret in any argv, option file private and gone, no password in logs --
def test_f15_password_never_in_argv_or_output(primary, big_db, backup_root, azure_proxy):
    _, slow = azure_proxy(bytes_per_second=4_000_000)
    proc = _drctl_backup(big_db[0], backup_root, "--storage-conn", "proxied_blob", "--block-size", str(256 * KB),
                         env=_env_with_storage(slow))
    secret = primary.password.encode()
    account_key = slow.extra["connection_string"].split("AccountKey=")[1].split(";")[0].encode()
    seen_dump = False
    option_files: set[Path] = set()
    while proc.poll() is None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes()
                assert secret not in argv, f"password in argv of pid {entry.name}"
                assert account_key not in argv, f"account key in argv of pid {entry.name}"
                if b"mysqldump" in argv and big_db[0].encode() in argv:
                    seen_dump = True
                    cnf = next(a for a in argv.split(b"\0") if a.startswith(b"--defaults-file="))
                    path = Path(cnf.split(b"=", 1)[1].decode())
                    option_files.add(path)
                    with contextlib.suppress(FileNotFoundError):
                        assert path.stat().st_mode & 0o777 == 0o600
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert seen_dump, "never saw mysqldump running: the test observed nothing"
    assert option_files and not any(p.exists() for p in option_files), "the option file was left behind"
    assert secret.decode() not in out + err and account_key.decode() not in out + err


# -- F16: non-InnoDB tables are warned about; DDL during the dump is never a silent success --
def _connect(endpoint, database=None):
    return mysql_connect(endpoint, database)


def test_f16_myisam_table_is_warned_about_in_preflight_and_manifest(primary, small_db, backup_root, blob_service):
    database = small_db[0]
    with contextlib.closing(_connect(primary, database)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE legacy_counters (id INT PRIMARY KEY, n INT) ENGINE=MyISAM")
        cur.execute("INSERT INTO legacy_counters VALUES (1, 10), (2, 20)")
        try:
            result = _backup(primary, database, backup_root, blob_service)
        finally:
            cur.execute("DROP TABLE legacy_counters")
    assert result.manifest.non_innodb_tables == ["legacy_counters"]
    assert any("non-InnoDB" in w and "legacy_counters" in w for w in result.warnings)
    assert result.manifest.tables["legacy_counters"].rows == 2


@pytest.mark.parametrize("ddl", ["ALTER TABLE `vet schedule` ADD COLUMN note_ddl VARCHAR(10)",
                                 "RENAME TABLE `vet schedule` TO vet_schedule_renamed"], ids=["alter", "rename"])
def test_f16_ddl_during_the_dump_fails_it(primary, backup_root, store, azure_proxy, scratch_database, ddl):
    """The table altered or renamed has not been dumped yet when the DDL runs: the dump is held back
    by a slow upload while it is still on the first, biggest tables (it dumps in name order)."""
    database = scratch_database(12)
    layout = BackupLayout(backup_root, database, stamp(_date(1)))
    _, slow = azure_proxy(bytes_per_second=1_000_000)
    children: list = []
    done: list = []

    def disturb() -> None:
        deadline = time.monotonic() + 60
        while (not children or _uncommitted(store, layout) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.closing(_connect(primary, database)) as conn, conn.cursor() as cur:
            cur.execute(ddl)
        done.append(True)

    thread = threading.Thread(target=disturb, daemon=True)
    thread.start()
    with pytest.raises(DumpFailedError) as err:
        run_backup(BackupRequest(primary, database, backup_root, _date(1), block_size=128 * KB,
                                 max_inflight_bytes=256 * KB),
                   blob_service_client(slow), on_child=lambda c: children.append(c) if c else None)
    thread.join(timeout=30)
    assert done, "the DDL never ran"
    message = str(err.value)
    assert any(s in message for s in ("definition has changed", "changed while the dump ran", "doesn't exist")), \
        message
    assert not store.blob(layout.data).exists() and not store.blob(layout.manifest).exists()


def test_f8_a_paused_holder_that_lost_its_lease_stops_before_the_commit(backup_root, store):
    """A run paused past its lease (SIGSTOP, a frozen VM) must not commit once it wakes up: another run may
    hold the lease and be writing the same backup. The renewer cannot notice in time; the check right before
    the commit (confirm) must."""
    lease_url = backup_root.join("db", "20261101T030000Z", ".lease")
    paused = BackupLease(store.blob(lease_url), duration=15).__enter__()
    paused._stop.set()           # its renewer stops, as a paused process's would
    paused._renewer.join()
    time.sleep(16)               # past the lease's duration
    with BackupLease(store.blob(lease_url), duration=15):   # another run takes it
        paused.check()           # what the upload loop checks: nothing seen yet
        with pytest.raises(LeaseHeldError, match="no longer ours"):
            paused.confirm()
    paused._lease = None


def test_f8_a_backup_whose_lease_is_not_confirmed_commits_nothing(primary, small_db, backup_root, blob_service,
                                                                   store, monkeypatch):
    """The backup asks for the lease's confirmation right before its commit: when it is refused, no dump
    blob and no manifest exist afterwards (only the lease blob itself)."""
    def lost(self):
        raise LeaseHeldError(f"the lease on {self.blob.blob_name} is no longer ours (test)")

    monkeypatch.setattr(BackupLease, "confirm", lost)
    with pytest.raises(LeaseHeldError, match="no longer ours"):
        _backup(primary, small_db[0], backup_root, blob_service)
    assert [name for name in _blobs(store, backup_root) if not name.endswith("/.lease")] == []
