"""The failover's data step (failover/data.py) on the lab's real servers: an emergency restore of the newest
verified backup into the DR server (MariaDB), a planned promotion of the MariaDB replica, a PostgreSQL standby
promoted with pg_promote(), and a drill's restore into a scratch database and its teardown.

The restores use a small sample database of their own, backed up under a private blob prefix, never the lab's
petclinic; each promotion test puts the lab back afterwards (the replica replicating from the primary again, the
standby rebuilt from a fresh base backup)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

import pymysql
import pytest

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.config import DatabaseConfig, load_topology
from multicloud_dr.connections import get_endpoint
from multicloud_dr.failover.data import drop_drill_data, plan_data, run_data
from multicloud_dr.failover.report import DataOutcome, FailoverReport
from multicloud_dr.replication import postgres as pg
from multicloud_dr.replication.mysql import write_heartbeat
from multicloud_dr.restore.mysql_restore import restore_status, scratch_name

from .conftest import CONTAINER, make_sample_database, mysql_connect, postgres_takes_writes

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def backed_up(lab, blob_service, delete_blob_prefix):
    """A ~1 MB sample database on the primary, one verified backup of it under a private prefix, and a topology
    that names only it: (topology, manifest record). Dropped on the primary and the prefix emptied afterwards."""
    name = f"t_fodata_{uuid.uuid4().hex[:6]}"
    root = StorageUrl("wasb", CONTAINER, f"test-fodata-{uuid.uuid4().hex[:10]}")
    primary = get_endpoint("mysql_primary")
    make_sample_database(primary, name, 1)
    result = run_backup(BackupRequest(primary, name, root, datetime(2026, 11, 1, 3, tzinfo=UTC)), blob_service)
    store = BackupStore(blob_service, CONTAINER)
    assert verify_backup(store, result.manifest_url).status == "verified"
    base = load_topology()
    db = DatabaseConfig(name=name, engine="mysql", primary_conn_id="mysql_primary", replica_conn_id="mysql_replica",
                        dr_conn_id="mysql_dr")
    topology = base.model_copy(update={"databases": [db],
                                       "backup": base.backup.model_copy(update={"location": str(root)})})
    yield topology, store.read_manifest(result.manifest_url)
    with contextlib.closing(mysql_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    delete_blob_prefix(blob_service, root)


def _databases(conn_id: str) -> set[str]:
    with contextlib.closing(mysql_connect(get_endpoint(conn_id))) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall()}


def _row_counts(conn_id: str, database: str) -> dict[str, int]:
    with contextlib.closing(mysql_connect(get_endpoint(conn_id), database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE'", (database,))
        counts = {}
        for (table,) in cur.fetchall():
            cur.execute(f"SELECT COUNT(*) FROM `{table.replace('`', '``')}`")
            counts[table] = cur.fetchone()[0]
        return counts


@pytest.fixture
def dr_database_dropped():
    """Names of databases the test restores into on the DR server: dropped afterwards, with the restore's
    private databases and its state row."""
    names: list[str] = []
    yield names
    with contextlib.closing(mysql_connect(get_endpoint("mysql_dr"))) as conn, conn.cursor() as cur:
        for name in names:
            for each in (name, scratch_name(name, "restore"), scratch_name(name, "old")):
                cur.execute(f"DROP DATABASE IF EXISTS `{each}`")
            with contextlib.suppress(pymysql.err.ProgrammingError):
                cur.execute("DELETE FROM _multicloud_dr.restores WHERE database_name = %s", (name,))


def test_emergency_restore_puts_the_backup_into_dr_and_a_rerun_writes_nothing(backed_up, dr_database_dropped):
    topology, record = backed_up
    name = topology.databases[0].name
    dr_database_dropped.append(name)
    (plan,) = plan_data(topology, "emergency", {f"mysql_replica/{name}": None})   # the replica stopped
    assert (plan.method, plan.target, plan.target_database) == ("restore", "mysql_dr", name)

    outcome = run_data(topology, plan, mode="emergency", primary_reachable=False)
    manifest = record.manifest
    assert not outcome["already"] and outcome["manifest"] == str(record.url)
    assert _row_counts("mysql_dr", name) == {t: e.rows for t, e in manifest.tables.items()}
    assert (outcome["rows"], outcome["tables"]) == (manifest.total_rows, len(manifest.tables))
    assert datetime.fromisoformat(outcome["snapshot_at"]) == manifest.started_at.replace(tzinfo=UTC)
    assert restore_status(get_endpoint("mysql_dr"), name)["status"] == "complete"

    # The app writes on DR after the failover; a re-run of the step must keep it and write nothing.
    with contextlib.closing(mysql_connect(get_endpoint("mysql_dr"), name)) as conn, conn.cursor() as cur:
        cur.execute("UPDATE owners SET city = 'after-failover' WHERE id = 1")
    before = restore_status(get_endpoint("mysql_dr"), name)
    again = run_data(topology, plan, mode="emergency", primary_reachable=False)
    assert again["already"] and again["manifest"] == outcome["manifest"]
    assert again["rows"] == outcome["rows"] and again["snapshot_at"] == outcome["snapshot_at"]
    assert restore_status(get_endpoint("mysql_dr"), name) == before
    with contextlib.closing(mysql_connect(get_endpoint("mysql_dr"), name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT city FROM owners WHERE id = 1")
        assert cur.fetchone() == ("after-failover",)

    report = FailoverReport("lab", "dr", "emergency", datetime.now(UTC), datetime.now(UTC), (),
                            (DataOutcome("restore", "mysql_dr", name, outcome["manifest"],
                                         datetime.fromisoformat(outcome["snapshot_at"])),))
    assert report.rpo_seconds is not None and report.rpo_seconds > 0    # outage minus the backup's snapshot


def test_a_drill_restores_into_the_scratch_database_and_its_teardown_leaves_nothing(backed_up, dr_database_dropped):
    topology, record = backed_up
    name = topology.databases[0].name
    (plan,) = plan_data(topology, "drill", {}, drill=True)
    scratch = plan.target_database
    dr_database_dropped.append(scratch)
    assert scratch.endswith("_drill") and scratch != name and plan.method == "restore"

    outcome = run_data(topology, plan, mode="drill", primary_reachable=True)
    assert not outcome["already"] and outcome["database"] == scratch
    assert _row_counts("mysql_dr", scratch) == {t: e.rows for t, e in record.manifest.tables.items()}
    assert name not in _databases("mysql_dr") and name in _databases("mysql_replica")   # nothing live touched

    dropped = drop_drill_data(topology, plan)
    assert dropped["dropped"] == [scratch] and not dropped["already"]
    left = {scratch, scratch_name(scratch, "restore"), scratch_name(scratch, "old")} & _databases("mysql_dr")
    assert not left and restore_status(get_endpoint("mysql_dr"), scratch) is None
    assert drop_drill_data(topology, plan) == {**dropped, "dropped": [], "already": True}


def test_planned_promotion_of_the_mysql_replica_loses_nothing(replica_put_back):
    topology = load_topology()
    (plan, _) = plan_data(topology, "planned", {})
    assert (plan.engine, plan.method, plan.target) == ("mysql", "promote", "mysql_replica")
    with contextlib.closing(source.connect(get_endpoint("mysql_primary"))) as conn:
        _, _, beat_at = write_heartbeat(conn)        # what the replication check leaves on the primary

    outcome = run_data(topology, plan, mode="planned", primary_reachable=True)
    assert not outcome["already"] and outcome["positions"]["applied_position"] == \
        outcome["positions"]["source_position"]
    applied = datetime.fromisoformat(outcome["applied_at"])
    assert applied == beat_at.replace(tzinfo=UTC)                       # the last heartbeat it applied
    assert outcome["primary_last_commit_at"] == outcome["applied_at"]   # caught up: nothing lost
    with contextlib.closing(source.connect(get_endpoint("mysql_replica"))) as conn, conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        assert cur.fetchone() is None
        cur.execute("SELECT @@global.read_only")
        assert cur.fetchone() == (0,)                                    # the DR database takes writes

    again = run_data(topology, plan, mode="planned", primary_reachable=True)
    assert again["already"] and again["positions"]["actions"] == []
    assert again["applied_at"] == again["primary_last_commit_at"] == outcome["applied_at"]
    rpo = FailoverReport("lab", "dr", "planned", applied, None, (),
                         (DataOutcome("promote", "mysql_replica", "petclinic", None, None, applied, applied),))
    assert rpo.rpo_seconds == 0.0


def test_emergency_promotion_without_the_primary_applies_what_arrived_and_leaves_the_rpo_unknown(lab,
                                                                                             replica_put_back):
    topology = load_topology()
    with contextlib.closing(source.connect(get_endpoint("mysql_primary"))) as conn:
        _, _, beat_at = write_heartbeat(conn)
    lab.mysql_replica.wait_caught_up()
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")          # as after the primary's crash: nothing more arrives
    (plan, _) = plan_data(topology, "emergency", {"mysql_replica/petclinic": 0.5})
    assert plan.method == "promote"

    outcome = run_data(topology, plan, mode="emergency", primary_reachable=False)
    assert not outcome["already"] and "start SQL thread to apply the relay log" in outcome["positions"]["actions"]
    assert datetime.fromisoformat(outcome["applied_at"]) == beat_at.replace(tzinfo=UTC)
    assert outcome["primary_last_commit_at"] is None                   # the primary could not be read
    report = FailoverReport("lab", "dr", "emergency", datetime.now(UTC), None, (),
                            (DataOutcome("promote", "mysql_replica", "petclinic", None, None,
                                         datetime.fromisoformat(outcome["applied_at"]), None),))
    assert report.rpo_seconds is None                                  # unknown, never zero


def test_planned_promotion_of_the_postgres_standby_waits_for_the_primary_and_ends_recovery(standby_rebuilt):
    topology = load_topology()
    (_, plan) = plan_data(topology, "planned", {})
    assert (plan.engine, plan.method, plan.target) == ("postgres", "promote", "postgres_standby")
    with contextlib.closing(pg.connect(get_endpoint("postgres_primary"), "petclinic")) as conn:
        pg.write_heartbeat(conn)

    outcome = run_data(topology, plan, mode="planned", primary_reachable=True)
    assert not outcome["already"] and "caught up with the primary" in outcome["detail"]
    assert outcome["applied_at"] is not None and outcome["primary_last_commit_at"] == outcome["applied_at"]
    assert postgres_takes_writes("postgres_standby")              # out of recovery, and it takes writes

    again = run_data(topology, plan, mode="emergency", primary_reachable=False)
    assert again["already"] and again["applied_at"] == outcome["applied_at"]
    assert again["primary_last_commit_at"] is None      # the primary not read: unknown, never zero
