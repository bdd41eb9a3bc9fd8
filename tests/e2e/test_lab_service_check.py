"""lab_service_check run by Airflow itself (`dag.test()`, SQLite metadata DB) against the lab."""

from __future__ import annotations

from pathlib import Path

from multicloud_dr.connectivity import PROBES, check_task_id
from multicloud_dr.lab.airflow_run import run_dag, task_results

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_every_lab_service_is_checked_through_its_connection(airflow_db):
    dag_run = run_dag("lab_service_check", DAGS)
    results = task_results(dag_run)
    assert str(dag_run.state) == "success", results
    found = {}
    for service in PROBES:
        state, value = results[check_task_id(service)]
        assert state == "success" and value["ok"], (service, state, value)
        found[service] = value["found"]
    for database in ("mysql-primary", "mysql-replica", "mysql-dr", "pg-primary", "pg-standby"):
        assert ", tls TLSv1." in found[database], found[database]   # the negotiated TLS of the live connection
    assert "replica io=Yes sql=Yes" in found["mysql-replica"]
    assert "read-only" in found["mysql-replica"] and "read-only" not in found["mysql-primary"]
    assert "1 streaming standby" in found["pg-primary"] and "wal receiver streaming" in found["pg-standby"]
    assert "dr-backups" in found["azure-blob"]
    assert "petclinic-cdc=running" in found["aws"] and "route53 zones 1" in found["aws"]
    assert "petclinic-dr-backups" in found["gcs"]


def test_an_unreachable_service_fails_its_task_and_the_run(airflow_db, monkeypatch):
    """The report at the end must not turn the run green when a check failed."""
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_DR", "mysql://nobody:x@127.0.0.1:9/")  # port 9: nothing listens
    dag_run = run_dag("lab_service_check", DAGS)
    results = task_results(dag_run)
    assert str(dag_run.state) == "failed"
    assert results["check_mysql_dr"][0] == "failed"
    assert results["report"][0] == "failed"
    assert all(results[check_task_id(s)][0] == "success" for s in PROBES if s != "mysql-dr")


def test_runs_under_the_real_scheduler(airflow_standalone):
    """Under `airflow standalone` each task runs in a worker process that loads the plugins folder
    and talks to the execution API: the path users take, and one `dag.test()` does not exercise."""
    result = airflow_standalone.run_dag("lab_service_check")
    assert result["run"]["state"] == "success", result
    assert set(result["tasks"].values()) == {"success"} and len(result["tasks"]) == len(PROBES) + 1, result
