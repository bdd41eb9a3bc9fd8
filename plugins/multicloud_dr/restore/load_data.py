"""Rows of a dump's INSERT statement loaded with LOAD DATA LOCAL INFILE instead of the INSERT itself.

Why: most of the target server's time in a restore goes to parsing INSERT statements (the SQL
lexer and parser, an Item per value). LOAD DATA reads the same rows without the SQL parser. On the
restore benchmark's tables it took 30-35% less of the server's CPU for the same rows (audit_log:
14.0 s -> 9.3 s; invoices 7.9 -> 5.7; visits 5.2 -> 3.7), and the server's CPU sets a restore's time.

MariaDB's dump tool writes rows that LOAD DATA can read as they are, once the `INSERT INTO ... VALUES`
head is cut off and the last row is given the separator the others have:

    INSERT INTO `t` VALUES
    (1,'it\\'s',NULL,'2024-01-01 00:00:00'),
    (2,'a),(b',3.5,'2024-01-02 00:00:00');

    FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY '\\\\'
    LINES STARTING BY '(' TERMINATED BY '),'

- strings are quoted, with the escapes the dump writes (\\0 \\n \\r \\\\ \\' \\" \\Z), which LOAD DATA
  reads the same way; a row never holds a raw newline;
- NULL is the unquoted word NULL, which LOAD DATA reads as NULL when fields may be enclosed (a quoted
  'NULL' stays a string);
- numbers are unquoted.

Binary columns are written as 0x... hex literals (--hex-blob), which LOAD DATA would store as text:
tables with binary, BIT or spatial columns keep the INSERT statement (LOAD DATA with UNHEX() took 2.6
times the CPU of the INSERT for the benchmark's BLOB table: it reads a big field byte by byte). So do
tables with generated or invisible columns and INSERTs that name their columns. Whatever goes this
way is still re-read and compared with the manifest, row for row and checksum for checksum, and a
LOAD DATA that raises any warning fails the restore.

pymysql sends a LOCAL file by opening the name the server asks for (any file, if the server is not
the one we think). Connections made here instead send the rows of the statement at hand from memory,
and only when the server asks for the name this module gave it.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass

import pymysql
from pymysql.connections import Connection, MySQLResult
from pymysql.constants import CR
from pymysql.protocol import LoadLocalPacketWrapper

from multicloud_dr.exceptions import DrError
from multicloud_dr.sql import quote_identifier

# Columns whose values the dump writes as 0x... literals, and kinds of columns LOAD DATA cannot fill.
_HEX_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit", "geometry",
                        "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                        "geometrycollection"})
# The server or the client does not allow LOAD DATA LOCAL (local_infile=OFF, as it may be on a managed
# server): the restore goes on with INSERT statements.
LOCAL_INFILE_REFUSED = frozenset({1148, 3948, 4166, 2068})
# Bytes of rows per protocol packet: the dump's own INSERT statements are up to 1 MB (its
# net_buffer_length), so a server that takes those takes these.
PACKET = 1 << 20

_names = itertools.count()


class LoadDataError(DrError):
    """A LOAD DATA of restored rows did not load them exactly."""


@dataclass(frozen=True)
class LoadPlan:
    """How the rows of one table's INSERT statements are loaded with LOAD DATA."""

    table: str
    head: bytes       # the INSERT statement's head, up to and including VALUES
    statement: bytes  # LOAD DATA LOCAL INFILE '<name>' INTO TABLE ...
    name: bytes       # the file name the server will ask for


