"""drctl against the lab's real MariaDB DR server, with an account that lacks a privilege: the server's
refusal is one line naming its code and what to grant, exit 2, no traceback, nothing written."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.mysql_restore import scratch_name

from .conftest import mysql_connect

DRCTL = str(Path(sys.executable).with_name("drctl"))
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) ")


def _lab_tls() -> str:
    """The TLS extras of the lab's connections (its CA, verified), as a URI query."""
    return urlsplit(os.environ["LAB_MYSQL_DR_URI"]).query


def _connect(endpoint):
    return mysql_connect(endpoint)


@pytest.fixture
def dr(lab):
    return get_endpoint("mysql_dr")


@pytest.fixture
def account_without_create(dr):
    """(user, password) of an account on the DR server with no privilege beyond USAGE; dropped afterwards."""
    user, password = f"t_nocreate_{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
    yield user, password
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))


def test_restore_with_an_account_lacking_create_is_one_line_exit_2(dr, account_without_create,
                                                                    verified_petclinic_backup):
    _, record, _ = verified_petclinic_backup("test-cli-bad-input", datetime(2026, 11, 19, 3, 0, tzinfo=UTC))
    user, password = account_without_create
    target = f"t_denied_{uuid.uuid4().hex[:6]}"
    done = subprocess.run([DRCTL, "restore", "--from", str(record.url), "--database", target,
                           "--target", f"mysql://{user}:{password}@127.0.0.1:{dr.port}?{_lab_tls()}"],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy(), check=False)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and password not in done.stderr and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("drctl: error: ")]
    assert len(errors) == 1 and done.stderr.splitlines()[-1] == errors[0], done.stderr
    # Anything else on stderr is drctl's progress log, one record a line.
    assert all(LOG_RECORD.match(line) for line in done.stderr.splitlines()[:-1]), done.stderr
    assert "MySQL error 1044" in errors[0] and user in errors[0] and "--target" in errors[0], errors[0]

    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        databases = {row[0] for row in cur.fetchall()}
    assert not databases & {target, scratch_name(target, "restore"), scratch_name(target, "old")}
