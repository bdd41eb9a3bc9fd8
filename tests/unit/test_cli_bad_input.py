"""drctl's contract for bad input: one line on stderr (`drctl: error: ...`), exit 2, no traceback,
nothing written, and never a password. No servers: every case fails before anything is contacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multicloud_dr import cli, connections
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import InputError
from multicloud_dr.restore.mysql_restore import RestoreRequest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-PW"
GOOD_URI = f"mysql://dr_admin:{PASSWORD}@127.0.0.1:13306/petclinic"


@pytest.fixture(autouse=True)
def drctl_process(monkeypatch):
    """As in drctl's own process: connection ids come from AIRFLOW_CONN_* (another test may have imported
    Airflow into this one), and the topology from MULTICLOUD_DR_TOPOLOGY alone."""
    monkeypatch.setattr(connections, "running_in_airflow", lambda: False)
    monkeypatch.delenv("MULTICLOUD_DR_TOPOLOGY", raising=False)


def run(capsys, *argv: str) -> str:
    """drctl's stderr, once it is known to keep the contract."""
    with pytest.raises(SystemExit) as exited:  # argparse's errors exit from inside parse_args
        sys.exit(cli.main(list(argv)))
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("drctl: error: "), err
    assert PASSWORD not in err
    return lines[0]


def backup_from(source: str, to: str = "wasb://dr-backups/mysql") -> tuple[str, ...]:
    return ("backup", "--source", source, "--database", "petclinic", "--to", to)


# 1. Malformed connections (a URI given directly, or an AIRFLOW_CONN_* variable in either form).

@pytest.mark.parametrize("value, says", [
    (f"mysql://dr_admin:{PASSWORD}@127.0.0.1:notaport/petclinic", "port"),
    (f"mysql://dr_admin:{PASSWORD}@127.0.0.1:99999/petclinic", "port"),
    # An unescaped / in the password: urlsplit takes the password's first part for the port.
    (f"mysql://dr_admin:{PASSWORD[:3]}/{PASSWORD[3:]}@127.0.0.1:13306/petclinic", "percent-encode"),
    (f"mysql://dr_admin:{PASSWORD}@127.0.0.1:13306/petclinic?__extra__=%7Bnot-json", "__extra__"),
    (f"mysql://dr_admin:{PASSWORD}@127.0.0.1:13306/petclinic?__extra__=%5B1%5D", "not an object"),
    (json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "login": "dr_admin", "password": PASSWORD,
                 "extra": '{"charset": utf8mb4'}), "extra"),
    (json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "login": "dr_admin", "password": PASSWORD,
                 "port": "notaport"}), "port"),
    (json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "login": "dr_admin", "password": PASSWORD,
                 "port": [3306]}), "port"),
    ('{"conn_type": "mysql", "password": "' + PASSWORD + '", ', "does not parse"),
])
def test_malformed_connection_variable_is_one_line_naming_the_variable(capsys, monkeypatch, value, says):
    monkeypatch.setenv("AIRFLOW_CONN_BAD_SOURCE", value)
    line = run(capsys, *backup_from("bad_source"))
    assert "AIRFLOW_CONN_BAD_SOURCE" in line and says in line
    assert PASSWORD[:3] + "/" not in line and PASSWORD[3:] not in line


def test_malformed_uri_on_the_command_line(capsys):
    line = run(capsys, *backup_from(f"mysql://dr_admin:{PASSWORD}@127.0.0.1:notaport/petclinic"))
    assert "port" in line


def test_malformed_storage_connection(capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BAD_STORAGE", json.dumps(
        {"conn_type": "wasb", "password": PASSWORD, "extra": "{connection_string: AccountKey=" + PASSWORD}))
    line = run(capsys, "backups", "list", "--at", "wasb://dr-backups/mysql", "--storage-conn", "bad_storage")
    assert "AIRFLOW_CONN_BAD_STORAGE: extra" in line


