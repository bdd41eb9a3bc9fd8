"""The scale-out Airflow's settings (lab/scaleout.py, lab/scaleout_demo.py), without starting it: secrets only in
the environment, TLS verified to the broker and the metadata database, a worker known by its name, and a demo that
can only ever empty prefixes of its own (it deletes what it finds there as it starts)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from multicloud_dr.lab.scaleout import CONTROL_PLANE, WORKERS, CeleryCluster, worker_hostname
from multicloud_dr.lab.settings import LabSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> LabSettings:
    home = tmp_path / "lab"
    home.mkdir()
    (home / "env").write_text("export AIRFLOW_CONN_MYSQL_PRIMARY='mysql://dr_admin:pw@127.0.0.1:13306'\n")
    monkeypatch.setenv("DRLAB_REDIS_PORT", "26379")
    monkeypatch.setenv("DRLAB_AIRFLOW_DB_PORT", "25434")
    return LabSettings(home=home, root=ROOT)


def test_secrets_reach_the_components_through_their_environment_only(settings):
    cluster = CeleryCluster(settings)
    secrets = settings.secrets()
    env = cluster._common_env()
    for name in (*CONTROL_PLANE, *WORKERS):
        argv = " ".join(cluster.argv(name))
        for secret in (secrets.redis, secrets.airflow_db, env["AIRFLOW__CORE__FERNET_KEY"],
                       env["AIRFLOW__API_AUTH__JWT_SECRET"], env["AIRFLOW__API__SECRET_KEY"]):
            assert secret not in argv, name
    assert secrets.redis in env["AIRFLOW__CELERY__BROKER_URL"]
    assert secrets.airflow_db in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # Every component shares one JWT secret and Fernet key: the scheduler signs what the api-server checks.
    again = cluster._common_env()
    assert all(again[k] == env[k] for k in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY",
                                            "AIRFLOW__API__SECRET_KEY"))
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 32 and env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_the_broker_and_the_metadata_database_are_reached_over_verified_tls(settings):
    cluster = CeleryCluster(settings)
    broker = urlsplit(cluster.redis.broker_url())
    assert broker.scheme == "rediss" and broker.port == 26379 and broker.hostname == "127.0.0.1"
    query = parse_qs(broker.query)
    assert query["ssl_cert_reqs"] == ["required"] and query["ssl_ca_certs"] == [str(settings.tls.ca)]
    db = urlsplit(cluster.db.sqlalchemy_uri())
    assert db.scheme == "postgresql+psycopg2" and db.port == 25434 and db.path == "/airflow"
    assert parse_qs(db.query) == {"sslmode": ["verify-full"], "sslrootcert": [str(settings.tls.ca)]}
    assert cluster._common_env()["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{cluster.db.sqlalchemy_uri()}"


def test_each_worker_has_a_home_working_directory_and_temp_directory_of_its_own(settings):
    cluster = CeleryCluster(settings)
    env = cluster._common_env()
    homes = {w: cluster._worker_env(env, w) for w in WORKERS}
    assert len({e["AIRFLOW_HOME"] for e in homes.values()}) == len(WORKERS)
    assert len({e["TMPDIR"] for e in homes.values()}) == len(WORKERS)
    for name, worker_env in homes.items():
        assert worker_env["DRLAB_WORKER_NAME"] == name
        assert Path(worker_env["TMPDIR"]).is_relative_to(cluster.worker_home(name))
        assert f"{name}@%h" in cluster.argv(name) and "--skip-serve-logs" in cluster.argv(name)


def test_a_task_instance_names_the_worker_that_ran_it(monkeypatch):
    monkeypatch.setenv("DRLAB_WORKER_NAME", "worker-2")
    assert worker_hostname() == "worker-2"
    monkeypatch.delenv("DRLAB_WORKER_NAME")
    import socket

    assert worker_hostname() == socket.getfqdn()


def test_the_demo_backs_up_and_copies_only_under_prefixes_of_its_own(settings):
    from multicloud_dr.lab import scaleout_demo

    class FakeLab:
        pass

    lab = FakeLab()
    lab.settings = settings
    topology = yaml.safe_load(scaleout_demo.demo_topology(lab).read_text())
    shipped = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    assert topology["backup"]["location"] == scaleout_demo.LOCATION != shipped["backup"]["location"]
    assert topology["backup"]["copies"], "the demo's copies are part of what runs on the workers"
    for copy, original in zip(topology["backup"]["copies"], shipped["backup"]["copies"], strict=True):
        assert copy["url"].endswith(f"/{scaleout_demo.DEMO_PREFIX}") and copy["url"] != original["url"]
        assert copy["url"].split("/")[2] == original["url"].split("/")[2]   # same bucket, the demo's folder
    assert [d["engine"] for d in topology["databases"]] == ["mysql"]
    assert topology["failover"]["four_eyes_environments"] == [scaleout_demo.ENVIRONMENT]
