"""Table consistency, primary against replica: chunked checksums over primary-key ranges.

The approach of pt-table-checksum, read-only: each configured table is cut into chunks of about
`chunk_rows` rows by its first primary-key column (bounds read on the primary); each chunk's row
count and BIT_XOR of per-row CRC-32s are compared. Replication is asynchronous, so a chunk written
moments ago may differ only because it is still in flight: a differing chunk is re-read after the
replica has applied everything the primary had at that moment (MASTER_GTID_WAIT), and reported only
if it still differs after `rechecks` rounds. A report names the table and the key range.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import pymysql

from multicloud_dr.backup.source import connect
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import InputError
from multicloud_dr.replication.result import BREACH, ERROR, OK, CheckResult
from multicloud_dr.sql import query, quote_identifier

SQL = "checksum_mysql.sql"
CONNECT_TIMEOUT = 3
GTID_WAIT_SECONDS = 5


@dataclass(frozen=True)
class Chunk:
    table: str
    key: str
    lower: Any | None    # inclusive; None: unbounded
    upper: Any | None    # exclusive; None: unbounded

    def where(self) -> tuple[str, list]:
        key = quote_identifier(self.key)
        parts, args = [], []
        if self.lower is not None:
            parts.append(f"{key} >= %s")
            args.append(self.lower)
        if self.upper is not None:
            parts.append(f"{key} < %s")
            args.append(self.upper)
        return (" AND ".join(parts) or "1=1"), args

    def describe(self) -> str:
        low = "-inf" if self.lower is None else repr(self.lower)
        high = "+inf" if self.upper is None else repr(self.upper)
        return f"{self.table} {self.key} in [{low}, {high})"


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: list[str]
    key: str | None      # first primary-key column; None: no primary key (one whole-table chunk)


def table_shape(cur, database: str, table: str) -> TableShape:
    cur.execute(query(SQL, "table_columns"), {"database": database, "table": table})
    rows = cur.fetchall()
    if not rows:
        raise InputError(f"table {database}.{table} does not exist on the primary: fix consistency_tables in the "
                         f"topology")
    columns = [r[0] for r in rows]
    key = rows[0][0] if rows[0][1] else None
    return TableShape(table, columns, key)


def chunks_of(cur, database: str, shape: TableShape, chunk_rows: int) -> list[Chunk]:
    if shape.key is None:
        return [Chunk(shape.name, "", None, None)]
    table = f"{quote_identifier(database)}.{quote_identifier(shape.name)}"
    cur.execute(query(SQL, "chunk_boundaries").format(key=quote_identifier(shape.key), table=table),
                {"chunk_rows": chunk_rows})
    bounds = list(dict.fromkeys(r[0] for r in cur.fetchall()))   # a composite key repeats its first column
    if not bounds:
        return [Chunk(shape.name, shape.key, None, None)]
    # The first chunk is open below and the last open above, so rows outside the primary's range count too.
    edges = [None, *bounds[1:], None]
    return [Chunk(shape.name, shape.key, low, high) for low, high in itertools.pairwise(edges)]


def checksum(cur, database: str, shape: TableShape, chunk: Chunk) -> tuple[int, str]:
    columns = ", ".join(quote_identifier(c) for c in shape.columns)
    nulls = "CONCAT(" + ", ".join(f"ISNULL({quote_identifier(c)})" for c in shape.columns) + ")"
    where, args = chunk.where()
    sql = query(SQL, "chunk_checksum").format(columns=columns, nulls=nulls, where=where,
                                              table=f"{quote_identifier(database)}.{quote_identifier(shape.name)}")
    cur.execute(sql, args)
    count, crc = cur.fetchone()
    return int(count), str(crc)


def _flavor(cur) -> str:
    cur.execute("SELECT VERSION()")
    return "mariadb" if "mariadb" in cur.fetchone()[0].lower() else "mysql"


def catch_up(pcur, rcur, flavor: str) -> bool:
    """Wait until the replica has applied everything the primary has now; False on timeout."""
    suffix = "" if flavor == "mariadb" else "_mysql"
    pcur.execute(query(SQL, "gtid_position" + suffix))
    (gtid,) = pcur.fetchone()
    if not gtid:
        return True
    rcur.execute(query(SQL, "wait_for_gtid" + suffix), {"gtid": gtid, "timeout": GTID_WAIT_SECONDS})
    (result,) = rcur.fetchone()
    return result == 0


def check_consistency(name: str, primary: Endpoint, replica: Endpoint, database: str, tables: list[str],
                      chunk_rows: int = 10_000, rechecks: int = 3) -> CheckResult:
    """value = the number of chunks that still differ after the rechecks (threshold 0)."""
    if not tables:
        return CheckResult(name, OK, 0, 0, "no tables configured (consistency_tables)", unit="chunks")
    with contextlib.closing(connect(primary, connect_timeout=CONNECT_TIMEOUT)) as pconn, \
            contextlib.closing(connect(replica, connect_timeout=CONNECT_TIMEOUT)) as rconn, \
            pconn.cursor() as pcur, rconn.cursor() as rcur:
        flavor = _flavor(pcur)
        compared = 0
        rows = 0
        suspects: list[tuple[TableShape, Chunk, tuple, tuple]] = []
        for table in tables:
            shape = table_shape(pcur, database, table)
            for chunk in chunks_of(pcur, database, shape, chunk_rows):
                ours, theirs = _compare(pcur, rcur, database, shape, chunk)
                compared += 1
                rows += ours[0]
                if ours != theirs:
                    suspects.append((shape, chunk, ours, theirs))
        in_flight = len(suspects)
        caught_up = True
        for _ in range(rechecks):
            if not suspects:
                break
            caught_up = catch_up(pcur, rcur, flavor)
            if not caught_up:   # the replica is behind: its lag check says so; the data cannot be judged now
                break
            still = []
            for shape, chunk, _ours, _theirs in suspects:
                ours, theirs = _compare(pcur, rcur, database, shape, chunk)
                if ours != theirs:
                    still.append((shape, chunk, ours, theirs))
            suspects = still
    differing = [{"chunk": chunk.describe(), "primary_rows": ours[0], "replica_rows": theirs[0],
                  "primary_checksum": ours[1], "replica_checksum": theirs[1]}
                 for _shape, chunk, ours, theirs in suspects]
    facts = {"chunks": compared, "rows": rows, "tables": len(tables), "rechecked": in_flight,
             "differing": differing}
    if differing and not caught_up:
        return CheckResult(name, ERROR, None, 0,
                           f"{database}: {len(differing)} chunk(s) differ (first: {differing[0]['chunk']}) but the "
                           f"replica did not catch up with the primary within {GTID_WAIT_SECONDS} s, so they may "
                           f"still be in flight: see the replica's lag; re-checked next run", unit="chunks",
                           facts=facts)
    if differing:
        first = differing[0]
        more = f" (and {len(differing) - 1} more chunks)" if len(differing) > 1 else ""
        detail = (f"{database}: {first['chunk']} differs on the replica: {first['replica_rows']} rows, checksum "
                  f"{first['replica_checksum']} vs {first['primary_rows']} rows, {first['primary_checksum']} on "
                  f"the primary{more}; changed behind replication's back: re-sync those rows or rebuild the replica")
        return CheckResult(name, BREACH, len(differing), 0, detail, unit="chunks", facts=facts)
    recheck = f"; {in_flight} chunk(s) in flight re-checked" if in_flight else ""
    return CheckResult(name, OK, 0, 0, f"{database}: {compared} chunks of {len(tables)} tables ({rows:,} rows) "
                       f"equal on the replica{recheck}", unit="chunks", facts=facts)


def _compare(pcur, rcur, database: str, shape: TableShape, chunk: Chunk) -> tuple[tuple, tuple]:
    try:
        theirs = checksum(rcur, database, shape, chunk)
    except pymysql.err.ProgrammingError as err:
        if err.args[0] in (1146, 1049):
            theirs = (0, "missing")
        else:
            raise
    return checksum(pcur, database, shape, chunk), theirs
