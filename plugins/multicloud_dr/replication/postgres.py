"""PostgreSQL streaming standby health.

On the primary, `pg_stat_replication`: the standby is connected and streaming, with its write,
flush and replay lag. On the standby: replay not paused, and the lag measured from replicated data.
`now() - pg_last_xact_replay_timestamp()` grows without bound while the primary is idle, so it is
reported but not judged; the judged lag is how long a heartbeat row written by this check takes to
be replayed on the standby (timed with this process's monotonic clock: no clock skew, F25).
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

import psycopg2

from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.exceptions import InputError
from multicloud_dr.replication.heartbeat import wait_for_heartbeat
from multicloud_dr.replication.result import BREACH, CheckResult, judge
from multicloud_dr.sql import query, statements

SQL = "heartbeat_postgres.sql"
CONNECT_TIMEOUT = 3


class PostgresUnreachableError(InputError):
    retry_may_help = True


def connect(endpoint: Endpoint, database: str):
    try:
        conn = PostgresConnection(endpoint).connect(dbname=database, connect_timeout=CONNECT_TIMEOUT,
                                                    application_name="multicloud-dr replication check")
    except psycopg2.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "no answer"
        if "does not exist" in first:
            raise InputError(f"database {database!r} does not exist on {endpoint.describe()}: check the "
                             f"topology's database name") from None
        raise PostgresUnreachableError(f"cannot reach PostgreSQL at {endpoint.describe()}: {first}") from None
    conn.autocommit = True
    return conn


def write_heartbeat(conn) -> tuple[int, datetime]:
    with conn.cursor() as cur:
        try:
            cur.execute(query(SQL, "write_heartbeat"))
        except psycopg2.errors.UndefinedTable:
            for statement in statements(SQL, "create_heartbeat"):
                cur.execute(statement)
            cur.execute(query(SQL, "write_heartbeat"))
        return cur.fetchone()


def read_heartbeat(conn) -> tuple[int, datetime] | None:
    with conn.cursor() as cur:
        try:
            cur.execute(query(SQL, "read_heartbeat"))
        except psycopg2.errors.UndefinedTable:
            return None
        return cur.fetchone()


def check_postgres_standby(name: str, primary: Endpoint, standby: Endpoint, database: str,
                           threshold: float) -> CheckResult:
    with contextlib.closing(connect(primary, database)) as pconn, \
            contextlib.closing(connect(standby, database)) as sconn:
        with pconn.cursor() as cur:
            cur.execute(query(SQL, "primary_replication"))
            senders = cur.fetchall()
        with sconn.cursor() as cur:
            cur.execute(query(SQL, "standby_state"))
            in_recovery, pause_state, replay_age, receiver = cur.fetchone()
        streams = [{"application_name": s[0], "client_addr": s[1], "state": s[2], "sync_state": s[3],
                    "write_lag": s[4], "flush_lag": s[5], "replay_lag": s[6], "replay_lsn_behind_bytes": s[7]}
                   for s in senders]
        facts = {"senders": streams, "pause_state": pause_state, "wal_receiver": receiver,
                 "last_replay_age_seconds": replay_age}
        if not in_recovery:
            return CheckResult(name, BREACH, None, threshold,
                               f"{standby.describe()} is not a standby (pg_is_in_recovery() is false): it was "
                               f"promoted or is a different server", facts=facts)
        seq, _ = write_heartbeat(pconn)
        written = time.monotonic()
        streaming = [s for s in streams if s["state"] == "streaming"]
        if pause_state != "not paused" or not streaming or receiver != "streaming":
            seen = read_heartbeat(sconn)
            with pconn.cursor() as cur:
                cur.execute(query(SQL, "primary_now"))
                now = cur.fetchone()[0]
            age = (now - seen[1]).total_seconds() if seen else None
            if pause_state != "not paused":
                cause = f"replay is paused on the standby (pg_get_wal_replay_pause_state() = {pause_state!r})"
            elif not streaming:
                states = ", ".join(f"{s['application_name']}={s['state']}" for s in streams) or "none"
                cause = f"no standby is streaming from the primary (pg_stat_replication: {states})"
            else:
                cause = f"the standby's WAL receiver is {receiver or 'not running'}"
            detail = cause + (f"; the newest replayed heartbeat is {age:.1f} s old" if age is not None
                              else "; no replayed heartbeat yet")
            return CheckResult(name, BREACH, None if age is None else round(age, 3), threshold, detail,
                               facts=facts)
        arrived, waited = wait_for_heartbeat(lambda: read_heartbeat(sconn), seq, written, threshold)
        facts |= {"heartbeat_seq": seq, "heartbeat_arrived": arrived, "heartbeat_seconds": round(waited, 3)}
        lags = ", ".join(f"{s['application_name']} write/flush/replay "
                         + "/".join("-" if s[k] is None else f"{s[k]:.3f}" for k in ("write_lag", "flush_lag",
                                                                                   "replay_lag")) + " s"
                         for s in streaming)
        idle = "" if replay_age is None else f"; last replayed transaction {replay_age:.0f} s ago"
        if arrived:
            detail = f"streaming ({lags}); heartbeat {seq} replayed after {waited:.3f} s{idle}"
        else:
            detail = (f"streaming ({lags}); heartbeat {seq} not replayed after {waited:.1f} s: the standby is at "
                      f"least that far behind")
        return judge(name, waited, threshold, detail, facts=facts)