class RowsConnection(Connection):
    """A pymysql connection that answers LOAD DATA LOCAL with rows held in memory, never with a file."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["local_infile"] = True
        super().__init__(*args, **kwargs)
        self.pending: tuple[bytes, memoryview] | None = None   # (file name, rows) of the LOAD in flight

    def _read_query_result(self, unbuffered=False):
        if unbuffered:
            return super()._read_query_result(unbuffered)
        self._result = None
        result = _RowsResult(self)
        result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows


class _RowsResult(MySQLResult):
    def _read_load_local_packet(self, first_packet) -> None:
        conn: RowsConnection = self.connection  # type: ignore[assignment]
        requested = LoadLocalPacketWrapper(first_packet).filename
        pending, conn.pending = conn.pending, None
        try:
            if pending is not None and requested == pending[0]:
                rows = pending[1]
                for start in range(0, len(rows), PACKET):
                    conn.write_packet(rows[start:start + PACKET])
        finally:
            conn.write_packet(b"")   # the end of the data, as pymysql does after a file
            ok_packet = conn._read_packet()
        if not ok_packet.is_ok_packet():
            raise pymysql.err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        self._read_ok_packet(ok_packet)
        if pending is None or requested != pending[0]:
            raise LoadDataError(f"the server asked for the local file {requested!r}, which this restore did not "
                                f"offer; nothing was sent")


def plan_for(conn, database: str, table: str, insert: bytes) -> LoadPlan | None:
    """A LOAD DATA plan for `table`'s rows, given its first INSERT; None when the INSERT must stay."""
    head = f"INSERT INTO {quote_identifier(table)} VALUES".encode()
    if not insert.startswith(head) or insert[len(head):len(head) + 2].lstrip()[:1] != b"(":
        return None   # a column list, or not the shape the dump tool writes
    with conn.cursor() as cur:
        cur.execute("SELECT LOWER(data_type), extra, is_generated FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s", (database, table))
        columns = cur.fetchall()
        if not columns or any(kind in _HEX_TYPES or "INVISIBLE" in (extra or "").upper()
                              or (generated or "NEVER").upper() != "NEVER" for kind, extra, generated in columns):
            return None
        cur.execute("SELECT @@character_set_client")
        charset = cur.fetchone()[0]
    if not re.fullmatch(r"\w+", charset or ""):
        return None
    name = f"mcdr-rows-{next(_names)}".encode()
    statement = (b"LOAD DATA LOCAL INFILE '" + name + b"' INTO TABLE " + quote_identifier(table).encode()
                 + f" CHARACTER SET {charset}".encode()
                 + b" FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\\'' ESCAPED BY '\\\\'"
                 + b" LINES STARTING BY '(' TERMINATED BY '),'")
    return LoadPlan(table, head, statement, name)


def load_rows(conn: RowsConnection, insert: bytes, plan: LoadPlan) -> int:
    """Load the rows of one INSERT statement of `plan.table`; returns the rows loaded. Any warning (a
    value changed, a row skipped) fails it: the rows would not be the backup's."""
    if not insert.startswith(plan.head):
        raise LoadDataError(f"an INSERT into {plan.table} does not start like the table's first one")
    conn.pending = (plan.name, memoryview(insert[len(plan.head):] + b","))
    try:
        conn.query(plan.statement)
    finally:
        conn.pending = None
    result = conn._result
    if result is not None and result.warning_count:
        with conn.cursor() as cur:
            cur.execute("SHOW WARNINGS LIMIT 5")
            shown = "; ".join(f"{level} {code}: {text}" for level, code, text in cur.fetchall())
        raise LoadDataError(f"loading rows into {plan.table} raised {result.warning_count} warning(s): {shown}")
    return result.affected_rows if result is not None else 0


class LoadDataSwitch:
    """Whether restores may use LOAD DATA on this target: on until the server refuses it once."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self.tables: set[str] = set()   # tables loaded this way

    def loaded(self, table: str) -> None:
        with self._lock:
            self.tables.add(table)

    def refused(self, err: pymysql.err.MySQLError) -> bool:
        """True (and off from now on) if `err` says LOAD DATA LOCAL is not allowed here."""
        if not err.args or err.args[0] not in LOCAL_INFILE_REFUSED:
            return False
        with self._lock:
            self.enabled = False
        return True