def test_installed_drctl_keeps_the_contract_for_a_bad_port():
    env = {**os.environ, "AIRFLOW_CONN_BAD_SOURCE": f"mysql://dr_admin:{PASSWORD}@127.0.0.1:notaport/petclinic"}
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "drctl"), *backup_from("bad_source")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("drctl: error: ")
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr and done.stdout == ""


# 2. A topology file that cannot be read or decoded.

def test_topology_that_is_a_directory(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(tmp_path))
    assert "cannot be read" in run(capsys, "replication", "check")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_topology_without_read_permission(capsys, monkeypatch, tmp_path):
    topology = tmp_path / "topology.yaml"
    topology.write_text((ROOT / "include" / "topology.yaml").read_text())
    topology.chmod(0)
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(topology))
    assert "cannot be read" in run(capsys, "replication", "check")


def test_topology_that_is_not_utf8(capsys, monkeypatch, tmp_path):
    topology = tmp_path / "topology.yaml"
    topology.write_bytes("environment: pr\u00e9-production\n".encode("latin-1"))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(topology))
    assert "not UTF-8" in run(capsys, "restore", "--from", "latest", "--target", GOOD_URI, "--database", "x")


def test_topology_yaml_error_is_one_line(capsys, monkeypatch, tmp_path):
    topology = tmp_path / "topology.yaml"
    topology.write_text("environment: [unclosed\n")
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(topology))
    assert "not valid YAML" in run(capsys, "replication", "check")


# 3. Counts and sizes that must be positive: refused by drctl and by the library.

@pytest.mark.parametrize("argv", [
    ("restore", "--from", "latest", "--target", GOOD_URI, "--database", "x", "--jobs", "0"),
    ("restore", "--from", "latest", "--target", GOOD_URI, "--database", "x", "--jobs", "-3"),
    (*backup_from(GOOD_URI), "--block-size", "0"),
    (*backup_from(GOOD_URI), "--upload-buffer-mb", "0"),
    (*backup_from(GOOD_URI), "--upload-buffer-mb", "many"),
])
def test_non_positive_counts_are_refused_by_drctl(capsys, argv):
    line = run(capsys, *argv)
    assert argv[-2] in line


@pytest.mark.parametrize("field", ["block_size", "max_inflight_bytes", "upload_concurrency", "tier_blocks"])
def test_backup_request_refuses_non_positive_sizes(field):
    with pytest.raises(InputError, match=field):
        BackupRequest(Endpoint("mysql"), "petclinic", StorageUrl.parse("wasb://dr-backups/mysql"),
                      datetime(2026, 11, 22, 3, tzinfo=UTC), **{field: 0})


def test_restore_request_refuses_zero_jobs():
    with pytest.raises(InputError, match="jobs"):
        RestoreRequest(Endpoint("mysql"), "petclinic", jobs=0)


# 4. Backups go to Azure Blob only.

def test_backup_to_s3_is_bad_input(capsys):
    line = run(capsys, *backup_from(GOOD_URI, to="s3://bucket/x"))
    assert "wasb://" in line


# Point-in-time recovery's own bad input.

@pytest.mark.parametrize("argv, says", [
    (("restore", "--from", "latest", "--target", GOOD_URI, "--database", "petclinic", "--at", "wasb://dr-backups/m",
      "--until", "yesterday"), "is not a time"),
    (("restore", "--from", "latest", "--target", GOOD_URI, "--database", "petclinic", "--at", "wasb://dr-backups/m",
      "--until", "2026-12-01T10:00:00"), "no time zone"),
    (("binlogs", "archive", "--source", "no_such_conn", "--to", "wasb://dr-backups/m", "--database", "petclinic",
      "--once"), "no_such_conn"),
    (("binlogs", "archive", "--source", GOOD_URI.rsplit("/", 1)[0], "--to", "wasb://dr-backups/m", "--once"),
     "pass --database"),
])
def test_point_in_time_bad_input_is_one_line(capsys, argv, says):
    assert says in run(capsys, *argv)
