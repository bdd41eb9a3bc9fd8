"""The dump scanner: exact row counts, coordinates and the footer, whatever the chunk boundaries."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.backup.scan import DumpScanner

MARIADB_DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=925156498;

--
-- Table structure for table `owners`
--

CREATE TABLE `owners` (
  `id` int(11) NOT NULL,
  `note` text
) ENGINE=InnoDB;

--
-- Dumping data for table `owners`
--

LOCK TABLES `owners` WRITE;
/*!40000 ALTER TABLE `owners` DISABLE KEYS */;
INSERT INTO `owners` VALUES
(1,'a line\\nwith an escaped newline'),
(2,'(not a row'),
(3,NULL);
INSERT INTO `owners` VALUES
(4,'x');
/*!40000 ALTER TABLE `owners` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `vet schedule`
--

CREATE TABLE `vet schedule` (`id` int);

--
-- Dumping data for table `vet schedule`
--

LOCK TABLES `vet schedule` WRITE;
UNLOCK TABLES;
DELIMITER ;;
CREATE PROCEDURE p()
BEGIN
(SELECT 1);
END ;;
DELIMITER ;
-- SET GLOBAL gtid_slave_pos='0-1-2873';

-- Dump completed on 2026-11-22  3:01:34
"""

MYSQL_DUMP = b"""-- MySQL dump 10.13  Distrib 8.0.40, for Linux (x86_64)
-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=157;
-- Table structure for table `t`
--
CREATE TABLE `t` (`id` int, `s` varchar(20));
--
-- Dumping data for table `t`
--

LOCK TABLES `t` WRITE;
INSERT INTO `t` VALUES (1,'a),(b'),(2,'it\\'s),('),(3,'back\\\\'),(4,NULL);
INSERT INTO `t` VALUES (5,'x');
UNLOCK TABLES;
-- Dump completed on 2026-11-22 03:01:34
"""


def scan(data: bytes, sizes: list[int] | None = None):
    scanner = DumpScanner()
    pos = 0
    for size in sizes or [len(data)]:
        scanner.feed(data[pos:pos + size])
        pos += size
    scanner.feed(data[pos:])
    return scanner.finish()


def test_mariadb_layout_rows_coordinates_and_footer():
    result = scan(MARIADB_DUMP)
    assert {n: t.rows for n, t in result.tables.items()} == {"owners": 4, "vet schedule": 0}
    assert result.structures == ["owners", "vet schedule"]
    assert (result.binlog_file, result.binlog_position, result.gtid) == ("mysql-bin.000002", 925156498, "0-1-2873")
    assert result.complete


def test_mysql_layout_counts_rows_outside_quoted_strings():
    result = scan(MYSQL_DUMP)
    assert result.tables["t"].rows == 5
    assert (result.binlog_file, result.binlog_position) == ("binlog.000007", 157)
    assert result.complete


def test_a_cut_dump_is_not_complete():
    assert not scan(MARIADB_DUMP[: len(MARIADB_DUMP) - 60]).complete
    assert not scan(MARIADB_DUMP + b"garbage after the footer\n").complete


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=97), max_size=60))
def test_any_chunking_gives_the_same_result(sizes):
    whole = scan(MARIADB_DUMP)
    parts = scan(MARIADB_DUMP, sizes)
    assert {n: (t.rows, t.crc32) for n, t in parts.tables.items()} == {
        n: (t.rows, t.crc32) for n, t in whole.tables.items()}
    assert (parts.gtid, parts.binlog_position, parts.complete) == (whole.gtid, whole.binlog_position, True)


# How MariaDB's mysqldump writes names with a newline and a backquote: in comments each newline of the name
# is "\n-- ", in SQL the name is as is; a backquote is doubled.
HOSTILE_DUMP = b"""-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Table structure for table `new
-- line`
--

CREATE TABLE `new
line` (
  `id` int(11) NOT NULL
) ENGINE=InnoDB;

--
-- Dumping data for table `new
-- line`
--

LOCK TABLES `new
line` WRITE;
INSERT INTO `new
line` VALUES
(1),
(2),
(3);
UNLOCK TABLES;

--
-- Table structure for table `tick``
-- -- Dump completed`
--

--
-- Dumping data for table `tick``
-- -- Dump completed`
--

LOCK TABLES `tick``
-- Dump completed` WRITE;
INSERT INTO `tick``
-- Dump completed` VALUES
(1),
(2);
UNLOCK TABLES;
-- Dump completed on 2026-11-22  3:39:15
"""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(HOSTILE_DUMP) - 1), max_size=12, unique=True))
def test_names_with_newlines_and_backquotes_are_read_whole_whatever_the_chunks(cuts):
    scanner = DumpScanner()
    bounds = [0, *sorted(cuts), len(HOSTILE_DUMP)]
    for a, b in itertools.pairwise(bounds):
        scanner.feed(HOSTILE_DUMP[a:b])
    result = scanner.finish()
    assert result.structures == ["new\nline", "tick`\n-- Dump completed"]
    assert {name: stats.rows for name, stats in result.tables.items()} == {"new\nline": 3,
                                                                          "tick`\n-- Dump completed": 2}
    assert result.complete
