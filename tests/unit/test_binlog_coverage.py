"""The binlog archive's continuity (backup/binlog.py coverage) and the RPO it gives (replication/result.py)."""

from __future__ import annotations

from multicloud_dr.backup.binlog import Piece, coverage, file_key, header_length, local_position
from multicloud_dr.replication.result import BREACH, OK, CheckResult, summarize


def piece(file: str, start: int, end: int, closed: bool = False, at: str | None = "2026-12-01T10:00:00+00:00"):
    return Piece(file=file, start=start, end=end, bytes=end - start + 256, sha256="0" * 64, closed=closed,
                 binlog_format="ROW", last_event_at=at, first_event_at=at, last_gtid="0-1-9" if at else None)


def test_pieces_in_order_across_a_rotation_are_whole():
    pieces = [piece("b.000002", 4, 900), piece("b.000001", 500, 800), piece("b.000001", 800, 1000, closed=True)]
    cov = coverage(pieces, "b.000001", 500)
    assert cov.ok and cov.end == ("b.000002", 900) and len(cov.pieces) == 3


def test_a_missing_range_inside_a_file_is_a_gap_and_ends_the_stretch():
    cov = coverage([piece("b.000001", 500, 600), piece("b.000001", 700, 800)], "b.000001", 500)
    assert cov.gaps == ["b.000001 positions 600-700 not archived"] and cov.end == ("b.000001", 600)


def test_a_missing_file_is_a_gap_naming_it():
    cov = coverage([piece("b.000001", 500, 800, closed=True), piece("b.000003", 4, 100)], "b.000001", 500)
    assert len(cov.gaps) == 1 and "b.000002 not archived" in cov.gaps[0] and cov.end == ("b.000001", 800)


def test_an_unclosed_file_followed_by_the_next_one_is_a_gap_from_where_it_stopped():
    cov = coverage([piece("b.000001", 500, 800), piece("b.000002", 4, 100)], "b.000001", 500)
    assert cov.gaps and "b.000001 from position 800" in cov.gaps[0]


def test_pieces_before_the_backup_or_overlapping_do_not_count_twice():
    pieces = [piece("b.000001", 4, 300), piece("b.000001", 300, 700), piece("b.000001", 700, 900)]
    cov = coverage(pieces, "b.000001", 500)
    assert cov.ok and cov.end == ("b.000001", 900)


def test_nothing_archived_yet_is_an_empty_stretch_at_the_start():
    cov = coverage([], "b.000007", 1234)
    assert cov.ok and cov.end == ("b.000007", 1234) and cov.last_event_at is None


def test_binlog_file_order_is_numeric():
    assert sorted(["b.000010", "b.000009", "b.1000000"], key=file_key) == ["b.000009", "b.000010", "b.1000000"]


def test_a_position_maps_into_a_piece_after_its_own_header():
    head = b"\xfebin" + bytes(4) + bytes([15]) + bytes(4) + (252).to_bytes(4, "little") + bytes(300)
    assert header_length(head) == 256
    assert local_position(piece("b.000001", 1000, 2000), 1500, head) == 756
    assert local_position(piece("b.000001", 4, 2000), 1500, head) == 1500


def _check(name, status, value):
    return CheckResult(name, status, value, 100, "")


def test_with_a_whole_archive_the_backup_age_does_not_bound_the_rpo():
    report = summarize([_check("backup_freshness/db", OK, 50_000), _check("binlog_archive/db", OK, 12),
                        _check("mysql_replica/db", OK, 1)], 86400, "now", 0.1)
    assert report.rpo_seconds == 12


def test_without_it_the_backup_age_bounds_the_rpo_as_before():
    report = summarize([_check("backup_freshness/db", OK, 50_000), _check("binlog_archive/db", BREACH, 900)],
                       86400, "now", 0.1)
    assert report.rpo_seconds == 50_000 and report.status == BREACH
