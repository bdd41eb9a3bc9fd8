"""Split a mysqldump stream into statements, as it streams, and say what each one is.

The dump's own grammar is small: statements end with the current delimiter at the end of a line
(`;`, or `;;` inside `DELIMITER ;;` blocks that hold triggers, routines and events); comment lines
start with `--`; versioned comments `/*!40101 ... */;` are statements. Strings never contain a raw
newline (the dump escapes it), so line-based splitting is exact.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# MariaDB's dump tool (10.11.8+ / 11.x) writes this first line; MySQL's client rejects it ("Unknown
# command '\-'") and old clients choke, so it is recognised and skipped on purpose (F19).
SANDBOX_LINE = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/\s*$")

DATA, TABLE, SESSION, POST, SKIP = "data", "table", "session", "post", "skip"
_TABLE = re.compile(rb"^(?:INSERT INTO|CREATE TABLE|DROP TABLE IF EXISTS|LOCK TABLES) `((?:[^`]|``)+)`")
_SET = re.compile(rb"^(?:/\*[!M]\d+ )?SET ")
_HEAD = 512


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


def _statement_end(delimiter: bytes) -> re.Pattern[bytes]:
    """The end of a statement: the delimiter, then nothing but white space up to the end of the line."""
    return re.compile(re.escape(delimiter) + rb"[ \t\r\f\v]*\n")


def split(chunks: Iterable[bytes]) -> Iterator[Statement]:
    """Statements from a dump stream cut into arbitrary chunks, in dump order.

    A statement ends at the first line that ends with the delimiter. That end is found with one regex
    search over the chunk (C speed), not line by line in Python: MariaDB's dump tool writes one row per
    line, so a 1 GB dump has millions of lines but only about a thousand statements, and splitting it
    line by line cost seconds of the restore's CPU. Lines between statements (blank, `--` comments,
    `DELIMITER`) are still looked at one by one; there are few of them."""
    delimiter = b";"
    end = _statement_end(delimiter)
    buf = bytearray()
    pos = 0           # buf[pos:] is not consumed yet; pos is always at the start of a line
    resume = None     # inside a statement (it starts at pos): where to search for its end next
    first = True
    # One newline after the stream completes its last line; after a complete one it is a blank line,
    # which is skipped between statements (and inside an unfinished one, it is still unfinished).
    for chunk in itertools.chain(chunks, [b"\n"]):
        if pos:
            del buf[:pos]
            if resume is not None:
                resume -= pos
            pos = 0
        buf += chunk
        while True:
            if resume is None:
                line_end = buf.find(b"\n", pos)
                if line_end < 0:
                    break
                # Only the head of a line is looked at: MySQL's tool writes a whole INSERT on one line.
                line = bytes(buf[pos:min(line_end + 1, pos + _HEAD)])
                if first:
                    first = False
                    if line_end - pos < _HEAD and SANDBOX_LINE.match(line):
                        pos = line_end + 1
                        continue
                stripped = line.strip() or bytes(buf[pos:line_end + 1]).strip()
                if not stripped or stripped.startswith(b"--"):
                    pos = line_end + 1
                    continue
                if stripped.upper().startswith(b"DELIMITER "):
                    delimiter = stripped.split()[1]
                    end = _statement_end(delimiter)
                    pos = line_end + 1
                    continue
                resume = pos
            match = end.search(buf, resume)
            if match is None:
                # Only the last, incomplete line can still end the statement.
                newline = buf.rfind(b"\n", resume)
                if newline >= 0:
                    resume = newline + 1
                break
            sql = bytes(buf[pos:match.start()]).rstrip()
            pos, resume = match.end(), None
            kind, table = classify(sql)
            yield Statement(kind, sql, table)
    tail = bytes(buf[pos:]).strip()
    if tail:
        raise ValueError(f"the dump ends inside a statement: {tail[:120]!r}...")


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
