"""Fencing the old primary on the lab's real servers (F23): the MariaDB primary and the PostgreSQL primary.

Writes are tried as the application's own account (MariaDB: the lab's petclinic_app; PostgreSQL: a scratch role
made for the test, as the lab has no app role there). Every test lifts its fence in a fixture's teardown, so the
lab takes the app's writes again whatever the test did; scratch tables (and the scratch role) are dropped."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
import uuid

import psycopg2
import pymysql
import pytest

from multicloud_dr.backup import source
from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.failover.fence import fence_mysql, fence_postgres, unfence_mysql, unfence_postgres
from multicloud_dr.lab.settings import APP_USER, SAMPLE_DATABASE


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- MariaDB ----------------------------------------------------------------------------------------------


@pytest.fixture
def mysql_app(lab):
    """(the app's endpoint on the primary, a scratch table it may write); the fence lifted afterwards."""
    admin = get_endpoint("mysql_primary")
    app = dataclasses.replace(admin, login=APP_USER, password=lab.settings.secrets().mysql_app)
    table = f"fence_probe_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(source.connect(admin, SAMPLE_DATABASE)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{table}` (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40))")
    try:
        yield app, table
    finally:
        unfence_mysql("mysql_primary", [APP_USER])
        with contextlib.closing(source.connect(admin, SAMPLE_DATABASE)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{table}`")


def app_insert(app: Endpoint, table: str, note: str) -> None:
    with contextlib.closing(source.connect(app, SAMPLE_DATABASE, connect_timeout=3)) as conn, conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{table}` (note) VALUES (%s)", (note,))


def notes(table: str) -> list[str]:
    with contextlib.closing(source.connect(get_endpoint("mysql_primary"), SAMPLE_DATABASE)) as conn, \
            conn.cursor() as cur:
        cur.execute(f"SELECT note FROM `{table}` ORDER BY id")
        return [row[0] for row in cur.fetchall()]


def test_a_fenced_mariadb_primary_refuses_the_apps_writes_and_ends_its_open_session(mysql_app):
    app, table = mysql_app
    app_insert(app, table, "before")
    # A session of the app that was connected before the fence, in the middle of a transaction.
    open_session = source.connect(app, SAMPLE_DATABASE)
    with open_session.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO `{table}` (note) VALUES ('uncommitted')")

    result = fence_mysql("mysql_primary", [APP_USER], timeout=10)

    assert result.reachable and result.verified and not result.already_fenced
    assert "read_only ON" in result.actions and any(a.startswith("end session") for a in result.actions)
    with pytest.raises(pymysql.err.MySQLError), open_session.cursor() as cur:   # killed: it cannot commit
        cur.execute(f"INSERT INTO `{table}` (note) VALUES ('after')")
        cur.execute("COMMIT")
    open_session.close()
    with pytest.raises((pymysql.err.MySQLError, source.SourceError)):   # the account is locked
        app_insert(app, table, "new session")
    assert notes(table) == ["before"]                      # nothing of the app's after the fence

    again = fence_mysql("mysql_primary", [APP_USER], timeout=10)
    assert again.actions == [] and again.already_fenced and again.verified


def test_the_fence_stays_on_the_fenced_server_and_the_replica_keeps_replicating(lab, mysql_app):
    """The account lock is not written to the binlog: the replica (the DR server a failover promotes) must
    still let the app log in once promoted."""
    fence_mysql("mysql_primary", [APP_USER], timeout=10)
    lab.mysql_replica.wait_caught_up(timeout=20)
    with contextlib.closing(source.connect(get_endpoint("mysql_replica"))) as conn, conn.cursor() as cur:
        cur.execute("SELECT JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv WHERE User = %s",
                    (APP_USER,))
        assert all(flag in (None, "0", "false") for (flag,) in cur.fetchall())
        cur.execute("SHOW SLAVE STATUS")
        assert cur.fetchone() is not None                   # still a replica of the fenced primary


def test_unfencing_gives_the_app_its_writes_back(mysql_app):
    app, table = mysql_app
    fence_mysql("mysql_primary", [APP_USER], timeout=10)
    result = unfence_mysql("mysql_primary", [APP_USER], timeout=10)
    assert result.verified and result.already_fenced and "read_only OFF" in result.actions
    app_insert(app, table, "after unfence")
    assert notes(table) == ["after unfence"]
    assert unfence_mysql("mysql_primary", [APP_USER]).actions == []


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_an_unreachable_primary_is_reported_not_raised_and_quickly(engine):
    endpoint = Endpoint(engine, "127.0.0.1", closed_port(), login="dr_admin", password="unused")
    fence = fence_mysql if engine == "mysql" else fence_postgres
    started = time.monotonic()
    result = fence(endpoint, ["app"], timeout=5, connect_timeout=2)
    assert time.monotonic() - started < 5
    assert not result.reachable and result.pending and not result.verified and "refused" in result.reason
    assert "unused" not in repr(result.to_dict())          # no password in what the failover records


# -- PostgreSQL -------------------------------------------------------------------------------------------


@pytest.fixture
def pg_app(lab):
    """(the scratch app role's endpoint, a table it may write); the fence lifted and both dropped afterwards."""
    admin = get_endpoint("postgres_primary")
    role, password = f"fence_app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    table = f"fence_probe_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(PostgresConnection(admin).connect()) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")
            cur.execute(f"GRANT INSERT, SELECT ON {table} TO {role}")
            cur.execute(f"GRANT USAGE ON SEQUENCE {table}_id_seq TO {role}")
    try:
        yield dataclasses.replace(admin, login=role, password=password), table
    finally:
        unfence_postgres("postgres_primary", [role])
        with contextlib.closing(PostgresConnection(admin).connect()) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute(f"DROP ROLE IF EXISTS {role}")


def pg_insert(conn, table: str, note: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} (note) VALUES (%s)", (note,))
    conn.commit()


def test_a_fenced_postgres_primary_refuses_the_apps_writes(pg_app):
    app, table = pg_app
    open_session = PostgresConnection(app).connect(connect_timeout=3)
    pg_insert(open_session, table, "before")

    result = fence_postgres("postgres_primary", [app.login], timeout=10)

    assert result.reachable and result.verified and not result.already_fenced
    assert any(a.startswith("end session") for a in result.actions) and "read_only ON" in result.actions
    assert any("standby" in w for w in result.warnings)    # NOLOGIN replicates to the lab's streaming standby
    with pytest.raises(psycopg2.Error):                    # its backend was terminated
        pg_insert(open_session, table, "after")
    open_session.close()
    with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
        PostgresConnection(app).connect(connect_timeout=3)
    # New sessions default to read-only (the belt to NOLOGIN's braces).
    with contextlib.closing(PostgresConnection(get_endpoint("postgres_primary")).connect()) as conn, \
            conn.cursor() as cur:
        cur.execute("SHOW default_transaction_read_only")
        assert cur.fetchone()[0] == "on"

    again = fence_postgres("postgres_primary", [app.login], timeout=10)
    assert again.actions == [] and again.already_fenced

    unfenced = unfence_postgres("postgres_primary", [app.login], timeout=10)
    assert unfenced.verified and unfenced.actions
    with contextlib.closing(PostgresConnection(app).connect(connect_timeout=3)) as conn:
        pg_insert(conn, table, "after unfence")
        with conn.cursor() as cur:
            cur.execute(f"SELECT note FROM {table} ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ["before", "after unfence"]


def test_drctl_fence_fences_a_site_twice_is_a_no_op_and_unfence_lifts_it(mysql_app, tmp_path):
    """`drctl fence` by hand (the day Airflow is down): the lab's topology names petclinic_app for MySQL."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    drctl = str(Path(sys.executable).with_name("drctl"))
    app, table = mysql_app
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "include" / "topology.yaml").read_text())
    for db in data["databases"]:
        if db["engine"] == "postgres":
            db.pop("app_users", None)       # a database that names no app account
    unnamed = tmp_path / "topology.yaml"
    unnamed.write_text(yaml.safe_dump(data))

    def run(*args: str, topology: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **({"MULTICLOUD_DR_TOPOLOGY": str(topology)} if topology else {})}
        return subprocess.run([drctl, "fence", "--site", "primary", *args], capture_output=True, text=True,
                              timeout=120, check=False, env=env)

    refused = run(topology=unnamed)   # one database names no app account: refused before anything is done
    assert refused.returncode == 2 and "has no app_users" in refused.stderr
    app_insert(app, table, "before")                                   # nothing was fenced
    first = run("--engine", "mysql")
    assert first.returncode == 0, first.stderr
    assert [(r["conn_id"], r["verified"], r["already_fenced"]) for r in json.loads(first.stdout)] == \
        [("mysql_primary", True, False)]
    with pytest.raises((pymysql.err.MySQLError, source.SourceError), match=r"locked|read-only|read_only"):
        app_insert(app, table, "while fenced")
    again = json.loads(run("--engine", "mysql").stdout)
    assert again[0]["already_fenced"] and again[0]["actions"] == []
    assert run("--engine", "mysql", "--unfence").returncode == 0
    app_insert(app, table, "after")
    assert notes(table) == ["before", "after"]
