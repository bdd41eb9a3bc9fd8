"""Failback's data resync on the lab's real servers: a scratch database on mysql_dr (the live data after a
failover) copied back into an older, different copy on mysql_primary, fenced by read_only ON; mysql_replica (the
primary's own replica) receives the rows through the binlog; a second resync writes nothing.

Every test turns the primary's read_only OFF again, drops its scratch databases on every server (on the replica
through replication, so it gets no transaction of its own) and deletes its private blob prefix."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
import uuid

import pymysql
import pytest

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.config import DatabaseConfig, load_topology
from multicloud_dr.connections import get_endpoint
from multicloud_dr.exceptions import InputError
from multicloud_dr.failover.resync import ResyncError, compare_databases, resync_primary
from multicloud_dr.lab import sample_data
from multicloud_dr.restore.mysql_restore import STATE_DB, TEST_PAUSE_AT, TEST_PAUSE_FILE, scratch_name

from .conftest import CONTAINER, mysql_connect

STALE_TABLE = "only_on_the_old_primary"


def set_read_only(conn_id: str, on: bool) -> None:
    with contextlib.closing(mysql_connect(get_endpoint(conn_id))) as conn, conn.cursor() as cur:
        cur.execute(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")


def read_only(conn_id: str) -> bool:
    with contextlib.closing(mysql_connect(get_endpoint(conn_id))) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@global.read_only")
        return bool(cur.fetchone()[0])


def tables_of(conn_id: str, database: str) -> dict[str, int]:
    with contextlib.closing(mysql_connect(get_endpoint(conn_id))) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE' ORDER BY 1", (database,))
        names = [row[0] for row in cur.fetchall()]
        counts = {}
        for name in names:
            cur.execute(f"SELECT COUNT(*) FROM `{database}`.`{name}`")
            counts[name] = cur.fetchone()[0]
        return counts


@pytest.fixture
def failback_case(lab, blob_service, backup_root, delete_blob_prefix):
    """(database config, private backup location): the database holds ~0.4 MB of sample rows on mysql_dr and an
    older, different copy on mysql_primary (other rows, one more table), which is read_only ON (fenced)."""
    name = f"t_resync_{uuid.uuid4().hex[:6]}"
    dr, primary = get_endpoint("mysql_dr"), get_endpoint("mysql_primary")
    with contextlib.closing(mysql_connect(dr)) as conn:
        sample_data.create_database(conn, name, 0.4, seed=42)
    with contextlib.closing(mysql_connect(primary)) as conn:
        sample_data.create_database(conn, name, 0.2, seed=7)
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE `{name}`.`{STALE_TABLE}` (id INT PRIMARY KEY)")
            cur.execute(f"INSERT INTO `{name}`.`{STALE_TABLE}` VALUES (1), (2)")
    db = DatabaseConfig(name=name, engine="mysql", primary_conn_id="mysql_primary", replica_conn_id="mysql_replica",
                        dr_conn_id="mysql_dr")
    set_read_only("mysql_primary", True)
    try:
        yield db, str(backup_root)
    finally:
        set_read_only("mysql_primary", False)
        with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
            for each in (name, scratch_name(name, "restore"), scratch_name(name, "old")):
                cur.execute(f"DROP DATABASE IF EXISTS `{each}`")
            with contextlib.suppress(pymysql.err.ProgrammingError):   # no restore ran: no bookkeeping table
                cur.execute(f"DELETE FROM {STATE_DB}.restores WHERE database_name = %s", (name,))
        with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        lab.mysql_replica.wait_caught_up(timeout=30)
        with contextlib.closing(mysql_connect(get_endpoint("mysql_replica"))) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")   # only if replication left any: no GTID of the replica's own
            for each in (name, scratch_name(name, "restore"), scratch_name(name, "old")):
                cur.execute(f"DROP DATABASE IF EXISTS `{each}`")


def test_resync_copies_dr_into_the_fenced_primary_and_its_replica_and_a_second_run_writes_nothing(
        lab, failback_case, blob_service):
    db, location = failback_case
    topology = load_topology()
    store = BackupStore(blob_service, CONTAINER)
    root = StorageUrl.parse(location)

    before = compare_databases("mysql_dr", "mysql_primary", db.name)
    assert not before["equal"]
    assert before["tables"][STALE_TABLE] == {"equal": False, "rows_source": 0, "rows_target": 2,
                                             "detail": "only on the target"}
    assert not before["tables"]["owners"]["equal"]

    result = resync_primary(topology, db, source_conn_id="mysql_dr", location=location)

    source_rows = tables_of("mysql_dr", db.name)
    assert result["already"] is False and result["differing"] == []
    assert result["database"] == db.name and result["source"] == "mysql_dr" and result["target"] == "mysql_primary"
    assert result["manifest"].startswith(f"{location}/{db.name}/")
    assert result["rows"] == sum(source_rows.values()) and result["tables"] == len(source_rows)
    assert result["checked_tables"] == len(source_rows)
    assert STALE_TABLE in result["differed_before"]
    json.dumps(result)
    # The primary holds DR's rows, table for table, equal by checksum; it is still fenced.
    assert tables_of("mysql_primary", db.name) == source_rows
    after = compare_databases("mysql_dr", "mysql_primary", db.name, chunk_rows=500)
    assert after["equal"] and set(after["tables"]) == set(source_rows)
    assert read_only("mysql_primary")
    # The restore went to the primary's binlog: its replica has the same rows.
    lab.mysql_replica.wait_caught_up(timeout=30)
    assert compare_databases("mysql_dr", "mysql_replica", db.name)["equal"]
    assert tables_of("mysql_replica", db.name) == source_rows

    manifests = store.list_manifests(root, db.name)
    assert [str(m.url) for m in manifests] == [result["manifest"]]
    again = resync_primary(topology, db, source_conn_id="mysql_dr", location=location)
    assert again["already"] is True and again["manifest"] is None and again["differing"] == []
    assert again["checked_tables"] == len(source_rows) and again["rows"] == sum(source_rows.values())
    assert len(store.list_manifests(root, db.name)) == 1   # no second backup


def test_a_write_to_dr_during_the_copy_fails_the_resync_naming_the_table(lab, failback_case, monkeypatch, tmp_path):
    db, location = failback_case
    release = tmp_path / "release"
    monkeypatch.setenv(TEST_PAUSE_AT, "post-swap")
    monkeypatch.setenv(TEST_PAUSE_FILE, str(release))
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = resync_primary(load_topology(), db, source_conn_id="mysql_dr", location=location)
        except Exception as err:  # asserted below
            outcome["error"] = err

    worker = threading.Thread(target=run)
    worker.start()
    paused = release.with_name(release.name + ".paused")
    try:
        deadline = time.monotonic() + 60
        while not paused.exists() and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paused.exists(), outcome
        # The backup is taken and restored: DR takes one more write (it was not fenced).
        with contextlib.closing(mysql_connect(get_endpoint("mysql_dr"), db.name)) as conn, conn.cursor() as cur:
            cur.execute("UPDATE pet_types SET name = CONCAT(name, %s) ORDER BY id DESC LIMIT 1", ("-renamed",))
    finally:
        release.touch()
        worker.join(timeout=60)
    assert isinstance(outcome.get("error"), ResyncError), outcome
    assert "pet_types" in str(outcome["error"]) and "still differs" in str(outcome["error"])
    assert read_only("mysql_primary")


def test_an_admin_that_read_only_refuses_is_told_what_to_grant_before_anything_is_written(
        lab, failback_case, monkeypatch, blob_service):
    db, location = failback_case
    admin = get_endpoint("mysql_primary")
    user, password = f"hc_limited_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with contextlib.closing(mysql_connect(admin)) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")   # the account stays on the primary: nothing for the replica
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'127.0.0.1'", (user,))
        cur.execute("REVOKE READ_ONLY ADMIN ON *.* FROM %s@'127.0.0.1'", (user,))   # SUPER stays: not enough
    limited = dataclasses.replace(admin, login=user, password=password)
    monkeypatch.setenv("AIRFLOW_CONN_HC_LIMITED_PRIMARY", json.dumps(dataclasses.asdict(limited)))
    stale = tables_of("mysql_primary", db.name)
    try:
        with pytest.raises(InputError, match="READ ONLY ADMIN"):
            resync_primary(load_topology(), db, source_conn_id="mysql_dr", target_conn_id="hc_limited_primary",
                           location=location)
    finally:
        with contextlib.closing(mysql_connect(admin)) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")
            cur.execute("DROP USER %s@'127.0.0.1'", (user,))
    assert tables_of("mysql_primary", db.name) == stale
    assert BackupStore(blob_service, CONTAINER).list_manifests(StorageUrl.parse(location), db.name) == []
