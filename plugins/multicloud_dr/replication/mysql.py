"""MySQL/MariaDB replica health: the replica's own view (IO and SQL threads, Seconds_Behind_Master)
and the lag measured from replicated data (a heartbeat row written on the primary by this check and
timed until the replica has applied it).

A heartbeat written by the check itself means an idle primary never reads as lag, and timing its
arrival with this process's monotonic clock means clock skew between servers does not either (F25).
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any

import pymysql

from multicloud_dr.backup.source import connect
from multicloud_dr.connections import Endpoint
from multicloud_dr.replication.heartbeat import wait_for_heartbeat
from multicloud_dr.replication.result import BREACH, CheckResult, judge
from multicloud_dr.sql import query, statements

SQL = "heartbeat_mysql.sql"
CONNECT_TIMEOUT = 3


def _cursor(conn: pymysql.connections.Connection):
    return conn.cursor(pymysql.cursors.DictCursor)


def replica_status(conn: pymysql.connections.Connection) -> dict[str, Any] | None:
    """SHOW REPLICA STATUS (MariaDB 10.5+, MySQL 8.0.22+) or SHOW SLAVE STATUS, with MySQL's new
    column names mapped to the classic ones."""
    with _cursor(conn) as cur:
        try:
            cur.execute("SHOW REPLICA STATUS")
        except pymysql.err.ProgrammingError:
            cur.execute("SHOW SLAVE STATUS")
        row = cur.fetchone()
    if row is None:
        return None
    renamed = {k.replace("Replica_", "Slave_").replace("Source", "Master"): v for k, v in row.items()}
    return {**row, **renamed}


def write_heartbeat(conn: pymysql.connections.Connection) -> tuple[int, int, datetime]:
    """(server_id, seq, written_at) of a heartbeat just committed on the primary."""
    with conn.cursor() as cur:
        try:
            cur.execute(query(SQL, "write_heartbeat"))
        except pymysql.err.ProgrammingError as err:
            if err.args[0] not in (1146, 1049):   # table or database missing: create once
                raise
            for statement in statements(SQL, "create_heartbeat"):
                cur.execute(statement)
            cur.execute(query(SQL, "write_heartbeat"))
        cur.execute(query(SQL, "read_own_heartbeat"))
        server_id, seq, written_at, _ = cur.fetchone()
    return server_id, seq, written_at


def read_heartbeat(conn: pymysql.connections.Connection, server_id: int) -> tuple[int, datetime] | None:
    with conn.cursor() as cur:
        try:
            cur.execute(query(SQL, "read_heartbeat"), {"server_id": server_id})
        except pymysql.err.ProgrammingError as err:
            if err.args[0] in (1146, 1049):   # the table has not reached the replica yet
                return None
            raise
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def primary_now(conn: pymysql.connections.Connection) -> datetime:
    with conn.cursor() as cur:
        cur.execute(query(SQL, "primary_now"))
        return cur.fetchone()[0]


def check_mysql_replica(name: str, primary: Endpoint, replica: Endpoint, threshold: float) -> CheckResult:
    """ok when both replication threads run and the heartbeat reaches the replica within `threshold`.

    Seconds_Behind_Master NULL (a stopped thread) is a breach, never zero. When the heartbeat does not
    arrive, the value is the replica's own estimate or the time waited, whichever is larger; when the
    SQL thread is stopped, it is the age of the newest heartbeat the replica has (by the primary's
    clock): an upper bound of what a failover to it now would lose.
    """
    with contextlib.closing(connect(primary, connect_timeout=CONNECT_TIMEOUT)) as pconn, \
            contextlib.closing(connect(replica, connect_timeout=CONNECT_TIMEOUT)) as rconn:
        status = replica_status(rconn)
        if status is None:
            return CheckResult(name, BREACH, None, threshold,
                               f"{replica.describe()} is not replicating (SHOW REPLICA STATUS is empty)")
        io, sql = status.get("Slave_IO_Running"), status.get("Slave_SQL_Running")
        sbm = status.get("Seconds_Behind_Master")
        facts = {"io_running": io, "sql_running": sql, "seconds_behind_master": sbm,
                 "master": f"{status.get('Master_Host')}:{status.get('Master_Port')}",
                 "gtid_io_pos": status.get("Gtid_IO_Pos") or status.get("Retrieved_Gtid_Set")}
        server_id, seq, _ = write_heartbeat(pconn)
        written = time.monotonic()
        threads = f"io={io} sql={sql}"
        if sql != "Yes" or io != "Yes":
            # Nothing new will arrive: no point waiting. What the replica has is as old as its newest heartbeat.
            thread, error = (("SQL", status.get("Last_SQL_Error")) if sql != "Yes"
                             else ("IO", status.get("Last_IO_Error")))
            seen = read_heartbeat(rconn, server_id)
            age = (primary_now(pconn) - seen[1]).total_seconds() if seen else None
            detail = (f"replica {thread} thread not running ({threads}; {error or 'stopped by hand'}); "
                      f"Seconds_Behind_Master is {'NULL' if sbm is None else sbm}; "
                      + (f"the newest replicated heartbeat is {age:.1f} s old" if age is not None
                         else "no replicated heartbeat yet"))
            return CheckResult(name, BREACH, None if age is None else round(age, 3), threshold, detail,
                               facts=facts)
        arrived, waited = wait_for_heartbeat(lambda: read_heartbeat(rconn, server_id), seq, written, threshold)
        facts |= {"heartbeat_seq": seq, "heartbeat_arrived": arrived, "heartbeat_seconds": round(waited, 3)}
        value = max(waited, float(sbm or 0))
        if arrived:
            detail = f"{threads}, Seconds_Behind_Master={sbm}, heartbeat {seq} applied after {waited:.3f} s"
        else:
            detail = (f"{threads}, Seconds_Behind_Master={sbm}; heartbeat {seq} not applied after "
                      f"{waited:.1f} s: the replica is at least that far behind")
        return judge(name, value, threshold, detail, facts=facts)
