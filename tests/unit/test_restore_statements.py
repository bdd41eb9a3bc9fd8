"""Splitting a dump into statements for the parallel restore, and the deadlock re-run rule."""

from __future__ import annotations

import pymysql
import pytest

from multicloud_dr.restore.mysql_restore import _insert
from multicloud_dr.restore.statements import DATA, POST, SESSION, SKIP, TABLE, lines_of, split

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
    statements = list(split(lines_of(chunks)))
    assert [s.kind for s in statements] == [SESSION, TABLE, TABLE, SKIP, SKIP, DATA, SKIP, SKIP, POST]
    assert statements[5].table == "vet schedule" and statements[5].sql.endswith(b"(2)")
    assert b"INSERT INTO y VALUES (1);" in statements[-1].sql, "the trigger body must stay whole"
    assert not any(b"sandbox" in s.sql for s in statements)


def test_a_dump_cut_inside_a_statement_is_an_error():
    with pytest.raises(ValueError, match="ends inside a statement"):
        list(split(lines_of([DUMP[: DUMP.index(b"(2);")]])))


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
