"""Replication checks on the lab's real replicas: each fault makes its check fail and name the cause,
and healing it makes the check pass again. The MySQL replica and the PostgreSQL standby are real
servers replicating from the lab's primaries; DMS and CloudWatch are moto (DescribeTableStatistics,
which moto lacks, is tested with botocore's Stubber in tests/unit/test_replication_dms.py)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymysql
import pytest
import yaml

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import BackupLayout, StorageUrl, stamp
from multicloud_dr.backup.manifest import Manifest
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.replication.consistency import check_consistency
from multicloud_dr.replication.dms import DmsClients, check_dms_task
from multicloud_dr.replication.freshness import check_backup_freshness
from multicloud_dr.replication.mysql import check_mysql_replica
from multicloud_dr.replication.postgres import check_postgres_standby

ROOT = Path(__file__).resolve().parents[2]
TABLES = ["owners", "pet_types", "pets", "vets", "specialties", "vet_specialties", "visits", "invoices"]


@pytest.fixture(scope="module")
def mysql(lab):
    return get_endpoint("mysql_primary"), get_endpoint("mysql_replica")


@pytest.fixture(scope="module")
def pg(lab):
    return get_endpoint("postgres_primary"), get_endpoint("postgres_standby")


def replica_root(lab) -> pymysql.connections.Connection:
    """root on the replica over its socket (the replica is read-only for everyone else)."""
    return lab.mysql_replica.admin()


def check_replica(mysql, threshold: float = 30):
    return check_mysql_replica("mysql_replica/petclinic", *mysql, threshold)


def check_standby(pg, threshold: float = 5):
    return check_postgres_standby("postgres_standby/petclinic", *pg, "petclinic", threshold)


# -- MySQL replica ----------------------------------------------------------------------------------------

def test_healthy_replica_passes_with_the_heartbeat_lag(mysql):
    result = check_replica(mysql)
    assert result.status == "ok", result.detail
    assert 0 <= result.value < 5 and result.facts["heartbeat_arrived"] is True


def test_stopped_sql_thread_is_a_breach_with_a_value_never_zero(lab, mysql):
    with contextlib.closing(replica_root(lab)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
        try:
            time.sleep(1.2)   # the newest replicated heartbeat ages while nothing is applied
            result = check_replica(mysql)
        finally:
            cur.execute("START SLAVE SQL_THREAD")
    assert result.status == "breach"
    assert "SQL thread not running" in result.detail and "Seconds_Behind_Master is NULL" in result.detail
    assert result.facts["seconds_behind_master"] is None
    assert result.value is not None and result.value >= 1.0, "a stopped replica must never read as zero lag"

    healed = check_replica(mysql)
    assert healed.status == "ok", healed.detail


def test_idle_primary_is_not_lag(mysql):
    check_replica(mysql)          # a heartbeat now, then nothing is written for longer than the threshold
    time.sleep(1.5)
    result = check_replica(mysql, threshold=1.0)
    assert result.status == "ok", result.detail
    assert result.value < 1.0


# -- PostgreSQL standby ----------------------------------------------------------------------------------

def test_paused_replay_is_a_breach_and_resuming_heals_it(pg):
    _, standby = pg
    check_standby(pg)   # a heartbeat replayed before the pause (on a new lab the table does not exist yet)
    conn = PostgresConnection(standby).connect(dbname="postgres")   # with the connection's TLS (verified)
    conn.autocommit = True
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT pg_wal_replay_pause()")
        try:
            result = check_standby(pg)
        finally:
            cur.execute("SELECT pg_wal_replay_resume()")
    assert result.status == "breach"
    assert "replay is paused" in result.detail, result.detail
    assert result.value is not None

    healed = check_standby(pg)
    assert healed.status == "ok", healed.detail


def test_idle_postgres_primary_is_not_lag(pg):
    check_standby(pg)
    time.sleep(1.5)
    result = check_standby(pg, threshold=1.0)
    assert result.status == "ok", result.detail
    # The standby's own clock says the last replayed transaction is old; the heartbeat says it is current.
    assert result.facts["last_replay_age_seconds"] >= 1.0
    assert result.value < 1.0


# -- Consistency ------------------------------------------------------------------------------------------

def test_consistent_tables_pass(mysql):
    result = check_consistency("consistency/petclinic", *mysql, "petclinic", TABLES, chunk_rows=500)
    assert result.status == "ok", result.detail
    assert result.facts["chunks"] > len(TABLES)   # the big tables really were cut into chunks


def test_a_row_changed_on_the_replica_is_named_by_table_and_key_range(lab, mysql):
    with contextlib.closing(replica_root(lab)) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, city FROM petclinic.owners ORDER BY id LIMIT 1 OFFSET 700")
        owner_id, city = cur.fetchone()
        cur.execute("SET SESSION sql_log_bin = 0")   # behind replication's back
        cur.execute("UPDATE petclinic.owners SET city = 'Changed Behind Your Back' WHERE id = %s", (owner_id,))
        try:
            result = check_consistency("consistency/petclinic", *mysql, "petclinic", TABLES, chunk_rows=500)
        finally:
            cur.execute("UPDATE petclinic.owners SET city = %s WHERE id = %s", (city, owner_id))
    assert result.status == "breach" and result.value == 1
    [chunk] = result.facts["differing"]
    assert chunk["chunk"].startswith("owners id in [")
    low, high = (int(x) for x in chunk["chunk"].split("[")[1].rstrip(")").split(", "))
    assert low <= owner_id < high, chunk
    assert "owners" in result.detail and "behind replication's back" in result.detail

    healed = check_consistency("consistency/petclinic", *mysql, "petclinic", TABLES, chunk_rows=500)
    assert healed.status == "ok", healed.detail


def test_chunks_in_flight_are_rechecked_not_reported(lab, mysql):
    """A replica two seconds behind (MASTER_DELAY) sees a fresh insert late: the check re-reads the
    chunk after the replica caught up instead of calling it an inconsistency."""
    primary, _ = mysql
    with contextlib.closing(replica_root(lab)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")
        cur.execute("CHANGE MASTER TO MASTER_DELAY = 2")
        cur.execute("START SLAVE")
        try:
            with contextlib.closing(source.connect(primary)) as pconn, \
                    pconn.cursor() as pcur:
                pcur.execute("INSERT INTO petclinic.pet_types (name) VALUES (%s)", (f"t-{uuid.uuid4().hex[:8]}",))
                new_id = pcur.lastrowid
                try:
                    result = check_consistency("consistency/petclinic", *mysql, "petclinic", ["pet_types"])
                finally:
                    pcur.execute("DELETE FROM petclinic.pet_types WHERE id = %s", (new_id,))
        finally:
            cur.execute("STOP SLAVE")
            cur.execute("CHANGE MASTER TO MASTER_DELAY = 0")
            cur.execute("START SLAVE")
    assert result.status == "ok", result.detail
    assert result.facts["rechecked"] == 1 and "in flight re-checked" in result.detail


# -- DMS (moto) -------------------------------------------------------------------------------------------

@pytest.fixture
def dms(lab):
    return DmsClients.for_connection("aws_primary")


def test_running_dms_task_with_low_cdc_latency_passes(dms):
    result = check_dms_task("dms/petclinic-cdc", dms, "petclinic-cdc", "petclinic-dms", 60, validation=False)
    assert result.status == "ok", result.detail
    assert result.facts["cdc_latency_source"] is not None and result.facts["cdc_latency_target"] is not None
    assert result.value == max(result.facts["cdc_latency_source"], result.facts["cdc_latency_target"])


def test_stopped_dms_task_is_a_breach_and_restarting_heals_it(dms):
    arn = os.environ["LAB_DMS_TASK_ARN"]
    dms.dms.stop_replication_task(ReplicationTaskArn=arn)
    try:
        result = check_dms_task("dms/petclinic-cdc", dms, "petclinic-cdc", "petclinic-dms", 60, validation=False)
    finally:
        dms.dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="resume-processing")
    assert result.status == "breach"
    assert "petclinic-cdc is 'stopped'" in result.detail, result.detail

    healed = check_dms_task("dms/petclinic-cdc", dms, "petclinic-cdc", "petclinic-dms", 60, validation=False)
    assert healed.status == "ok", healed.detail


def test_cdc_latency_over_the_threshold_names_the_side(dms):
    """A latency spike published now on the target side (CloudWatch keeps the maximum of the minute)."""
    instance, task = "petclinic-dms", f"spike-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC) - timedelta(seconds=1)
    dims = [{"Name": "ReplicationInstanceIdentifier", "Value": instance},
            {"Name": "ReplicationTaskIdentifier", "Value": task}]
    dms.cloudwatch.put_metric_data(Namespace="AWS/DMS", MetricData=[
        {"MetricName": "CDCLatencySource", "Timestamp": now, "Value": 3.0, "Unit": "Seconds", "Dimensions": dims},
        {"MetricName": "CDCLatencyTarget", "Timestamp": now, "Value": 240.0, "Unit": "Seconds", "Dimensions": dims}])
    # The task itself is the lab's running one; only the metrics' dimension differs.
    clients = DmsClients(dms.dms, dms.cloudwatch)
    original = clients.find_task
    clients.find_task = lambda _task_id: original("petclinic-cdc")
    result = check_dms_task("dms/spike", clients, task, instance, 60, validation=False)
    assert result.status == "breach" and result.value == 240.0
    assert "target side" in result.detail


def test_unknown_dms_task_cannot_run(dms):
    from multicloud_dr.replication.dms import DmsTaskNotFoundError

    with pytest.raises(DmsTaskNotFoundError, match="no DMS replication task 'nope'"):
        check_dms_task("dms/nope", dms, "nope", "petclinic-dms", 60)


# -- Backup freshness -------------------------------------------------------------------------------------

def _copy_manifest_aged(store, record, root: StorageUrl, age: timedelta) -> None:
    """A verified backup's manifest re-filed under an older date (Azurite's clock cannot be backdated,
    which is why freshness is judged on the manifest's stored_at against the storage server's now)."""
    manifest = record.manifest
    now = store.server_now()
    stored_at = (now - age).replace(microsecond=0)
    layout = BackupLayout(root, manifest.database, stamp(stored_at - timedelta(minutes=10)))
    old = Manifest.model_validate({**manifest.model_dump(), "stored_at": stored_at,
                                   "logical_date": stored_at - timedelta(minutes=10),
                                   "backup_id": f"{manifest.database}/{layout.stamp}"})
    assert store.create_manifest(layout.manifest, old)


@pytest.fixture(scope="module")
def verified_backup(verified_petclinic_backup):
    root, record, store = verified_petclinic_backup("test-freshness", datetime(2026, 11, 21, 3, 0, tzinfo=UTC))
    return store, root, record


def test_stale_backup_is_a_breach_and_a_fresh_one_heals_it(verified_backup, delete_blob_prefix):
    store, _, record = verified_backup
    stale_root = StorageUrl("wasb", "dr-backups", f"test-stale-{uuid.uuid4().hex[:8]}")
    try:
        _copy_manifest_aged(store, record, stale_root, timedelta(days=3))
        result = check_backup_freshness("backup_freshness/petclinic", store, stale_root, "petclinic", 26 * 3600)
        assert result.status == "breach"
        assert "is 72.0 h old" in result.detail and "mysql_backup" in result.detail, result.detail

        # The night's backup arrives (here: the verified one made by the fixture, filed alongside).
        _copy_manifest_aged(store, record, stale_root, timedelta(minutes=5))
        healed = check_backup_freshness("backup_freshness/petclinic", store, stale_root, "petclinic", 26 * 3600)
        assert healed.status == "ok", healed.detail
        assert 290 <= healed.value < 26 * 3600
    finally:
        delete_blob_prefix(store.service, stale_root)


def test_no_verified_backup_is_a_breach(store, backup_root):
    result = check_backup_freshness("backup_freshness/petclinic", store, backup_root, "petclinic", 3600)
    assert result.status == "breach" and result.value is None
    assert "no verified backup of petclinic" in result.detail


# -- drctl replication check ------------------------------------------------------------------------------

def _topology(tmp_path, verified_backup, **changes) -> Path:
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["backup"]["location"] = str(verified_backup[1])
    for database in data["databases"]:
        database.update(changes)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _drctl(topology: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MULTICLOUD_DR_TOPOLOGY": str(topology)}
    return subprocess.run([sys.executable, "-m", "multicloud_dr.cli", "replication", "check", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_drctl_on_a_healthy_lab_prints_a_numeric_rpo_and_exits_0(tmp_path, verified_backup):
    started = time.monotonic()
    done = _drctl(_topology(tmp_path, verified_backup))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert isinstance(report["rpo_seconds"], float | int) and report["rpo_seconds"] > 0
    names = {c["name"] for c in report["checks"]}
    assert names == {"mysql_replica/petclinic", "consistency/petclinic", "postgres_standby/petclinic",
                     "dms/petclinic-cdc", "backup_freshness/petclinic"}
    for check in report["checks"]:
        assert {"name", "status", "value", "threshold", "detail"} <= check.keys()
        assert check["status"] == "ok", check
    # The RPO is the worst delay measured (the consistency check counts chunks, not seconds).
    delays = [c["value"] for c in report["checks"] if c["unit"] == "seconds"]
    assert len(delays) == 4 and report["rpo_seconds"] == max(delays)
    print(f"drctl replication check: {len(names)} checks in {report['seconds']:.2f} s (process {elapsed:.2f} s)")


def test_drctl_exits_2_when_a_check_cannot_run(tmp_path, verified_backup):
    done = _drctl(_topology(tmp_path, verified_backup, replica_conn_id="no_such_connection"))
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    failed = {c["name"]: c for c in report["checks"] if c["status"] == "error"}
    assert "mysql_replica/petclinic" in failed
    assert "no connection 'no_such_connection'" in failed["mysql_replica/petclinic"]["detail"]
    assert isinstance(report["rpo_seconds"], float | int)   # the checks that could run still measured


def test_drctl_exits_1_on_a_breach(lab, tmp_path, verified_backup):
    with contextlib.closing(replica_root(lab)) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
        try:
            done = _drctl(_topology(tmp_path, verified_backup))
        finally:
            cur.execute("START SLAVE SQL_THREAD")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "breach"
    breached = [c["name"] for c in report["checks"] if c["status"] == "breach"]
    assert breached == ["mysql_replica/petclinic"], report
