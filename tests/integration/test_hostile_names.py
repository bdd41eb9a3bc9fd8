"""F26: hostile identifiers, on the lab's real MariaDB and Azurite.

F26 means: a table named like an option of the dump tool (`--result-file=/x`, `-r/x`), or holding
backticks, quotes, a newline or non-ASCII letters, is a name to every tool. The backup, its
verification and the restore round-trip its rows equal, the manifest lists it, and no option takes
effect (mysqldump permutes argv, so without `--` such a name makes it write its output to a file).
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.mysql_restore import RestoreRequest, run_restore, scratch_name

from .conftest import mysql_connect


def _connect(endpoint, database=None):
    return mysql_connect(endpoint, database)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _rows(endpoint, database: str) -> dict[str, list[tuple]]:
    """Every base table's rows, sorted (a set per table, duplicates kept)."""
    with contextlib.closing(_connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s AND "
                    "table_type='BASE TABLE'", (database,))
        tables = [r[0] for r in cur.fetchall()]
        state = {}
        for table in tables:
            cur.execute(f"SELECT * FROM {_q(table)}")
            state[table] = sorted(cur.fetchall(), key=repr)
    return state


def _drop(endpoint, *names: str) -> None:
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS {_q(name)}")


@pytest.fixture
def traps():
    """Two files an option-shaped table name would make the dump tool write; removed if it did."""
    token = uuid.uuid4().hex[:10]
    paths = [Path(tempfile.gettempdir(), f"f26-result-{token}"), Path(tempfile.gettempdir(), f"f26-r-{token}")]
    yield paths
    for path in paths:
        path.unlink(missing_ok=True)


@pytest.fixture
def hostile_db(lab):
    """Factory: a scratch database on the primary with these tables, a few rows each; dropped afterwards."""
    primary = get_endpoint("mysql_primary")
    made = []

    def make(tables: list[str]) -> str:
        name = f"t_hostile_{uuid.uuid4().hex[:6]}"
        made.append(name)
        with contextlib.closing(_connect(primary)) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {_q(name)} CHARACTER SET utf8mb4")
            for i, table in enumerate(tables):
                cur.execute(f"CREATE TABLE {_q(name)}.{_q(table)} (id INT PRIMARY KEY, label VARCHAR(64)) "
                            f"ENGINE=InnoDB")
                cur.executemany(f"INSERT INTO {_q(name)}.{_q(table)} VALUES (%s, %s)",
                                [(n, f"{table} row {n}") for n in range(1, 4 + i)])
        return name

    yield make
    _drop(primary, *made)


@pytest.fixture
def dr_target():
    dr = get_endpoint("mysql_dr")
    name = f"t_hostile_restored_{uuid.uuid4().hex[:6]}"
    yield dr, name
    _drop(dr, name, scratch_name(name, "restore"), scratch_name(name, "old"))


def _round_trip(tables, hostile_db, dr_target, traps, backup_root, blob_service, store, tmp_path, monkeypatch):
    """Back up, verify and restore a database with these tables: equal rows, every table in the
    manifest, no file written (in /tmp where the option-shaped names point, or in the cwd)."""
    monkeypatch.chdir(tmp_path)  # an option taking effect could also write a file relative to the cwd
    source_db = hostile_db(tables)
    primary = get_endpoint("mysql_primary")
    dr, target = dr_target

    backup = run_backup(BackupRequest(primary, source_db, backup_root, datetime(2026, 11, 26, 3, tzinfo=UTC)),
                        blob_service)
    assert sorted(backup.manifest.tables) == sorted(tables), "the manifest does not list every table by its name"
    assert verify_backup(store, backup.manifest_url).status == "verified"
    record = store.read_manifest(backup.manifest_url)
    result = run_restore(RestoreRequest(dr, target, jobs=3), store, record)
    assert result.verified and result.rows == record.manifest.total_rows

    source, restored = _rows(primary, source_db), _rows(dr, target)
    assert sorted(restored) == sorted(tables)
    for table in tables:
        assert source[table], f"{table!r}: no rows in the source: the test does not test that"
        assert restored[table] == source[table], f"{table!r}: rows differ after the round trip"
    assert not [p for p in traps if p.exists()], "an option-shaped table name made a tool write a file"
    assert not list(tmp_path.iterdir()), "a tool wrote a file in the working directory"


def test_f26_option_shaped_quoted_and_unicode_table_names_round_trip(hostile_db, dr_target, traps, backup_root,
                                                                     blob_service, store, tmp_path, monkeypatch):
    tables = [f"--result-file={traps[0]}", f"-r{traps[1]}", "back`tick", "it's \"quoted\"", "café_ü_日本"]
    _round_trip(tables, hostile_db, dr_target, traps, backup_root, blob_service, store, tmp_path, monkeypatch)


def test_f26_table_name_with_a_newline_round_trips(hostile_db, dr_target, traps, backup_root, blob_service, store,
                                                    tmp_path, monkeypatch):
    tables = [f"-r{traps[1]}", "new\nline", "x\n-- Dump completed"]
    _round_trip(tables, hostile_db, dr_target, traps, backup_root, blob_service, store, tmp_path, monkeypatch)
