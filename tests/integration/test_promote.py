"""Promoting the DR replica on the lab's real servers: the MariaDB replica (planned: caught up with the fenced
primary first) and the PostgreSQL streaming standby. Each test puts the lab back as it was: the replica
replicating again from the primary, the standby rebuilt from a fresh base backup."""

from __future__ import annotations

import contextlib

from multicloud_dr.backup import source
from multicloud_dr.connections import get_endpoint
from multicloud_dr.failover.promote import promote_mysql, promote_postgres

from .conftest import postgres_takes_writes


def mysql_facts(conn_id: str) -> tuple[dict | None, int]:
    import pymysql

    with contextlib.closing(source.connect(get_endpoint(conn_id))) as conn, \
            conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        status = cur.fetchone()
        cur.execute("SELECT @@global.read_only AS ro")
        return status, cur.fetchone()["ro"]


def test_planned_promotion_waits_for_the_primary_then_makes_the_replica_writable(replica_put_back):
    with contextlib.closing(source.connect(get_endpoint("mysql_primary"), "petclinic")) as primary, \
            primary.cursor() as cur:
        cur.execute("UPDATE owners SET city = city WHERE id = 1")     # a write the replica must have applied
        cur.execute("SELECT @@global.gtid_binlog_pos")
        (written,) = cur.fetchone()
    result = promote_mysql("mysql_replica", primary="mysql_primary", timeout=30)
    assert not result.already_promoted and result.source_position == written
    assert result.applied_position == written                       # nothing the primary wrote is missing
    status, read_only = mysql_facts("mysql_replica")
    assert status is None and read_only == 0                        # no longer a replica, and writable
    with contextlib.closing(source.connect(get_endpoint("mysql_replica"), "petclinic")) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")                   # a write that leaves no GTID behind
        cur.execute("CREATE TEMPORARY TABLE promoted_probe (x INT)")
        cur.execute("INSERT INTO promoted_probe VALUES (1)")
    again = promote_mysql("mysql_replica", primary="mysql_primary")
    assert again.already_promoted and again.actions == []           # a second run changes nothing


def test_emergency_promotion_applies_what_the_replica_received_without_the_primary(lab, replica_put_back):
    """The primary gone: its IO thread stopped, the replica applies its relay log, then takes writes. The
    RPO is what the primary wrote after the replica's IO position (nothing here: the replica was caught up)."""
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE")          # both threads: as after a crash, the SQL thread must be started again
    status, _ = mysql_facts("mysql_replica")
    received = status["Gtid_IO_Pos"]
    result = promote_mysql("mysql_replica", timeout=30)
    assert result.waited_for == received and result.applied_position == received
    assert "start SQL thread to apply the relay log" in result.actions
    assert mysql_facts("mysql_replica") == (None, 0)


def test_postgres_standby_promotion_ends_recovery(lab, standby_rebuilt):
    result = promote_postgres("postgres_standby", timeout=60)
    assert not result.already_promoted and result.actions
    assert postgres_takes_writes("postgres_standby")              # out of recovery, and it takes writes
    assert promote_postgres("postgres_standby").already_promoted
