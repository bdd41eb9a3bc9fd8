"""TLS to every database of the lab, verified with the lab's CA: what the backup, the restore and the checks
connect with is TLS as the server sees it; a wrong CA or plaintext to the DR server (which requires TLS) fails
in one line that says what to fix, and drctl exits 2."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg2
import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from multicloud_dr.backup import source
from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.connections.mysql import MySqlConnection
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.connectivity import probe
from multicloud_dr.exceptions import TlsError
from multicloud_dr.lab.core import Lab
from multicloud_dr.lab.tls import LabTls
from multicloud_dr.replication import postgres as pg_replication
from multicloud_dr.restore.load_data import RowsConnection
from multicloud_dr.restore.mysql_restore import scratch_name

from .conftest import mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))
MYSQL_IDS = ("mysql_primary", "mysql_replica", "mysql_dr")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> Path:
    """A CA that did not sign the lab's certificate."""
    tls = LabTls(tmp_path_factory.mktemp("other-ca"))
    tls.ensure()
    return tls.ca


def _uri(endpoint: Endpoint, **extra) -> str:
    """A mysql:// URI of `endpoint` with these extras instead of its own."""
    query = urlencode({k: json.dumps(v) if isinstance(v, dict) else v for k, v in extra.items()})
    return (f"mysql://{quote(endpoint.login, safe='')}:{quote(endpoint.password or '', safe='')}@{endpoint.host}:"
            f"{endpoint.port}{'?' + query if query else ''}")


def _session_cipher(conn) -> str:
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        return cur.fetchone()[1]


def _tls_counters(endpoint: Endpoint) -> tuple[int, int]:
    """(connections accepted, TLS handshakes finished) by the server so far (this reading's included)."""
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Ssl_finished_accepts')")
        status = dict(cur.fetchall())
    return int(status["Connections"]), int(status["Ssl_finished_accepts"])


def _drctl(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DRCTL, *args], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})})


def _one_error_line(run: subprocess.CompletedProcess) -> str:
    errors = [line for line in run.stderr.splitlines() if line.startswith("drctl: error: ")]
    assert run.returncode == 2, run.stderr
    assert len(errors) == 1 and run.stderr.splitlines()[-1] == errors[0] and "Traceback" not in run.stderr, run.stderr
    return errors[0]


def test_the_lab_connections_name_its_ca_with_verification_on(lab):
    assert os.environ["LAB_TLS_CA"] == str(lab.settings.tls.ca) and lab.settings.tls.ca.is_file()
    assert lab.settings.tls.ca_key.stat().st_mode & 0o777 == 0o600
    for conn_id in MYSQL_IDS:
        tls = MySqlConnection(get_endpoint(conn_id)).tls
        assert (tls.mode, tls.ca) == ("VERIFY_IDENTITY", os.environ["LAB_TLS_CA"]), conn_id
    for conn_id in ("postgres_primary", "postgres_standby"):
        ssl = PostgresConnection(get_endpoint(conn_id)).ssl
        assert ssl == {"sslmode": "verify-full", "sslrootcert": os.environ["LAB_TLS_CA"]}, conn_id


def test_library_connections_are_tls_as_the_server_sees_them(lab):
    for conn_id in MYSQL_IDS:
        endpoint = get_endpoint(conn_id)
        with contextlib.closing(source.connect(endpoint)) as conn:    # backup, restore, replication checks
            assert _session_cipher(conn), f"{conn_id}: the server sees a plaintext session"
        with contextlib.closing(source.connect(endpoint, factory=RowsConnection)) as conn:   # restore's LOAD DATA
            assert _session_cipher(conn), f"{conn_id}: the restore's row connection is plaintext"
    for conn_id in ("postgres_primary", "postgres_standby"):
        with contextlib.closing(pg_replication.connect(get_endpoint(conn_id), "petclinic")) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone()[0] is True, f"{conn_id}: the server sees a plaintext session"
    for service in ("mysql-primary", "mysql-replica", "mysql-dr", "pg-primary", "pg-standby"):
        assert ", tls TLSv1." in probe(service).found, service          # the service check says so too


