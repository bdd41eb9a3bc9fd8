"""Split a mysqldump stream into statements, as it streams, and say what each one is.

The dump's own grammar is small: statements end with the current delimiter at the end of a line
(`;`, or `;;` inside `DELIMITER ;;` blocks that hold triggers, routines and events); comment lines
start with `--`; versioned comments `/*!40101 ... */;` are statements. Strings never contain a raw
newline (the dump escapes it), so line-based splitting is exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# MariaDB's dump tool (10.11.8+ / 11.x) writes this first line; MySQL's client rejects it ("Unknown
# command '\-'") and old clients choke, so it is recognised and skipped on purpose (F19).
SANDBOX_LINE = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/\s*$")

DATA, TABLE, SESSION, POST, SKIP = "data", "table", "session", "post", "skip"
_TABLE = re.compile(rb"^(?:INSERT INTO|CREATE TABLE|DROP TABLE IF EXISTS|LOCK TABLES) `((?:[^`]|``)+)`")
_SET = re.compile(rb"^(?:/\*[!M]\d+ )?SET ")


@dataclass
class Statement:
    kind: str      # data / table / session / post / skip
    sql: bytes     # without the trailing delimiter
    table: str | None = None


def classify(sql: bytes) -> tuple[str, str | None]:
    """data: INSERTs (loaded in parallel); table: CREATE/DROP TABLE (run at once, in order);
    session: SET statements (run at once, and replayed with the post-data objects, whose context
    they are); post: views, triggers, routines, events (created after the swap, in order);
    skip: table locks and key toggles (the load runs in a private database)."""
    head = sql.lstrip()[:200]
    match = _TABLE.match(head)
    table = match.group(1).replace(b"``", b"`").decode() if match else None
    if head.startswith(b"INSERT INTO "):
        return DATA, table
    if head.startswith((b"CREATE TABLE ", b"DROP TABLE IF EXISTS ")):
        return TABLE, table
    if head.startswith((b"LOCK TABLES", b"UNLOCK TABLES")) or (b"ALTER TABLE" in head and b"KEYS" in head):
        return SKIP, table
    if _SET.match(head):
        return SESSION, None
    return POST, None


def split(lines: Iterable[bytes]) -> Iterator[Statement]:
    """Statements from whole lines (each ending in b"\\n"), in dump order."""
    delimiter = b";"
    buf: list[bytes] = []
    first = True
    for line in lines:
        if first:
            first = False
            if SANDBOX_LINE.match(line):
                continue
        if not buf:
            stripped = line.strip()
            if not stripped or stripped.startswith(b"--"):
                continue
            if stripped.upper().startswith(b"DELIMITER "):
                delimiter = stripped.split()[1]
                continue
        buf.append(line)
        if line.rstrip().endswith(delimiter):
            sql = b"".join(buf).rstrip()
            sql = sql[: len(sql) - len(delimiter)].rstrip()
            buf = []
            kind, table = classify(sql)
            yield Statement(kind, sql, table)
    tail = b"".join(buf).strip()
    if tail:
        raise ValueError(f"the dump ends inside a statement: {tail[:120]!r}...")


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines from arbitrary chunks, without joining chunks more than needed."""
    carry = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = carry + chunk if carry else chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            yield data[start:end + 1]
            start = end + 1
        carry = data[start:]
    if carry:
        yield carry + b"\n"


def defer_secondary_keys(create_table: bytes) -> tuple[bytes, list[bytes]]:
    """A mysqldump CREATE TABLE without its plain secondary keys and foreign keys, and those definitions,
    to add back in one ALTER TABLE once the rows are in: InnoDB then builds each index by sorting, not
    row by row through a B-tree far bigger than the buffer pool (myloader's --innodb-optimize-keys).

    The dump tool writes one definition per line, two spaces in; only `KEY` and `CONSTRAINT ... FOREIGN
    KEY` lines move (primary, unique, fulltext and spatial keys and CHECK constraints stay). Keys go back in
    their order, so SHOW CREATE TABLE reads the same as the source's."""
    lines = create_table.split(b"\n")
    kept: list[bytes] = []
    deferred: list[bytes] = []
    for line in lines:
        text = line.strip()
        if line.startswith(b"  ") and (text.startswith(b"KEY `") or
                                        (text.startswith(b"CONSTRAINT `") and b" FOREIGN KEY " in text)):
            deferred.append(text[:-1] if text.endswith(b",") else text)
        else:
            kept.append(line)
    if not deferred:
        return create_table, []
    closing = next((i for i in range(len(kept) - 1, 0, -1) if kept[i].startswith(b")")), None)
    if closing is None or closing < 2:
        return create_table, []   # not the shape the dump tool writes: leave it alone
    if kept[closing - 1].endswith(b","):
        kept[closing - 1] = kept[closing - 1][:-1]
    return b"\n".join(kept), deferred
