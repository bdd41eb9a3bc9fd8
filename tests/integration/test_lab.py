"""The lab as a user meets it: `drctl lab up | status | down` on real servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pymysql
import pytest

from multicloud_dr import connections
from multicloud_dr.backup import source
from multicloud_dr.connections import parse_uri
from multicloud_dr.exceptions import ServiceFailedError
from multicloud_dr.lab.core import Lab
from multicloud_dr.lab.services import GcsService, MySQLDR
from multicloud_dr.lab.settings import LabSettings

DRCTL = str(Path(sys.executable).with_name("drctl"))


def drctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DRCTL, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def mysql(uri: str, database: str | None = None) -> pymysql.connections.Connection:
    return source.connect(parse_uri(uri), database)   # with the URI's TLS (the lab's CA, verified)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_status_lists_each_service_with_port_and_state(lab):
    result = drctl("lab", "status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for service in lab.services:
        row = next((line for line in lines if line.startswith(service.name + " ")), None)
        assert row is not None, f"{service.name} missing from status:\n{result.stdout}"
        assert f" {service.port} " in row and " up " in row, row


def test_env_file_is_private_and_every_uri_connects(lab):
    env_file = lab.settings.env_file
    assert env_file.stat().st_mode & 0o777 == 0o600, "the env file holds passwords: it must be 0600"
    for key in ("LAB_MYSQL_PRIMARY_URI", "LAB_MYSQL_REPLICA_URI", "LAB_MYSQL_DR_URI"):
        with contextlib.closing(mysql(os.environ[key])) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    for key in ("LAB_PG_PRIMARY_URI", "LAB_PG_REPLICA_URI"):
        with contextlib.closing(psycopg2.connect(os.environ[key])) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    for conn_id in connections.DEFAULT_CONN_IDS:
        assert connections.env_var_name(conn_id) in os.environ, f"{conn_id} has no AIRFLOW_CONN_* in .lab/env"
    for key in ("LAB_AZURE_CONNECTION_STRING", "LAB_AWS_ENDPOINT_URL", "LAB_GCS_ENDPOINT_URL"):
        assert os.environ.get(key), key


def test_replica_follows_the_primary_and_is_read_only(lab):
    db = f"scratch_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(mysql(os.environ["LAB_MYSQL_PRIMARY_URI"])) as primary, primary.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.execute(f"INSERT INTO {db}.t VALUES (1, 'ünïcødé ✓')")
        cur.execute("SELECT @@gtid_binlog_pos")
        (pos,) = cur.fetchone()
        try:
            with contextlib.closing(mysql(os.environ["LAB_MYSQL_REPLICA_URI"])) as replica, replica.cursor() as rc:
                rc.execute("SELECT MASTER_GTID_WAIT(%s, 30)", (pos,))
                assert rc.fetchone() == (0,), "replica did not reach the primary's GTID within 30 s"
                rc.execute(f"SELECT note FROM {db}.t WHERE id = 1")
                assert rc.fetchone() == ("ünïcødé ✓",)
                rc.execute("SELECT @@read_only")
                assert rc.fetchone() == (1,)
        finally:
            cur.execute(f"DROP DATABASE {db}")


def test_postgres_standby_streams_from_the_primary(lab):
    table = f"scratch_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(psycopg2.connect(os.environ["LAB_PG_PRIMARY_URI"])) as primary:
        primary.autocommit = True
        with primary.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id int primary key)")
            cur.execute(f"INSERT INTO {table} VALUES (42)")
            cur.execute("SELECT pg_current_wal_lsn()")
            (lsn,) = cur.fetchone()
        try:
            with contextlib.closing(psycopg2.connect(os.environ["LAB_PG_REPLICA_URI"])) as standby:
                standby.autocommit = True
                with standby.cursor() as sc:
                    deadline = time.monotonic() + 30
                    while True:  # bounded wait for replay to pass the primary's LSN
                        sc.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
                        if sc.fetchone()[0] or time.monotonic() > deadline:
                            break
                        time.sleep(0.1)
                    sc.execute(f"SELECT id FROM {table}")
                    assert sc.fetchall() == [(42,)]
                    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                        sc.execute(f"INSERT INTO {table} VALUES (43)")
        finally:
            with primary.cursor() as cur:
                cur.execute(f"DROP TABLE {table}")


def test_kill_9_shows_down_and_up_brings_it_back_with_its_data(lab):
    db = f"scratch_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(mysql(os.environ["LAB_MYSQL_DR_URI"])) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO {db}.t VALUES (7)")
    pid = lab.mysql_dr.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lab.mysql_dr.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)

    status = drctl("lab", "status")
    assert status.returncode == 1, "status must exit 1 while a service is down"
    row = next(line for line in status.stdout.splitlines() if line.startswith("mysql-dr "))
    assert " down " in row, row

    up = drctl("lab", "up")
    assert up.returncode == 0, up.stderr
    assert "mysql-dr       started" in up.stderr and "mysql-primary  reused" in up.stderr, up.stderr
    assert lab.mysql_dr.pid() not in (None, pid)
    with contextlib.closing(mysql(os.environ["LAB_MYSQL_DR_URI"])) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {db}.t")
        assert cur.fetchall() == ((7,),), "data written before the kill is gone after the restart"
        cur.execute(f"DROP DATABASE {db}")


def test_up_again_reuses_every_running_service(lab):
    t0 = time.monotonic()
    outcomes = Lab().up(report=lambda line: None)
    assert set(outcomes.values()) == {"reused"}, outcomes
    assert time.monotonic() - t0 < 30


def test_a_port_taken_by_another_program_is_named_with_its_setting(lab, tmp_path):
    """A second lab home while the first runs: every default port is taken, nothing is started."""
    env = {**os.environ, "DRLAB_HOME": str(tmp_path / "other-lab")}
    result = drctl("lab", "up", env=env)
    assert result.returncode == 2, result.stderr
    assert f"port {lab.mysql_primary.port} for lab service mysql-primary" in result.stderr
    assert "DRLAB_MYSQL_PRIMARY_PORT" in result.stderr and "DRLAB_AZURITE_PORT" in result.stderr
    assert all(s.state == "up" for s in lab.status()), "the running lab was disturbed"


def test_a_failing_service_is_named_with_the_tail_of_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DRLAB_MYSQL_DR_PORT", str(free_port()))
    service = MySQLDR(LabSettings(home=tmp_path, root=tmp_path))
    (service.dir / "data" / "mysql").mkdir(parents=True)  # looks initialised, has no system tables
    t0 = time.monotonic()
    with pytest.raises(ServiceFailedError) as err:
        service.start()
    message = str(err.value)
    assert "mysql-dr" in message and "exited" in message and "server.log" in message
    assert "ERROR" in message.upper(), message
    assert time.monotonic() - t0 < 60, "a server that exits must not be waited for until the timeout"


def test_down_stops_only_what_the_lab_started(tmp_path, monkeypatch):
    monkeypatch.setenv("DRLAB_GCS_PORT", str(free_port()))
    settings = LabSettings(home=tmp_path / "lab", root=tmp_path)
    gcs = GcsService(settings)
    assert gcs.start() == "started"
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path)
    try:
        stopped = Lab(settings).down(report=lambda line: None)
        assert stopped == ["gcs"]
        assert gcs.pid() is None
        assert bystander.poll() is None, "down killed a process the lab did not start"
    finally:
        bystander.kill()
        bystander.wait()
