"""Splitting a dump into statements for the parallel restore, and the deadlock re-run rule."""

from __future__ import annotations

import itertools
import re

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.restore.mysql_restore import _insert
from multicloud_dr.restore.statements import DATA, POST, SANDBOX_LINE, SESSION, SKIP, TABLE, classify, split

DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40101 SET NAMES utf8mb4 */;
DROP TABLE IF EXISTS `vet schedule`;
CREATE TABLE `vet schedule` (
  `id` int NOT NULL,
  PRIMARY KEY (`id`)
);
LOCK TABLES `vet schedule` WRITE;
/*!40000 ALTER TABLE `vet schedule` DISABLE KEYS */;
INSERT INTO `vet schedule` VALUES
(1),
(2);
/*!40000 ALTER TABLE `vet schedule` ENABLE KEYS */;
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`a`@`%`*/ /*!50003 TRIGGER t AFTER INSERT ON x FOR EACH ROW
BEGIN
  INSERT INTO y VALUES (1);
END */;;
DELIMITER ;
-- Dump completed
"""


def test_statements_are_split_and_classified_and_the_sandbox_line_skipped():
    chunks = [DUMP[i:i + 7] for i in range(0, len(DUMP), 7)]  # boundaries everywhere
    statements = list(split(chunks))
    assert [s.kind for s in statements] == [SESSION, TABLE, TABLE, SKIP, SKIP, DATA, SKIP, SKIP, POST]
    assert statements[5].table == "vet schedule" and statements[5].sql.endswith(b"(2)")
    assert b"INSERT INTO y VALUES (1);" in statements[-1].sql, "the trigger body must stay whole"
    assert not any(b"sandbox" in s.sql for s in statements)


def test_a_dump_cut_inside_a_statement_is_an_error():
    with pytest.raises(ValueError, match="ends inside a statement"):
        list(split([DUMP[: DUMP.index(b"(2);")]]))


def _split_line_by_line(dump: bytes) -> list[tuple[str, bytes, str | None]]:
    """The splitting rule, stated line by line (the way it was first written): a statement ends at the
    first line whose text, right-stripped, ends with the delimiter; between statements, blank lines and
    `--` comments are skipped and `DELIMITER x` changes the delimiter; a sandbox first line is skipped."""
    lines = dump.split(b"\n")
    lines = [line + b"\n" for line in lines[:-1]] + ([lines[-1] + b"\n"] if lines[-1] else [])
    if lines and SANDBOX_LINE.match(lines[0]):
        lines = lines[1:]
    out, buf, delimiter = [], [], b";"
    for line in lines:
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
            out.append((*classify(sql)[:1], sql, classify(sql)[1]))
    if b"".join(buf).strip():
        out.append(("unfinished", b"", None))
    return out


_ROW = st.builds(lambda values: "(" + ",".join(values) + ")", st.lists(
    st.sampled_from(["1", "NULL", "'a;b'", "'x);'", "' ; '", "0x3B0A", "'--'", "'DELIMITER ;;'", "''"]),
    min_size=1, max_size=4))
_PIECE = st.one_of(
    st.builds(lambda rows, one_line: "INSERT INTO `t` VALUES " + ",".join(rows) + ";\n" if one_line
              else "INSERT INTO `t` VALUES\n" + ",\n".join(rows) + ";\n", st.lists(_ROW, min_size=1, max_size=5),
              st.booleans()),
    st.sampled_from([
        "\n", "-- a comment;\n", "   \n", "/*!40101 SET NAMES utf8mb4 */;\n", "SET @a = 1 ;  \r\n",
        "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n);\n", "LOCK TABLES `t` WRITE;\n",
        "DELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW\nBEGIN\n  SET @n = 1;\n-- inside\nEND ;;\n"
        "DELIMITER ;\n",
        "/*!50003 CREATE PROCEDURE p() SELECT 1 */;\n", "DROP TABLE IF EXISTS `t`;\n", "SELECT 1\n;\n",
        "DELIMITER ;;\nCREATE EVENT e ON SCHEDULE EVERY 1 DAY DO\nBEGIN\n  SET @n = 2;\nEND\n;;\nDELIMITER ;\n",
    ]))


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(_PIECE, max_size=12), sandbox=st.booleans(), cuts=st.lists(st.integers(0, 4000), max_size=12),
       unterminated=st.booleans())
def test_the_chunk_splitter_agrees_with_the_line_by_line_rule(pieces, sandbox, cuts, unterminated):
    dump = ("/*M!999999\\- enable the sandbox mode */\n" if sandbox else "") + "".join(pieces)
    if unterminated:
        dump = dump.rstrip("\n")   # the last line without its newline
    data = dump.encode()
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    expected = _split_line_by_line(data)
    if expected and expected[-1][0] == "unfinished":
        with pytest.raises(ValueError, match="ends inside a statement"):
            list(split(chunks))
        return
    assert [(s.kind, s.sql, s.table) for s in split(chunks)] == expected


def test_a_statement_ends_at_the_first_line_ending_in_the_delimiter_not_at_a_delimiter_inside_a_row():
    dump = b"INSERT INTO `t` VALUES\n(1,'a;'),\n(2,'b;\\n'),\n(3,';');\nSET @x = 1;\n"
    statements = list(split([dump[i:i + 3] for i in range(0, len(dump), 3)]))
    assert [s.kind for s in statements] == [DATA, SESSION]
    assert statements[0].sql.count(b"\n(") == 3 and re.search(rb"\(3,';'\)$", statements[0].sql)


class _Conn:
    def __init__(self, failures: int, code: int) -> None:
        self.failures, self.code, self.calls = failures, code, 0

    def query(self, sql):
        self.calls += 1
        if self.calls <= self.failures:
            raise pymysql.err.OperationalError(self.code, "Deadlock found when trying to get lock")


def test_a_deadlocked_insert_is_run_again_other_errors_are_not(monkeypatch):
    monkeypatch.setattr("multicloud_dr.restore.mysql_restore.time.sleep", lambda s: None)
    conn = _Conn(failures=2, code=1213)
    _insert(conn, b"INSERT ...")
    assert conn.calls == 3
    with pytest.raises(pymysql.err.OperationalError):
        _insert(_Conn(failures=1, code=1062), b"INSERT ...")


CREATE_VISITS = b"""CREATE TABLE `visits` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `pet_id` int(10) unsigned NOT NULL,
  `note` varchar(64) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_note` (`note`),
  FULLTEXT KEY `ft_note` (`note`),
  KEY `idx_visits_pet` (`pet_id`) COMMENT 'ends with a comma,',
  KEY `idx_note` (`note`(10)),
  CONSTRAINT `chk_note` CHECK (`note` <> ''),
  CONSTRAINT `fk_visits_pet` FOREIGN KEY (`pet_id`) REFERENCES `pets` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""


def test_plain_and_foreign_keys_are_deferred_in_their_order():
    from multicloud_dr.restore.statements import defer_secondary_keys

    kept, deferred = defer_secondary_keys(CREATE_VISITS)
    assert deferred == [b"KEY `idx_visits_pet` (`pet_id`) COMMENT 'ends with a comma,'",
                        b"KEY `idx_note` (`note`(10))",
                        b"CONSTRAINT `fk_visits_pet` FOREIGN KEY (`pet_id`) REFERENCES `pets` (`id`) ON DELETE CASCADE"]
    # Primary, unique and fulltext keys and CHECK constraints stay; the last kept line loses its comma.
    assert b"PRIMARY KEY (`id`)," in kept and b"UNIQUE KEY `uq_note`" in kept and b"FULLTEXT KEY" in kept
    assert b"  CONSTRAINT `chk_note` CHECK (`note` <> '')\n) ENGINE=InnoDB" in kept


def test_a_table_without_secondary_keys_is_left_as_it_is():
    from multicloud_dr.restore.statements import defer_secondary_keys

    create = b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
    assert defer_secondary_keys(create) == (create, [])