def test_every_connection_of_a_backup_and_a_restore_is_tls(lab, small_db, backup_root):
    primary, dr = get_endpoint("mysql_primary"), get_endpoint("mysql_dr")
    target = f"t_tls_{uuid.uuid4().hex[:6]}"
    before = {"primary": _tls_counters(primary), "dr": _tls_counters(dr)}
    try:
        backup = _drctl("backup", "--source", "mysql_primary", "--database", small_db[0], "--to", str(backup_root),
                        "--logical-date", "2026-11-05T03:00:00Z")
        assert backup.returncode == 0, backup.stderr
        manifest = json.loads(backup.stdout)["manifest"]
        assert _drctl("verify", manifest).returncode == 0
        restore = _drctl("restore", "--from", manifest, "--target", "mysql_dr", "--database", target)
        assert restore.returncode == 0, restore.stderr
        after = {"primary": _tls_counters(primary), "dr": _tls_counters(dr)}
        for server in ("primary", "dr"):
            connections = after[server][0] - before[server][0]
            handshakes = after[server][1] - before[server][1]
            assert connections >= 3, f"{server}: saw only {connections} connection(s): the test observed nothing"
            assert handshakes == connections, f"{server}: {connections - handshakes} of {connections} not TLS"
    finally:
        with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
            for name in (target, scratch_name(target, "restore"), scratch_name(target, "old")):
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_the_option_file_gives_the_mysql_clients_verified_tls(lab, other_ca):
    dr = get_endpoint("mysql_dr")
    with source.option_file(dr) as cnf:
        run = subprocess.run(["mysql", f"--defaults-file={cnf}", "-N", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'"],
                             capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "Ssl_cipher" and len(run.stdout.split()) == 2, run.stdout   # a cipher in use
    with source.option_file(replace(dr, extra={"ssl": {"ca": str(other_ca)}})) as cnf:
        run = subprocess.run(["mysql", f"--defaults-file={cnf}", "-e", "SELECT 1"], capture_output=True, text=True,
                             timeout=30, check=False)
    assert run.returncode != 0 and "TLS/SSL error" in run.stderr, "the option file's client did not verify the CA"


def test_a_wrong_ca_is_one_line_and_drctl_exits_2(lab, other_ca, verified_petclinic_backup):
    primary, dr = get_endpoint("mysql_primary"), get_endpoint("mysql_dr")
    expected = "not trusted by CA {ca}"
    with pytest.raises(TlsError, match=expected.format(ca=other_ca)):
        source.connect(replace(dr, extra={"ssl": {"ca": str(other_ca)}}))

    backup = _drctl("backup", "--source", _uri(primary, ssl={"ca": str(other_ca)}), "--database", "petclinic",
                    "--to", f"wasb://dr-backups/test-tls-{uuid.uuid4().hex[:8]}")
    line = _one_error_line(backup)
    assert line == (f"drctl: error: TLS certificate of mysql://{primary.login}@127.0.0.1:{primary.port} not trusted "
                    f"by CA {other_ca} (self-signed certificate in certificate chain): set extra.ssl.ca to the CA "
                    f"that signed the server's certificate"), line
    assert primary.password not in backup.stderr + backup.stdout

    _, record, _ = verified_petclinic_backup("test-tls", datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    target = f"t_tls_{uuid.uuid4().hex[:6]}"
    restore = _drctl("restore", "--from", str(record.url), "--database", target, "--target",
                     _uri(dr, ssl=json.dumps({"ca": str(other_ca)})))          # the JSON-string form of a URI
    assert f"not trusted by CA {other_ca}" in _one_error_line(restore)

    bad_pg = get_endpoint("postgres_primary")
    env = {"AIRFLOW_CONN_POSTGRES_PRIMARY": f"postgres://{bad_pg.login}:{bad_pg.password}@{bad_pg.host}:"
                                            f"{bad_pg.port}/petclinic?sslrootcert={quote(str(other_ca), safe='')}"}
    check = _drctl("replication", "check", "--only", "postgres_standby/petclinic", env=env)
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"not trusted by CA {other_ca}: set extra sslrootcert" in check.stdout, check.stdout


def test_plaintext_to_the_dr_server_is_refused_in_one_line(lab, verified_petclinic_backup):
    dr, primary = get_endpoint("mysql_dr"), get_endpoint("mysql_primary")
    plain = MySqlConnection(replace(dr, extra={"ssl_mode": "DISABLED"})).connect_kwargs()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(**plain)
    assert refused.value.args[0] == 1045          # the server refuses plaintext: require_secure_transport=ON
    plain_to_primary = MySqlConnection(replace(primary, extra={"ssl_mode": "DISABLED"})).connect_kwargs()
    with contextlib.closing(pymysql.connect(**plain_to_primary)) as conn:   # the same kind of account, no TLS rule
        assert _session_cipher(conn) == "", "the refusal above is not about TLS if plaintext is TLS here"

    _, record, _ = verified_petclinic_backup("test-tls", datetime(2026, 11, 20, 3, 0, tzinfo=UTC))
    target = f"t_tls_{uuid.uuid4().hex[:6]}"
    restore = _drctl("restore", "--from", str(record.url), "--database", target, "--target",
                     _uri(dr, ssl_mode="DISABLED"))
    line = _one_error_line(restore)
    assert f"the server mysql://{dr.login}@127.0.0.1:{dr.port} denied access over plaintext" in line, line
    assert "remove ssl_mode DISABLED and set extra ssl" in line and dr.password not in restore.stderr


def test_lab_status_says_tls_for_each_database(lab):
    status = _drctl("lab", "status")
    assert status.returncode == 0, status.stderr
    for name in ("mysql-primary", "mysql-replica", "mysql-dr", "pg-primary", "pg-standby"):
        row = next(line for line in status.stdout.splitlines() if line.startswith(name + " "))
        assert ", tls TLSv1." in row, row


def test_a_missing_certificate_is_remade_and_the_servers_serve_it(lab):
    """`lab up` makes a new server certificate when it is gone, and restarts the databases on it."""
    tls = lab.settings.tls
    old = tls.fingerprint()
    tls.cert.unlink()
    outcomes = Lab().up(report=lambda line: None)
    databases = ("mysql-primary", "mysql-replica", "mysql-dr", "pg-primary", "pg-standby")
    assert {name: outcomes[name] for name in databases} == dict.fromkeys(databases, "restarted"), outcomes
    assert tls.fingerprint() != old and outcomes["azurite"] == "reused"
    made = x509.load_pem_x509_certificate(tls.cert.read_bytes()).public_bytes(serialization.Encoding.DER)
    for conn_id in MYSQL_IDS:
        with contextlib.closing(source.connect(get_endpoint(conn_id))) as conn:
            assert conn._sock.getpeercert(binary_form=True) == made, f"{conn_id} serves another certificate"
    for key in ("LAB_PG_PRIMARY_URI", "LAB_PG_REPLICA_URI"):
        with contextlib.closing(psycopg2.connect(os.environ[key])) as conn, conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,), key
    with contextlib.closing(psycopg2.connect(os.environ["LAB_PG_REPLICA_URI"])) as conn, conn.cursor() as cur:
        deadline = time.monotonic() + 30
        while True:   # bounded wait: the restarted standby reconnects to the restarted primary
            cur.execute("SELECT status FROM pg_stat_wal_receiver")
            row = cur.fetchone()
            if row == ("streaming",) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert row == ("streaming",), row
