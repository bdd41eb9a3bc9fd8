"""Splitting a dump into statements for the parallel restore, and the deadlock re-run rule."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.restore.mysql_restore import _insert
from multicloud_dr.restore.statements import (
    DATA,
    POST,
    SANDBOX_LINE,
    SESSION,
    SKIP,
    TABLE,
    DumpStatementError,
    check_values,
    classify,
    split,
)

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
        "/*!50003 CREATE PROCEDURE `p`() SELECT 1 */;\n", "DROP TABLE IF EXISTS `t`;\n", "UNLOCK TABLES\n;\n",
        "DELIMITER ;;\nCREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO\nBEGIN\n  SET @n = 2;\nEND\n;;\nDELIMITER ;\n",
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
    _insert(conn, b"INSERT INTO `t` VALUES (1)")
    assert conn.calls == 3
    with pytest.raises(pymysql.err.OperationalError):
        _insert(_Conn(failures=1, code=1062), b"INSERT INTO `t` VALUES (1)")


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


# -- only the statement shapes the dump tool writes --------------------------------------------------------
# A real dump of the lab's sample database (MariaDB 10.11's dump tool, the backup's options, with
# --master-data=2 --gtid; tables, a view, a trigger, a function, a procedure, an event), each table's rows cut
# to the first one and the photo's BLOB shortened.
LAB_DUMP = (Path(__file__).with_name("mariadb_dump_of_the_sample_database.sql")).read_bytes()


def test_every_statement_of_a_real_dump_is_one_the_restore_runs():
    statements = list(split([LAB_DUMP[i:i + 4096] for i in range(0, len(LAB_DUMP), 4096)]))
    kinds = Counter(s.kind for s in statements)
    assert kinds[DATA] == 11 and kinds[TABLE] == 23 and kinds[SKIP] == 44
    assert kinds[POST] == 11, "views (placeholder and final), the trigger, event, function and procedure, their DROPs"
    assert all(s.line > 0 for s in statements)
    for statement in statements:
        if statement.kind == DATA:
            check_values(statement.sql)   # the rows are literals


HOSTILE = [
    (b"SET GLOBAL max_connections = 1", "SET GLOBAL"),
    (b"/*!40101 SET GLOBAL read_only = 0 */", "SET GLOBAL"),
    (b"SET @@GLOBAL.read_only = 0", "SET"),
    (b"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, GLOBAL general_log=1 */", "SET"),
    (b"SET sql_log_bin = 0, max_statement_time = 0", "max_statement_time"),
    (b"SET @x = (SELECT authentication_string FROM mysql.user LIMIT 1)", "SET"),
    (b"SET PASSWORD FOR 'root'@'localhost' = PASSWORD('x')", "SET PASSWORD"),
    (b"SET ROLE ALL", "SET ROLE"),
    (b"GRANT ALL PRIVILEGES ON *.* TO 'x'@'%'", "GRANT ALL"),
    (b"REVOKE ALL PRIVILEGES ON *.* FROM 'app'@'%'", "REVOKE ALL"),
    (b"CREATE USER 'x'@'%' IDENTIFIED BY 'y'", "CREATE USER"),
    (b"DROP USER 'app'@'%'", "DROP USER"),
    (b"DROP DATABASE petclinic", "DROP DATABASE"),
    (b"/*!40000 DROP DATABASE IF EXISTS `petclinic`*/", "DROP DATABASE"),
    (b"CREATE DATABASE `x`", "CREATE DATABASE"),
    (b"USE `mysql`", "USE"),
    (b"INSERT INTO mysql.user VALUES ('%','x')", "another database"),
    (b"INSERT INTO `mysql`.`user` (`Host`,`User`) VALUES ('%','x')", "another database"),
    (b"INSERT INTO `t` SELECT * FROM `mysql`.`user`", "INSERT INTO"),
    (b"REPLACE INTO `t` VALUES (1)", "REPLACE INTO"),
    (b"DROP TABLE IF EXISTS `mysql`.`user`", "another database"),
    (b"DROP TABLE IF EXISTS `a`, `b`", "DROP TABLE"),
    (b"CREATE TABLE `other`.`t` (\n  `id` int\n)", "another database"),
    (b"LOCK TABLES `t` WRITE, `mysql`.`user` WRITE", "LOCK TABLES"),
    (b"ALTER TABLE `t` ADD COLUMN `x` int", "ALTER TABLE"),
    (b"RENAME TABLE `a` TO `b`", "RENAME TABLE"),
    (b"TRUNCATE TABLE `t`", "TRUNCATE TABLE"),
    (b"DELETE FROM `t`", "DELETE FROM"),
    (b"SELECT 1", "SELECT"),
    (b"DO SLEEP(10)", "DO SLEEP"),
    (b"CHANGE MASTER TO MASTER_HOST='evil.example'", "CHANGE MASTER"),
    (b"SET GLOBAL gtid_slave_pos='0-1-1'", "SET GLOBAL"),   # --master-data=1's shape: a comment at =2
    (b"FLUSH PRIVILEGES", "FLUSH PRIVILEGES"),
    (b"INSTALL SONAME 'ha_connect'", "INSTALL SONAME"),
    (b"SHUTDOWN", "SHUTDOWN"),
    (b"CREATE TABLE `t` (\n  `id` int,\n  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `other`.`p` (`id`)\n)",
     "a foreign key into another database"),
    (b"CREATE TABLE `t` (\n  `id` int\n) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'", "engine"),
    (b"CREATE TABLE `t` (\n  `id` int\n) ENGINE=InnoDB DATA DIRECTORY='/var/tmp'", "DATA/INDEX DIRECTORY"),
    (b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t AFTER INSERT ON x FOR EACH ROW "
     b"BEGIN INSERT INTO mysql.global_priv VALUES ('%','x','{}'); END */", "CREATE TRIGGER whose body"),
    (b"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO "
     b"GRANT ALL ON *.* TO 'x'@'%' */", "CREATE EVENT whose body holds GRANT"),
    (b"CREATE DEFINER=`a`@`b` PROCEDURE `p`()\nBEGIN\n  SET GLOBAL read_only = 0;\nEND", "SET GLOBAL"),
    (b"CREATE DEFINER=`a`@`b` PROCEDURE `p`()\nBEGIN\n  SELECT * FROM t INTO OUTFILE '/tmp/x';\nEND", "file access"),
    (b"CREATE DEFINER=`a`@`b` PROCEDURE `p`()\nBEGIN\n  UPDATE _multicloud_dr.restores SET status = 'complete';\n"
     b"END", "this tool's own databases"),
    (b"/*!50001 CREATE VIEW `v` AS select `User`, `authentication_string` from `mysql`.`user` */", "mysql schema"),
]


@pytest.mark.parametrize(("statement", "what"), HOSTILE)
def test_a_statement_the_dump_tool_does_not_write_refuses_the_backup_naming_its_line(statement, what):
    dump = b"/*!40101 SET NAMES utf8mb4 */;\n-- a comment\n\n" + statement + b";\n-- Dump completed\n"
    with pytest.raises(DumpStatementError) as refused:
        list(split([dump], where="wasb://dr-backups/x/petclinic.sql.zst"))
    message = str(refused.value)
    assert message.startswith("refusing the backup: line 4 of wasb://dr-backups/x/petclinic.sql.zst is "), message
    assert what in message and "\n" not in message and "untouched" in message


def test_a_refused_statement_stops_the_split_before_it_is_handed_on():
    dump = b"DROP TABLE IF EXISTS `t`;\nGRANT ALL ON *.* TO 'x'@'%';\nDROP TABLE IF EXISTS `u`;\n"
    handed = []
    with pytest.raises(DumpStatementError, match="line 2 "):
        for statement in split([dump]):
            handed.append(statement.sql)
    assert handed == [b"DROP TABLE IF EXISTS `t`"]


@pytest.mark.parametrize("statement", [
    b"SET @a = 1",
    b"/*!50503 SET NAMES utf8mb4 */",                              # MySQL's dump tool
    b"SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN",         # MySQL's, with GTIDs
    b"SET @@SESSION.SQL_LOG_BIN= 0",
    b"/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */",   # MariaDB 11.x
    b"/*!40101 SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci */",
    b"CREATE DEFINER=`a`@`b` PROCEDURE `p`()\nBEGIN\n  SELECT 'GRANT ALL ON mysql.user' INTO @x;\nEND",  # in a string
    b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`a`@`%` SQL SECURITY DEFINER */\n/*!50001 VIEW `v` AS "
    b"select `t`.`id` AS `id` from `t` USE INDEX (`k`) */",
    b"INSERT INTO `t` (`a`,`b`) VALUES (1,2)",
    b"INSERT INTO `t` (`id`, `d`) VALUES\n(1,'2026-01-01 00:00:00')",  # MariaDB's, for a table with generated columns
    b"CREATE TABLE `a*/b` (\n  `id` int\n)",
    b"/*!40000 ALTER TABLE `a*/b` DISABLE KEYS */",
])
def test_shapes_of_both_dump_tools_and_lookalikes_inside_strings_or_names_are_allowed(statement):
    classify(statement)


@pytest.mark.parametrize("values", [b"(1,(SELECT authentication_string FROM mysql.user LIMIT 1))",
                                    b"(LOAD_FILE('/etc/shadow'))", b"(1,fab.dead())",
                                    b"(1),(2) ON DUPLICATE KEY UPDATE a=1", b"(1,@@hostname)", b"(1,CONCAT('a','b'))"])
def test_rows_sent_as_sql_must_be_literals(values):
    with pytest.raises(DumpStatementError, match="values that are not literals"):
        check_values(b"INSERT INTO `t` VALUES\n" + values)


def test_literal_rows_pass_whatever_their_strings_hold():
    check_values(b"INSERT INTO `t` VALUES\n(1,'(SELECT 1)',NULL,-1.5e10,0x41FF),\n(2,'it\\'s \\\\',''),\n(3,'a),(b')")


def test_a_sequence_is_refused_saying_the_restore_does_not_support_it():
    with pytest.raises(DumpStatementError, match=r"line 2 of the dump is DROP SEQUENCE: a sequence.*mysql client"):
        list(split([b"/*!40101 SET NAMES utf8mb4 */;\nDROP SEQUENCE IF EXISTS `s`;\n"]))
