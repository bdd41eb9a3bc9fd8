"""Split a mysqldump stream into statements, as it streams, say what each one is, and refuse every
statement the dump tool does not write.

The dump's own grammar is small: statements end with the current delimiter at the end of a line
(`;`, or `;;` inside `DELIMITER ;;` blocks that hold triggers, routines and events); comment lines
start with `--`; versioned comments `/*!40101 ... */;` are statements. Strings never contain a raw
newline (the dump escapes it), so line-based splitting is exact.

Every statement of a restore runs as the DR server's admin account. So a restore runs only the
shapes the dump tool (mysqldump / mariadb-dump, with the options `backup.source.dump_command` gives
it) writes for one database, and refuses the backup on anything else, before the target database is
touched: a dump with `SET GLOBAL`, `GRANT`, `CREATE USER`, `DROP DATABASE`, `SET PASSWORD`, a table of
another database (`INSERT INTO mysql.user`, `` DROP TABLE IF EXISTS `x`.`t` ``) was not made by our
backup from a database, whatever its hashes say. The shapes, as the lab's MariaDB 10.11 dump tool
writes them for the sample database (tables, a view, a trigger, routines, an event):

    /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;     session settings, saved first
    /*!40101 SET NAMES utf8mb4 */;   /*!40103 SET TIME_ZONE='+00:00' */;   /*!50003 SET sql_mode = '...' */;
    /*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;  (and FOREIGN_KEY_CHECKS, SQL_NOTES)
    DROP TABLE IF EXISTS `t`;   CREATE TABLE `t` (...) ENGINE=...;
    LOCK TABLES `t` WRITE;   /*!40000 ALTER TABLE `t` DISABLE KEYS */;   INSERT INTO `t` VALUES (...);
    /*!40000 ALTER TABLE `t` ENABLE KEYS */;   UNLOCK TABLES;
    /*!50001 DROP VIEW IF EXISTS `v`*/;   /*!50001 CREATE VIEW `v` AS SELECT NULL AS `c` ...*/;  (placeholder)
    /*!50001 CREATE ALGORITHM=UNDEFINED */ /*!50013 DEFINER=`u`@`h` SQL SECURITY INVOKER */ /*!50001 VIEW `v` AS ...*/;
    /*!50003 CREATE*/ /*!50017 DEFINER=`u`@`h`*/ /*!50003 TRIGGER t AFTER INSERT ON x FOR EACH ROW ... */;;
    /*!50106 DROP EVENT IF EXISTS `e` */;   /*!50106 CREATE*/ /*!50117 DEFINER=`u`@`h`*/ /*!50106 EVENT `e` ...*/;;
    /*!50003 DROP FUNCTION IF EXISTS `f` */;   CREATE DEFINER=`u`@`h` FUNCTION `f`(...) ... ;;   (and PROCEDURE)
    -- CHANGE MASTER TO MASTER_LOG_FILE=...;   -- SET GLOBAL gtid_slave_pos='...';   comments (--master-data=2)

SET may only assign user variables (`@OLD_...`, `@saved_...`) and the session settings the dump tool
uses (`SESSION_SETTINGS`), from a literal, a user variable or a `@@` setting. A CREATE TABLE may not
reach outside the database (a foreign key into another database, DATA/INDEX DIRECTORY, the CONNECT,
FEDERATED, SPIDER or MERGE engines). The bodies of views, triggers, routines and events are the source's
own SQL, which no list of shapes can cover: they are refused if they hold an account, privilege,
replication, server or file statement, or name the `mysql` schema or this tool's state database
(a trigger that fires later as its DEFINER would run it with that account's rights). A body that builds
a statement at run time (PREPARE in a procedure or an event) is beyond any reading of its text. Rows
that a restore sends as INSERT statements (not LOAD DATA) must be literals (`check_values`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from multicloud_dr.exceptions import InputError

# MariaDB's dump tool (10.11.8+ / 11.x) writes this first line; MySQL's client rejects it ("Unknown
# command '\-'") and old clients choke, so it is recognised and skipped on purpose (F19).
SANDBOX_LINE = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/\s*$")

DATA, TABLE, SESSION, POST, SKIP = "data", "table", "session", "post", "skip"
_TABLE = re.compile(rb"^(?:INSERT INTO|CREATE TABLE|DROP TABLE IF EXISTS|LOCK TABLES) `((?:[^`]|``)+)`")
_HEAD = 512

# The session settings a dump's SET statements may change (MariaDB's and MySQL's dump tools).
SESSION_SETTINGS = frozenset({"character_set_client", "character_set_results", "collation_connection",
                              "time_zone", "sql_mode", "foreign_key_checks", "unique_checks", "sql_notes",
                              "note_verbosity", "sql_log_bin"})


class DumpStatementError(InputError):
    """The backup's dump holds a statement the dump tool does not write: it is refused before the target
    database is touched (a retry cannot help: restore another backup)."""


@dataclass
class Statement:
    kind: str      # data / table / session / post / skip
    sql: bytes     # without the trailing delimiter
    table: str | None = None
    line: int = 0  # the line it starts on, in the stream given to split() (1 = the first)


class _Refused(ValueError):
    """What is wrong with one statement (split() adds where it is), and what to do."""

    def __init__(self, what: str, advice: str = "find out who or what wrote this backup, and restore another one"):
        super().__init__(what)
        self.advice = advice


# -- the shapes ----------------------------------------------------------------------------------------------
# Checked on a normalized copy of the statement: string literals emptied to '', versioned-comment markers
# (`/*!40101 `, `/*M!100616 `, `*/`) dropped, white space collapsed. Quoted names are kept as they are.
_TOKEN = re.compile(rb"`(?:[^`]++|``)*+`|'(?:[^'\\]++|\\.|'')*+'|\"(?:[^\"\\]++|\\.|\"\")*+\"|/\*M?!\d*|\*/|\s+",
                    re.S)
_SPACES = re.compile(rb"  +")
_NAME = rb"`(?:[^`]|``)+`"                                  # the dump quotes every name it writes
_BARE = rb"(?:`(?:[^`]|``)+`|[\w$]+)"                       # a trigger's name and table, as the user typed them
_ACCOUNT = rb"(?:`(?:[^`]|``)*`|''|[\w$.%-]+)@(?:`(?:[^`]|``)*`|''|[\w$.%:-]+)|CURRENT_USER(?: ?\(\))?"
_DEFINER = rb"(?:DEFINER ?= ?(?:" + _ACCOUNT + rb") )?"


def _shape(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern, re.I | re.S)


_VALUE = rb"(?:''|@@(?:SESSION\.|LOCAL\.)?[A-Za-z_]+|@[A-Za-z_][\w$]*|[\w+.:-]+)"
_ASSIGNMENT = (rb"(?:(?P<user>@[A-Za-z_][\w$.]*)|(?:@@(?:SESSION|LOCAL)\.|@@|(?:SESSION|LOCAL) )?(?P<var>[A-Za-z_]+))"
               rb" ?:?= ?" + _VALUE)
_ASSIGNMENT_RE = _shape(_ASSIGNMENT)
_ANY_ASSIGNMENT = re.sub(rb"\?P<\w+>", b"", _ASSIGNMENT)
_SET = _shape(rb"SET (?:NAMES \w+(?: COLLATE \w+)?|" + _ANY_ASSIGNMENT + rb"(?: ?, ?" + _ANY_ASSIGNMENT + rb")*)")
_INSERT = re.compile(rb"INSERT INTO (" + _NAME + rb")(?: ?\((?:" + _NAME + rb" ?,? ?)+\))? ?VALUES[\s(]", re.S)

_QUALIFIED = re.compile(rb"(?:" + _NAME + rb"|\b[A-Za-z_$][\w$]*) ?\. ?(?:`|[A-Za-z_$])")

_SHAPES: list[tuple[str, re.Pattern[bytes]]] = [
    (TABLE, _shape(rb"DROP TABLE IF EXISTS " + _NAME)),
    (TABLE, _shape(rb"CREATE TABLE " + _NAME + rb" ?\(.*\).*")),
    (SKIP, _shape(rb"LOCK TABLES " + _NAME + rb" WRITE")),
    (SKIP, _shape(rb"UNLOCK TABLES")),
    (SKIP, _shape(rb"ALTER TABLE " + _NAME + rb" (?:DISABLE|ENABLE) KEYS")),
    (POST, _shape(rb"DROP (?:VIEW|EVENT|FUNCTION|PROCEDURE|TRIGGER) IF EXISTS " + _NAME)),
    (POST, _shape(rb"CREATE (?:ALGORITHM ?= ?\w+ )?" + _DEFINER + rb"(?:SQL SECURITY (?:DEFINER|INVOKER) )?VIEW "
                  + _NAME + rb" (?:\(.*?\) )?AS .+")),
    (POST, _shape(rb"CREATE " + _DEFINER + rb"TRIGGER " + _BARE + rb"(?:\." + _BARE + rb")? (?:BEFORE|AFTER) "
                  rb"(?:INSERT|UPDATE|DELETE) ON .+? FOR EACH ROW .+")),
    (POST, _shape(rb"CREATE " + _DEFINER + rb"EVENT " + _NAME + rb" ON SCHEDULE .+")),
    (POST, _shape(rb"CREATE " + _DEFINER + rb"(?:AGGREGATE )?(?:FUNCTION|PROCEDURE) " + _NAME + rb" ?\(.*")),
]

_SEQUENCE = _shape(rb"(?:DROP SEQUENCE IF EXISTS " + _NAME + rb"|CREATE SEQUENCE " + _NAME + rb" .*|"
                   rb"(?:DO|SELECT) SETVAL ?\( ?" + _NAME + rb" ?,.*)")
# Inside a CREATE TABLE: what reaches outside the database.
_OUTSIDE_TABLE = [
    (_shape(rb"\bREFERENCES (?:" + _NAME + rb"|[\w$]+) ?\."), "a foreign key into another database"),
    (_shape(rb"\b(?:DATA|INDEX) DIRECTORY\b"), "a DATA/INDEX DIRECTORY (files outside the server's data directory)"),
    (_shape(rb"\b(?:CONNECTION|UNION) ?="), "a table on another server or of other tables (CONNECTION/UNION)"),
    (_shape(rb"\bENGINE ?= ?(?:CONNECT|FEDERATED|FEDERATEDX|SPIDER|MRG_MyISAM|MERGE)\b"),
     "an engine that reads files, other servers or other tables"),
]
# Inside any statement's body (views, triggers, routines, events, table definitions).
_FORBIDDEN = [
    (_shape(rb"(?<![\w$@.`])(?:GRANT|REVOKE) "), "GRANT/REVOKE"),
    (_shape(rb"\b(?:CREATE|DROP|ALTER|RENAME) (?:USER|ROLE)\b"), "an account statement"),
    (_shape(rb"\bSET (?:PASSWORD|ROLE|DEFAULT ROLE)\b"), "SET PASSWORD/ROLE"),
    (_shape(rb"\bSET (?:GLOBAL|PERSIST|PERSIST_ONLY)\b|\bSET @@(?:GLOBAL|PERSIST|PERSIST_ONLY)\.|"
            rb", ?(?:@@)?(?:GLOBAL|PERSIST|PERSIST_ONLY)[ .][\w$]+ ?:?="), "SET GLOBAL"),
    (_shape(rb"\bCHANGE (?:MASTER|REPLICATION)\b|\b(?:START|STOP|RESET) (?:SLAVE|REPLICA|MASTER|ALL SLAVES)\b|"
            rb"\bPURGE (?:BINARY|MASTER) LOGS\b"), "a replication statement"),
    (_shape(rb"\b(?:UN)?INSTALL (?:PLUGIN|SONAME|COMPONENT)\b|(?<![\w$@.`])(?:SHUTDOWN|KILL)\b"),
     "a server statement (plugins, SHUTDOWN, KILL)"),
    (_shape(rb"\bINTO (?:OUTFILE|DUMPFILE)\b|\bLOAD (?:DATA|XML)\b|\bLOAD_FILE ?\("), "file access"),
    (_shape(rb"\b(?:CREATE|DROP|ALTER) (?:DATABASE|SCHEMA|SERVER)\b|(?<![\w$@.`])USE (?!INDEX\b|KEY\b)(?:`|[\w$]+\b)"),
     "a statement on another database"),
    (_shape(rb"(?<![\w$])(?:`mysql`|mysql|`_multicloud_dr`|_multicloud_dr|`_mcdr_[^`]*`|_mcdr_[\w$]*) ?\."),
     "a name in the mysql schema or in this tool's own databases"),
]


def _normalized(sql: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        token = match.group(0)
        first = token[:1]
        if first == b"`":
            return token
        if first in (b"'", b'"'):
            return b"''"
        return b" "   # white space and versioned-comment markers
    return _SPACES.sub(b" ", _TOKEN.sub(one, sql)).strip()


_CLAUSES = _shape(rb" (?:ALGORITHM ?= ?\w+|DEFINER ?= ?(?:" + _ACCOUNT + rb")|SQL SECURITY \w+|IF (?:NOT )?EXISTS)"
                  rb"(?= )")


def _kind_of(text: bytes) -> str:
    """What a statement is, for the message: its first two words (CREATE TRIGGER, SET GLOBAL, GRANT ALL)."""
    words = re.match(rb"[A-Za-z_]+(?: [A-Za-z_]+)?", _CLAUSES.sub(b"", text[:300]))
    return words.group(0).decode("ascii").upper() if words else repr(text[:20])


def classify(sql: bytes) -> tuple[str, str | None]:
    """data: INSERTs (loaded in parallel); table: CREATE/DROP TABLE (run at once, in order);
    session: SET statements (run at once, and replayed with the post-data objects, whose context
    they are); post: views, triggers, routines, events (created after the swap, in order);
    skip: table locks and key toggles (the load runs in a private database).

    Raises _Refused for a statement the dump tool does not write (split() says where it is)."""
    head = sql.lstrip()
    match = _TABLE.match(head[:200])
    table = match.group(1).replace(b"``", b"`").decode() if match else None
    if head[:7].upper() == b"INSERT ":
        if not _INSERT.match(head):
            other = " naming a table of another database" if _QUALIFIED.search(_normalized(head[:300])) else ""
            raise _Refused(f"{_kind_of(_normalized(head[:200]))}{other}, not `INSERT INTO `table` VALUES` into a "
                           f"table of this database")
        return DATA, table
    text = _normalized(head)
    if _SET.fullmatch(text):
        for assignment in _ASSIGNMENT_RE.finditer(text, 4):
            var = assignment.group("var")
            if var is not None and var.decode().lower() not in SESSION_SETTINGS:
                raise _Refused(f"SET of {var.decode()!r}, which is not a session setting the dump tool uses")
        return SESSION, None
    if text[:4].upper() == b"SET ":
        raise _Refused(f"{_kind_of(text)}: a SET the dump tool does not write (only user variables and the session "
                       f"settings {', '.join(sorted(SESSION_SETTINGS))}, from a literal or a variable)")
    kind = next((kind for kind, shape in _SHAPES if shape.fullmatch(text)), None)
    if kind is None and _SEQUENCE.fullmatch(text):
        raise _Refused(f"{_kind_of(text)}: a sequence, which this restore does not restore (its swap moves base "
                       f"tables only)", advice="restore this database with the mysql client instead")
    if kind is None:
        other = " naming a table of another database" if _QUALIFIED.search(text[:300]) else ""
        raise _Refused(f"{_kind_of(text)}{other}, which the dump tool does not write for a database")
    if kind == TABLE and text[:6].upper() == b"CREATE":
        for pattern, what in _OUTSIDE_TABLE:
            if pattern.search(text):
                raise _Refused(f"CREATE TABLE with {what}")
    if kind in (TABLE, POST):
        for pattern, what in _FORBIDDEN:
            if pattern.search(text, 6):   # past the statement's own first word (CREATE/DROP)
                raise _Refused(f"{_kind_of(text)} whose body holds {what}")
    return kind, table


_ROW_BYTES = b"0123456789.,()+-eExXabcdfABCDFNUL \t\r\n"   # numbers, 0x... hex, NULL, and the rows' punctuation


def check_values(sql: bytes) -> None:
    """An INSERT that goes to the server as SQL (not as LOAD DATA rows) must hold literals only, as the dump
    tool writes them: quoted strings, numbers, 0x... hex, NULL. A subquery or a function call would run as
    the DR admin. C-speed byte operations: ~150-300 MB/s, spent only on the tables that keep their INSERTs."""
    match = _INSERT.match(sql)
    if match is None:
        raise DumpStatementError(f"refusing the backup: an INSERT to be run is not `INSERT INTO `table` VALUES`: "
                                 f"{sql[:80]!r}: restore another backup")
    body = sql[match.end() - 1:]
    outside = b"".join(body.replace(b"\\\\", b"").replace(b"\\'", b"").split(b"'")[::2])
    rest = outside.replace(b"\n(", b"").replace(b",(", b"").lstrip(b" \t\r\n").removeprefix(b"(")
    if rest.translate(None, _ROW_BYTES) or b"(" in rest:
        name = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
        raise DumpStatementError(f"refusing the backup: an INSERT INTO `{name}` holds values that are not literals "
                                 f"(a subquery or a function call, which the dump tool never writes); the target "
                                 f"database is untouched: restore another backup")


def _statement_end(delimiter: bytes) -> re.Pattern[bytes]:
    """The end of a statement: the delimiter, then nothing but white space up to the end of the line."""
    return re.compile(re.escape(delimiter) + rb"[ \t\r\f\v]*\n")


def split(chunks: Iterable[bytes], where: str = "the dump") -> Iterator[Statement]:
    """Statements from a dump stream cut into arbitrary chunks, in dump order. A statement the dump tool
    does not write raises DumpStatementError naming its line in `where` and what it is.

    A statement ends at the first line that ends with the delimiter. That end is found with one regex
    search over the chunk (C speed), not line by line in Python: MariaDB's dump tool writes one row per
    line, so a 1 GB dump has millions of lines but only about a thousand statements, and splitting it
    line by line cost seconds of the restore's CPU. Lines between statements (blank, `--` comments,
    `DELIMITER`) are still looked at one by one; there are few of them."""
    delimiter = b";"
    end = _statement_end(delimiter)
    buf = bytearray()
    pos = 0           # buf[pos:] is not consumed yet; pos is always at the start of a line
    line = 1          # the line pos is on
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
                text = bytes(buf[pos:min(line_end + 1, pos + _HEAD)])
                if first:
                    first = False
                    if line_end - pos < _HEAD and SANDBOX_LINE.match(text):
                        pos, line = line_end + 1, line + 1
                        continue
                stripped = text.strip() or bytes(buf[pos:line_end + 1]).strip()
                if not stripped or stripped.startswith(b"--"):
                    pos, line = line_end + 1, line + 1
                    continue
                if stripped.upper().startswith(b"DELIMITER "):
                    delimiter = stripped.split()[1]
                    end = _statement_end(delimiter)
                    pos, line = line_end + 1, line + 1
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
            start, line = line, line + buf.count(b"\n", pos, match.end())
            pos, resume = match.end(), None
            try:
                kind, table = classify(sql)
            except _Refused as err:
                raise DumpStatementError(
                    f"refusing the backup: line {start} of {where} is {err}: {sql[:100]!r}; nothing of it was run "
                    f"on the target database, which is untouched: {err.advice}") from None
            yield Statement(kind, sql, table, start)
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
