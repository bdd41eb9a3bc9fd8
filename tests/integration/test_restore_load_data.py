"""Rows restored with LOAD DATA LOCAL instead of the dump's INSERTs, on the lab's real MariaDB servers:
awkward values come back exactly, a server that refuses LOAD DATA LOCAL still gets an exact restore (by
INSERT), the server is sent only the rows it was offered, and a load that raises a warning fails."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

import pytest

from multicloud_dr.backup import source
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.load_data import LoadDataError, LoadPlan, RowsConnection, load_rows, plan_for
from multicloud_dr.restore.mysql_restore import RestoreRequest, run_restore, scratch_name

from .conftest import mysql_connect

# Values that a careless conversion of the dump's rows to LOAD DATA input would change: the dump's
# escapes, the row and field separators inside strings, the word NULL as a string, LOAD DATA's own \N.
AWKWARD = ["it's", 'say "hi"', "back\\slash", "ends with a backslash\\", "a),(b", "a),\n(b", "NULL", "\\N", "N",
           "tab\there", "cr\rlf\n", "nul\x00byte", "ctrl-z\x1a", "", " leading and trailing ", "comma, and (paren)",
           "emoji \U0001f600 and \u00e9", "'", "\\'", "),", "(", "0x41", "--", "/* c */", ";", ";\n"]


def _connect(endpoint, database=None):
    return mysql_connect(endpoint, database)


def _drop(endpoint, *names) -> None:
    with contextlib.closing(_connect(endpoint)) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="module")
def awkward_db():
    """A database whose two tables (one keyed, one without a key) hold every awkward value."""
    primary = get_endpoint("mysql_primary")
    name = f"t_awkward_{uuid.uuid4().hex[:6]}"
    with contextlib.closing(_connect(primary)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute(f"USE `{name}`")
        cur.execute("CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(200) NULL, txt TEXT, price DECIMAL(12,4), "
                    "ratio DOUBLE, big BIGINT, day DATE, at DATETIME(6), doc JSON, kind ENUM('a','b'), "
                    "KEY idx_body (body(20)))")
        cur.execute("CREATE TABLE lines_without_key (line VARCHAR(100), n INT)")
        for i, value in enumerate(AWKWARD):
            cur.execute("INSERT INTO notes VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (i, value, value * 3, -i * 1.25, i / 3 if i else -1e-300, -(2 ** 63) + i, "2024-02-29",
                         "1999-12-31 23:59:59.999999", '{"v": %s}' % ("null" if i % 2 else i), "ab"[i % 2]))
        cur.execute("INSERT INTO notes (id, body) VALUES (1000, NULL)")   # NULL next to the string 'NULL'
        for i in range(2000):   # insertion order matters for a table without a key: it reads back in it
            cur.execute("INSERT INTO lines_without_key VALUES (%s, %s)", (AWKWARD[(i * 7) % len(AWKWARD)], 1999 - i))
    yield name
    _drop(primary, name)


@pytest.fixture
def awkward_backup(awkward_db, backup_root, blob_service, store):
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), awkward_db, backup_root,
                                      datetime(2026, 11, 9, 3, tzinfo=UTC)), blob_service)
    assert verify_backup(store, result.manifest_url).status == "verified"
    return store.read_manifest(result.manifest_url)


@pytest.fixture
def target():
    dr = get_endpoint("mysql_dr")
    name = f"t_loaded_{uuid.uuid4().hex[:6]}"
    yield dr, name
    _drop(dr, name, scratch_name(name, "restore"), scratch_name(name, "old"))


def _rows_in_stored_order(endpoint, database, table):
    with contextlib.closing(_connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM `{table}`")   # no ORDER BY: the order the table keeps them in
        return cur.fetchall()


def test_awkward_values_restore_exactly_through_load_data(awkward_db, awkward_backup, store, target, snapshot):
    dr, name = target
    result = run_restore(RestoreRequest(dr, name, jobs=2), store, awkward_backup)
    assert result.verified
    assert result.checks["load_data_tables"] == ["lines_without_key", "notes"], "the rows did not go by LOAD DATA"
    primary = get_endpoint("mysql_primary")
    assert snapshot(dr, name) == snapshot(primary, awkward_db)
    assert _rows_in_stored_order(dr, name, "lines_without_key") == _rows_in_stored_order(primary, awkward_db,
                                                                                          "lines_without_key")
    with contextlib.closing(_connect(dr, name)) as conn, conn.cursor() as cur:
        cur.execute("SELECT body IS NULL FROM notes WHERE id IN (%s, 1000) ORDER BY id", (AWKWARD.index("NULL"),))
        assert cur.fetchall() == ((0,), (1,)), "the string 'NULL' and a NULL must stay apart"


def test_a_server_that_refuses_load_data_local_gets_the_rows_by_insert(awkward_db, awkward_backup, store, target,
                                                                      snapshot, caplog):
    """Managed servers may run with local_infile=OFF (a server parameter on Azure MySQL Flexible Server):
    the restore notices the refusal on the first table and loads every table with its INSERTs."""
    caplog.set_level("WARNING", logger="multicloud_dr.restore.mysql_restore")
    dr, name = target
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL local_infile = 0")
        try:
            result = run_restore(RestoreRequest(dr, name, jobs=2), store, awkward_backup)
        finally:
            cur.execute("SET GLOBAL local_infile = 1")
    assert result.verified and result.checks["load_data_tables"] == []
    assert "refuses LOAD DATA LOCAL" in caplog.text, "LOAD DATA was never tried, so no refusal was handled"
    assert snapshot(dr, name) == snapshot(get_endpoint("mysql_primary"), awkward_db)


def test_load_data_can_be_turned_off(awkward_db, awkward_backup, store, target, snapshot):
    """`drctl restore --no-load-data`: every table by its INSERTs, equal to the source all the same."""
    dr, name = target
    result = run_restore(RestoreRequest(dr, name, jobs=2, load_data=False), store, awkward_backup)
    assert result.verified and result.checks["load_data_tables"] == []
    assert snapshot(dr, name) == snapshot(get_endpoint("mysql_primary"), awkward_db)


@pytest.fixture
def scratch_table(target):
    dr, name = target
    with contextlib.closing(_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY, code VARCHAR(3))")
    conn = source.connect(dr, name, factory=RowsConnection)   # the restore's own, with the endpoint's TLS
    yield conn, name
    conn.close()


def _count(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        return cur.fetchone()[0]


def test_the_server_is_sent_only_the_rows_it_was_offered(scratch_table):
    """A server asking for another file (as a hostile one could: pymysql alone would open and send any
    file it names) gets nothing, and the load fails."""
    conn, database = scratch_table
    insert = b"INSERT INTO `t` VALUES\n(1,'abc'),\n(2,'def')"
    plan = plan_for(conn, database, "t", insert)
    assert plan is not None
    hostile = LoadPlan(plan.table, plan.head, plan.statement.replace(plan.name, b"/etc/passwd"), plan.name)
    with pytest.raises(LoadDataError, match="did not offer"):
        load_rows(conn, insert, hostile)
    assert _count(conn) == 0
    assert load_rows(conn, insert, plan) == 2 and _count(conn) == 2   # the connection is still usable


def test_a_load_that_raises_a_warning_fails(scratch_table):
    """Without a strict sql_mode (the dump's own is not strict) a value too long is cut with a warning;
    the rows would not be the backup's, so the restore stops there."""
    conn, database = scratch_table
    conn.query("SET sql_mode = ''")
    insert = b"INSERT INTO `t` VALUES\n(1,'abcdef')"
    plan = plan_for(conn, database, "t", insert)
    with pytest.raises(LoadDataError, match=r"raised 1 warning\(s\).*1265"):
        load_rows(conn, insert, plan)


def test_tables_load_data_cannot_fill_keep_their_inserts(scratch_table):
    conn, database = scratch_table
    conn.query("CREATE TABLE b (id INT PRIMARY KEY, photo BLOB)")
    conn.query("CREATE TABLE g (id INT PRIMARY KEY, twice INT AS (id * 2) VIRTUAL)")
    assert plan_for(conn, database, "b", b"INSERT INTO `b` VALUES\n(1,0x00)") is None   # hex literals
    assert plan_for(conn, database, "g", b"INSERT INTO `g` VALUES\n(1,2)") is None      # a generated column
    assert plan_for(conn, database, "t", b"INSERT INTO `t` (`id`, `code`) VALUES (1,'a')") is None  # column list
