"""DR metrics through Airflow's stats client, received by a StatsD server on loopback (a UDP socket on a free
port): Airflow's client is configured the way a deployment configures it (`[metrics]` from the environment) and
set up again from the configuration afterwards. The values come from the library code that computes them (the
replication report, the drill report, the failover report, a backup manifest)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk._shared.observability.metrics.validators import stat_name_default_handler

from multicloud_dr.backup.manifest import Manifest, StoredObject, TableEntry
from multicloud_dr.failover.report import FailoverReport, StepTiming
from multicloud_dr.monitoring import metrics
from multicloud_dr.replication.health import report_from_results
from multicloud_dr.replication.result import CheckResult
from multicloud_dr.restore.drill import drill_report
from multicloud_dr.restore.mysql_restore import RestoreResult


class StatsdServer:
    """What a StatsD server (or the Helm chart's statsd exporter) receives: one line per metric."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def lines(self, quiet: float = 0.2) -> list[str]:
        """Every line received until nothing has arrived for `quiet` seconds."""
        got: list[str] = []
        self.sock.settimeout(quiet)
        while True:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return got
            got += data.decode().splitlines()

    def gauges(self) -> dict[str, str]:
        """name -> value of each gauge line (`name:value|g`)."""
        found = {}
        for line in self.lines():
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            if kind == "g":
                found[name] = value
        return found


def configure_stats_from_airflow_config() -> None:
    """What the task runner does at its start (airflow.sdk.execution_time.task_runner.main)."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability.metrics import stats_utils
    from airflow.sdk.observability.stats import initialize

    initialize(factory=stats_utils.get_stats_factory(),
               export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))


def statsd_environment(port: int) -> dict[str, str]:
    return {"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(port), "AIRFLOW__METRICS__STATSD_PREFIX": "airflow"}


@pytest.fixture
def statsd():
    """statsd(**extra_metrics_env) -> a StatsdServer that Airflow's stats client sends to."""
    server = StatsdServer()
    with pytest.MonkeyPatch.context() as env:
        def start(**extra: str) -> StatsdServer:
            for key, value in {**statsd_environment(server.port), **extra}.items():
                env.setenv(key, value)
            configure_stats_from_airflow_config()
            return server

        yield start
    configure_stats_from_airflow_config()   # back to this session's configuration (no metrics)
    server.sock.close()


def _check(name: str, status: str, value, unit: str = "seconds") -> dict:
    return CheckResult(name, status, value, 60, "detail", unit=unit).to_dict()


SPECS = [{"name": "mysql_replica/petclinic", "kind": "mysql_replica", "threshold": 60},
         {"name": "consistency/petclinic", "kind": "consistency"},
         {"name": "postgres_standby/petclinic", "kind": "postgres_standby", "threshold": 60},
         {"name": "dms/petclinic-cdc", "kind": "dms", "threshold": 60},
         {"name": "backup_freshness/petclinic", "kind": "backup_freshness", "threshold": 93600}]


def test_the_rpo_and_each_check_go_out_as_gauges_under_the_configured_prefix(statsd):
    server = statsd()
    results = [_check("mysql_replica/petclinic", "ok", 4.0), _check("consistency/petclinic", "ok", 0, unit="chunks"),
               _check("postgres_standby/petclinic", "ok", 1.25), _check("dms/petclinic-cdc", "ok", 2.0),
               _check("backup_freshness/petclinic", "ok", 3.5)]
    report = report_from_results(SPECS, results, 600, "2026-11-22T06:00:00+00:00")
    metrics.send_health_report(report, "lab")
    assert server.gauges() == {
        "airflow.multicloud_dr.rpo_seconds.lab": "4.0",
        "airflow.multicloud_dr.check.mysql_replica_petclinic.lab": "4.0",
        "airflow.multicloud_dr.check.consistency_petclinic.lab": "0",
        "airflow.multicloud_dr.check.postgres_standby_petclinic.lab": "1.25",
        "airflow.multicloud_dr.check.dms_petclinic-cdc.lab": "2.0",
        "airflow.multicloud_dr.check.backup_freshness_petclinic.lab": "3.5",
    }


def test_a_lag_that_is_not_known_is_not_sent_as_zero(statsd):
    server = statsd()
    # Seconds_Behind_Master NULL (a breach with no value), a check that could not run, a task that never reported.
    results = [_check("mysql_replica/petclinic", "breach", None), _check("consistency/petclinic", "error", None),
               _check("dms/petclinic-cdc", "error", None)]
    report = report_from_results(SPECS, results, 600, "2026-11-22T06:00:00+00:00")
    assert report.rpo_seconds is None
    metrics.send_health_report(report, "lab")
    metrics.gauge("rpo_seconds", None, "lab")
    assert server.lines() == []


def test_tags_reach_a_tagging_statsd(statsd):
    server = statsd(AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True")
    report = report_from_results(SPECS[:1], [_check("mysql_replica/petclinic", "ok", 4.0)], 600, "t")
    metrics.send_health_report(report, "lab")
    assert set(server.lines()) == {
        "airflow.multicloud_dr.rpo_seconds.lab,environment=lab:4.0|g",
        "airflow.multicloud_dr.check.mysql_replica_petclinic.lab,environment=lab,check=mysql_replica/petclinic,"
        "unit=seconds:4.0|g",
    }


def _manifest(stored_at: datetime, database: str = "petclinic") -> Manifest:
    logical = stored_at - timedelta(minutes=10)
    return Manifest(
        backup_id=f"{database}/20261122T030000Z", database=database, logical_date=logical,
        source={"server": "127.0.0.1:13306", "version": "10.11", "flavor": "mariadb"},
        started_at=logical, finished_at=stored_at - timedelta(seconds=5), stored_at=stored_at,
        tools={"dump": "test"}, codec="zstd",
        objects=[StoredObject(name="wasb://dr-backups/x/a.sql.zst", bytes=1000, sha256="0" * 64, raw_bytes=9000),
                 StoredObject(name="wasb://dr-backups/x/b.sql.zst", bytes=234, sha256="1" * 64, raw_bytes=800)],
        tables={"owners": TableEntry(rows=10, crc32="0badf00d")})


def test_backup_age_and_size_from_the_manifest_on_the_storage_clock(statsd):
    server = statsd()
    stored_at = datetime(2026, 11, 22, 3, 10, tzinfo=UTC)
    metrics.send_backup(_manifest(stored_at), stored_at + timedelta(minutes=2, seconds=30))
    assert server.gauges() == {"airflow.multicloud_dr.backup_age_seconds.petclinic": "150.0",
                               "airflow.multicloud_dr.backup_bytes.petclinic": "1234"}


def test_the_drill_sends_its_restore_time_and_its_prediction(statsd):
    server = statsd()
    at = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    result = RestoreResult(database="drill_petclinic_20261122t050000", manifest="wasb://dr-backups/p/manifest.json",
                           seconds=100.0, tables=3, rows=1000, bytes=1234, bytes_raw=10_000_000, verified=True)
    # Ten days ago the database was half the size: it grows, so the restore time predicted is longer.
    history = [{"at": (at - timedelta(days=10)).isoformat(), "database_size_bytes": 5_000_000,
                "run_stamp": "20261112T050000Z"}]
    drill = drill_report(result, _manifest(at), 10_000_000, 3600, history, at=at)
    predicted = drill["prediction"]["predicted_seconds"]
    assert predicted > 100.0
    metrics.send_drill_report(drill, "lab")
    assert server.gauges() == {"airflow.multicloud_dr.restore_drill_seconds.petclinic": "100.0",
                               "airflow.multicloud_dr.predicted_restore_seconds.petclinic": str(predicted)}


def _failover(verify_done: bool) -> dict:
    triggered = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    steps = (StepTiming("fence", triggered + timedelta(seconds=5), triggered + timedelta(seconds=20)),
             StepTiming("traffic", triggered + timedelta(seconds=20), triggered + timedelta(seconds=80)),
             StepTiming("verify", triggered + timedelta(seconds=80), triggered + timedelta(seconds=95),
                        "done" if verify_done else "failed"))
    report = FailoverReport("lab", "dr", "planned", triggered, None, steps).to_dict()
    return {**report, "kind": "failover"}


def test_a_failover_sends_the_rto_it_achieved_and_none_when_it_was_not_verified(statsd):
    server = statsd(AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True")
    metrics.send_failover_report(_failover(verify_done=False))   # rto_seconds None: nothing
    metrics.send_failover_report(None)
    metrics.send_failover_report(_failover(verify_done=True))
    assert server.lines() == ["airflow.multicloud_dr.failover_rto_seconds.lab,environment=lab,kind=failover,"
                              "mode=planned,target_site=dr:95.0|g"]


def test_names_made_of_any_database_or_check_name_pass_airflows_validation(statsd):
    server = statsd()
    odd = "pet clinic.v2/ä$"
    name = metrics.metric_name("check", f"mysql_replica/{odd}", "lab")
    assert name == "multicloud_dr.check.mysql_replica_pet_clinic_v2___.lab"   # one level per subject
    assert stat_name_default_handler(f"airflow.{name}") == f"airflow.{name}"
    metrics.gauge("check", 1.5, f"mysql_replica/{odd}", "lab", check=f"mysql_replica/{odd}")
    assert server.gauges() == {f"airflow.{name}": "1.5"}


class BrokenClient:
    def gauge(self, *args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")


def test_a_broken_stats_client_never_fails_the_task(caplog):
    from airflow.sdk.observability.stats import initialize

    report = report_from_results(SPECS[:1], [_check("mysql_replica/petclinic", "ok", 4.0)], 600, "t")
    stored_at = datetime(2026, 11, 22, 3, 10, tzinfo=UTC)
    caplog.set_level(logging.WARNING, logger="multicloud_dr.monitoring.metrics")
    try:
        for factory in (BrokenClient, _raises):   # a client whose send fails; one that cannot be made
            initialize(factory=factory, export_legacy_names=False)
            metrics.send_health_report(report, "lab")
            metrics.send_backup(_manifest(stored_at), stored_at + timedelta(minutes=1))
        # Reports without the fields the names need: logged, not raised.
        metrics.send_drill_report({}, "lab")
        metrics.send_failover_report({"rto_seconds": 1.0})
    finally:
        configure_stats_from_airflow_config()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "metric multicloud_dr.rpo_seconds.lab was not sent: [Errno 101] Network is unreachable" in warnings
    assert "metric multicloud_dr.backup_bytes.petclinic was not sent: could not create the stats client" in warnings
    assert any(w.startswith("the restore drill metrics not measured") for w in warnings)
    assert any(w.startswith("the failover metrics not measured") for w in warnings)


def _raises():
    raise RuntimeError("could not create the stats client")


def test_a_deployment_configured_by_its_environment_sends_without_any_setup_of_ours():
    """A task process configured by AIRFLOW__METRICS__* from its start (as the Helm chart sets a worker's
    environment): importing the task runner sets the stats client up, as under `dag.test()`."""
    server = StatsdServer()
    code = ("import airflow.sdk.execution_time.task_runner\n"
            "from multicloud_dr.monitoring import metrics\n"
            "metrics.gauge('rpo_seconds', 4, 'lab', environment='lab')\n")
    child = subprocess.run([sys.executable, "-c", code], env={**os.environ, **statsd_environment(server.port)},
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 0, child.stderr[-2000:]
    lines = server.lines(quiet=1.0)
    assert "airflow.multicloud_dr.rpo_seconds.lab:4|g" in lines
    assert any(line.startswith("airflow.serde.") for line in lines)   # Airflow's own metrics, on the same client
    server.sock.close()
