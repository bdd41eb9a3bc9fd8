"""dr_restore_drill run by Airflow (`dag.test()`) on the lab: a verified backup of `petclinic` restored
into a scratch database on the DR server, reported next to the backup, and cleaned up; and a restore
that fails on the DR server fails the run while the teardown still cleans up."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pymysql
import pytest
import yaml

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import BackupLayout
from multicloud_dr.connections import get_endpoint
from multicloud_dr.lab.airflow_run import run_dag, task_results
from multicloud_dr.restore.drill import scratch_database_name, teardown_scratch
from multicloud_dr.restore.mysql_restore import restore_status, scratch_name

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
CONTAINER = "dr-backups"


def _admin(database: str | None = None) -> pymysql.connections.Connection:
    return source.connect(get_endpoint("mysql_dr"), database)   # with the connection's TLS (verified)


def _databases_on_dr() -> set[str]:
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall()}


def _leftovers(scratch: str) -> set[str]:
    return _databases_on_dr() & {scratch, scratch_name(scratch, "restore"), scratch_name(scratch, "old")}


@pytest.fixture(scope="module")
def verified_backup(verified_petclinic_backup):
    """A verified backup of the lab's petclinic in a prefix of its own, deleted afterwards."""
    root, record, store = verified_petclinic_backup("e2e-drill", datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    return root, record.url, store


@pytest.fixture
def drill_topology(verified_backup, tmp_path, monkeypatch):
    """Factory: the shipped topology with backups in the test's prefix (and another DR connection)."""
    root = verified_backup[0]

    def make(dr_conn_id: str = "mysql_dr") -> dict:
        data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
        data["backup"]["location"] = str(root)
        data["backup"]["copies"] = []
        for database in data["databases"]:
            if database["name"] == "petclinic":
                database["dr_conn_id"] = dr_conn_id
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
        return data

    return make


@pytest.fixture
def scratch_cleanup():
    """Scratch names a test used: cleaned up after it whatever happened (the DAG should have done it)."""
    names: list[str] = []
    yield names
    for name in names:
        teardown_scratch(get_endpoint("mysql_dr"), name)


def _run_without_retries(logical_date: datetime):
    """Like run_dag, with retries off: a failing task fails now instead of after its retry delay."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "dr_restore_drill.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["dr_restore_drill"]
    for each in dag.tasks:
        each.retries = 0
    return dag.test(logical_date=logical_date)


def test_drill_restores_reports_and_cleans_up(airflow_db, verified_backup, drill_topology, scratch_cleanup):
    _, manifest_url, store = verified_backup
    drill_topology()
    when = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    scratch = scratch_database_name("petclinic", when)
    scratch_cleanup.append(scratch)

    dag_run = run_dag("dr_restore_drill", DAGS, logical_date=when)
    results = task_results(dag_run)
    assert str(dag_run.state) == "success", {k: v[0] for k, v in results.items()}
    assert results["petclinic.restore"][1]["manifest"] == str(manifest_url)

    manifest = store.read_manifest(manifest_url).manifest
    report_url = BackupLayout.from_manifest_url(manifest_url).base.join("drill-20261122T050000Z.json")
    report = json.loads(store.blob(report_url).download_blob().readall())
    assert report["rows"] == manifest.total_rows > 0
    assert report["tables"] == len(manifest.tables)
    assert report["scratch_database"] == scratch
    assert report["database_size_bytes"] == results["petclinic.measure"][1] > 0 and report["mb_per_second"] > 0
    assert report["alert"] is False, report["message"]  # petclinic restores in seconds; the RTO is an hour
    assert results["petclinic.report"][1]["report"] == str(report_url)

    assert results["petclinic.teardown"][1]["dropped"] == [scratch]
    assert not _leftovers(scratch), "the drill left its scratch databases on the DR server"
    assert restore_status(get_endpoint("mysql_dr"), scratch) is None, "the drill left its restore-state row"


@pytest.fixture
def dr_account_without_set_user(lab, monkeypatch):
    """A DR account that may do everything the drill needs in its own databases, but, like an Azure
    Flexible Server admin, may not create objects for another DEFINER: the backup's views, triggers and
    routines cannot be created, so the restore fails after its data is in the scratch database."""
    user, password = f"drill_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    try:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
            for pattern in (r"drill\_%%", r"\_mcdr\_%%", r"\_multicloud\_dr"):
                cur.execute(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO %s@'127.0.0.1'", (user,))
        ep = get_endpoint("mysql_dr")
        tls = urlsplit(os.environ["LAB_MYSQL_DR_URI"]).query   # the lab's TLS extras (its CA, verified)
        monkeypatch.setenv("AIRFLOW_CONN_MYSQL_DR_DRILL", f"mysql://{user}:{password}@{ep.host}:{ep.port}?{tls}")
        yield "mysql_dr_drill"
    finally:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (user,))


def test_failed_restore_fails_the_run_and_teardown_still_cleans_up(airflow_db, verified_backup, drill_topology,
                                                                   dr_account_without_set_user, scratch_cleanup):
    _, manifest_url, store = verified_backup
    drill_topology(dr_conn_id=dr_account_without_set_user)
    when = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    scratch = scratch_database_name("petclinic", when)
    scratch_cleanup.append(scratch)

    dag_run = _run_without_retries(when)
    results = task_results(dag_run)
    states = {k: v[0] for k, v in results.items()}
    assert str(dag_run.state) == "failed", states
    assert states["petclinic.setup"] == "success", states
    assert states["petclinic.restore"] == "failed", states
    assert states["petclinic.measure"] == states["petclinic.report"] == "upstream_failed", states
    assert states["petclinic.teardown"] == "success", states

    # The restore got as far as the swap: the teardown had a scratch database to drop, and dropped it.
    assert scratch in results["petclinic.teardown"][1]["dropped"], results["petclinic.teardown"][1]
    assert not _leftovers(scratch), "the teardown left scratch databases on the DR server"
    assert restore_status(get_endpoint("mysql_dr"), scratch) is None, "the teardown left the restore-state row"
    report_url = BackupLayout.from_manifest_url(manifest_url).base.join("drill-20261129T050000Z.json")
    assert not store.blob(report_url).exists(), "a failed drill wrote a report"
