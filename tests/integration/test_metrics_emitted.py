"""DR metrics sent from the code that measures them, on the lab's real servers, to a StatsD server on loopback (a
UDP socket on a free port). Airflow's stats client is configured through `[metrics]` in the environment, as a
deployment configures it, and set up again from the configuration afterwards. The senders: the verify task of a
real backup in Azurite; replication_health run by Airflow (`dag.test()`) against the lab's MariaDB, PostgreSQL,
moto (DMS) and Azurite, whose `rpo` task sends what it records as the asset event; dr_restore_drill run by Airflow,
whose `report` task sends what its report says (a real restore of petclinic on the DR server)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class StatsdServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def gauges(self, quiet: float = 0.5) -> dict[str, float]:
        """name -> value of every gauge received until nothing has arrived for `quiet` seconds."""
        found: dict[str, float] = {}
        self.sock.settimeout(quiet)
        while True:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return found
            for line in data.decode().splitlines():
                name, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                if kind == "g":
                    found[name] = float(value)


def _configure_stats() -> None:
    """What the task runner does at its start (airflow.sdk.execution_time.task_runner.main)."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils
    from airflow.sdk.observability.stats import initialize

    initialize(factory=stats_utils.get_stats_factory(),
               export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))


@pytest.fixture
def statsd():
    server = StatsdServer()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
        env.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
        env.setenv("AIRFLOW__METRICS__STATSD_PORT", str(server.port))
        env.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
        _configure_stats()
        yield server
    _configure_stats()
    server.sock.close()


@pytest.fixture(scope="module")
def verified_backup(verified_petclinic_backup):
    return verified_petclinic_backup("metrics", datetime(2026, 11, 22, 3, 0, tzinfo=UTC))


def test_verifying_a_backup_sends_its_age_and_size(statsd, verified_backup):
    from multicloud_dr.operators.backup import VerifyBackupOperator

    _, record, store = verified_backup
    stored_at = record.manifest.stored_at
    before = store.server_now()
    verify = VerifyBackupOperator(task_id="verify", manifest=str(record.url), storage_conn_id="azure_blob_dr")
    result = verify.execute({})
    after = store.server_now()
    assert result["status"] == "verified"

    gauges = statsd.gauges()
    assert gauges["airflow.multicloud_dr.backup_bytes.petclinic"] == record.manifest.bytes_stored == result["bytes"]
    age = gauges["airflow.multicloud_dr.backup_age_seconds.petclinic"]
    assert (before - stored_at).total_seconds() <= age <= (after - stored_at).total_seconds()


def test_replication_health_sends_the_rpo_and_each_check_it_recorded(airflow_db, statsd, verified_backup, tmp_path,
                                                                      monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    topology = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    topology["backup"]["location"] = str(verified_backup[0])
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(topology))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "replication_health.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["replication_health"]
    for each in dag.tasks:
        each.retries = 0
    dag_run = dag.test(logical_date=datetime(2026, 11, 22, 6, 10, tzinfo=UTC))
    with create_session() as session:
        [event] = [dict(e.extra) for e in
                   session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dag_run.run_id))]

    gauges = {name: value for name, value in statsd.gauges().items() if name.startswith("airflow.multicloud_dr.")}
    assert event["rpo_seconds"] is not None
    expected = {"airflow.multicloud_dr.rpo_seconds.lab": event["rpo_seconds"]}
    for check in event["checks"]:
        if check["value"] is not None:   # a check that measured nothing sends nothing
            expected[f"airflow.multicloud_dr.check.{check['name'].replace('/', '_')}.lab"] = check["value"]
    assert gauges == expected
    assert len(expected) == 1 + len(event["checks"]), event["checks"]   # the healthy lab measures every check


def test_the_restore_drill_sends_its_restore_time_and_prediction(airflow_db, statsd, verified_backup, tmp_path,
                                                                  monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.lab.airflow_run import task_results, without_deadlines
    from multicloud_dr.restore.drill import scratch_database_name, teardown_scratch

    topology = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    topology["backup"]["location"] = str(verified_backup[0])
    topology["backup"]["copies"] = []
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(topology))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "dr_restore_drill.py"))
    assert not bag.import_errors, bag.import_errors
    dag = without_deadlines(bag.dags["dr_restore_drill"])   # as run_dag() does (why: its docstring)
    when = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    try:
        dag_run = dag.test(logical_date=when)
    finally:   # the DAG's teardown drops it; this is for a run that did not get that far
        teardown_scratch(get_endpoint("mysql_dr"), scratch_database_name("petclinic", when))
    results = task_results(dag_run)
    assert str(dag_run.state) == "success", {k: v[0] for k, v in results.items()}
    drill = results["petclinic.report"][1]

    gauges = {name: value for name, value in statsd.gauges().items() if name.startswith("airflow.multicloud_dr.")}
    assert gauges == {"airflow.multicloud_dr.restore_drill_seconds.petclinic": drill["seconds"],
                      "airflow.multicloud_dr.predicted_restore_seconds.petclinic":
                          drill["prediction"]["predicted_seconds"]}
    assert drill["seconds"] > 0
