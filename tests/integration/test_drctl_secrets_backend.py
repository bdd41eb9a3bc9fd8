"""drctl reading connections from AWS Secrets Manager (the lab's moto) through Airflow's
`SecretsManagerBackend`, configured only by AIRFLOW__SECRETS__BACKEND(_KWARGS), with no AIRFLOW_CONN_*
variable for the ids it resolves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from multicloud_dr.connections import get_endpoint

DRCTL = str(Path(sys.executable).with_name("drctl"))
BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
PREFIX = "airflow/connections"  # the backend's default connections_prefix


@pytest.fixture(scope="module")
def aws(lab) -> dict:
    """The client settings of the lab's moto, from the aws_primary connection."""
    ep = get_endpoint("aws_primary")
    return {"endpoint_url": ep.extra["endpoint_url"], "region_name": ep.extra.get("region_name", "us-east-1"),
            "aws_access_key_id": ep.login, "aws_secret_access_key": ep.password}


@pytest.fixture
def secrets(aws):
    """Store connections in moto's Secrets Manager under unique ids; deleted afterwards."""
    client = boto3.client("secretsmanager", **aws)
    stored: list[str] = []

    def store(value: str) -> str:
        conn_id = f"sm_test_{uuid.uuid4().hex[:10]}"
        client.create_secret(Name=f"{PREFIX}/{conn_id}", SecretString=value)
        stored.append(conn_id)
        return conn_id

    yield store
    for conn_id in stored:
        client.delete_secret(SecretId=f"{PREFIX}/{conn_id}", ForceDeleteWithoutRecovery=True)


def drctl(*args: str, kwargs: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW__SECRETS__BACKEND": BACKEND, "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(kwargs)}
    return subprocess.run([DRCTL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("drctl: error:")]
    assert len(errors) == 1 and run.stdout == "", run.stderr
    return errors[0]


def test_backup_and_listing_use_connections_kept_only_in_secrets_manager(aws, secrets, small_db, backup_root):
    source = secrets(os.environ["AIRFLOW_CONN_MYSQL_PRIMARY"])     # URI form
    storage = secrets(os.environ["AIRFLOW_CONN_AZURE_BLOB_DR"])    # JSON form
    assert not {f"AIRFLOW_CONN_{i.upper()}" for i in (source, storage)} & set(os.environ)
    database = small_db[0]

    backup = drctl("backup", "--source", source, "--database", database, "--to", str(backup_root),
                   "--storage-conn", storage, kwargs=aws)
    assert backup.returncode == 0, backup.stderr
    result = json.loads(backup.stdout)   # nothing but drctl's JSON on stdout (Airflow's logs go to stderr)
    assert result["database"] == database and result["rows"] > 0

    listing = drctl("backups", "list", "--at", str(backup_root), "--json", "--storage-conn", storage, kwargs=aws)
    assert listing.returncode == 0, listing.stderr
    assert [(r["manifest"], r["database"], r["rows"]) for r in json.loads(listing.stdout)] == [
        (result["manifest"], database, result["rows"])]


def test_an_id_in_no_variable_and_no_secret_exits_2_with_one_line_naming_it(aws, backup_root):
    conn_id = f"sm_missing_{uuid.uuid4().hex[:10]}"
    run = drctl("backups", "list", "--at", str(backup_root), "--storage-conn", conn_id, kwargs=aws)
    assert conn_id in assert_one_error_line(run)


def test_an_unreachable_backend_exits_2_with_one_line_and_no_secret(aws, backup_root):
    secret = f"not-a-real-key-{uuid.uuid4().hex}"
    unreachable = {**aws, "endpoint_url": "http://127.0.0.1:9", "aws_secret_access_key": secret}
    run = drctl("backups", "list", "--at", str(backup_root), "--storage-conn", "sm_anything", kwargs=unreachable)
    line = assert_one_error_line(run)
    assert "sm_anything" in line and "SecretsManagerBackend" in line
    assert secret not in run.stderr + run.stdout


def test_an_unknown_backend_class_exits_2_with_one_line(lab, backup_root):
    env = {**os.environ, "AIRFLOW__SECRETS__BACKEND": "no_such_package.secrets.Backend"}
    run = subprocess.run([DRCTL, "backups", "list", "--at", str(backup_root), "--storage-conn", "sm_anything"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "no_such_package.secrets.Backend" in assert_one_error_line(run)
