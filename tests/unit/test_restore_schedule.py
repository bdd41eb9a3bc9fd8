"""The restore's schedule of table sections: costs from the manifest's rows and bytes, costliest first,
and a second connection only for the costliest section when it is more than a fair share."""

from __future__ import annotations

from datetime import UTC, datetime

from multicloud_dr.backup.manifest import Manifest, Segment, StoredObject, TableEntry
from multicloud_dr.progress import MB
from multicloud_dr.restore.mysql_restore import SHARED_SEGMENT, _section_costs, _shared_sections

NAME = "wasb://dr-backups/mysql/petclinic/20261130T030000Z/petclinic.sql.zst"


def _manifest(sections: dict[str, tuple[int, int]], with_segments_for: int | None = None) -> Manifest:
    """sections: table -> (rows, raw bytes of its section), in dump order; a 1 KB header goes first."""
    raws = [1024] + [raw for _, raw in sections.values()]
    if with_segments_for is not None:
        raws = [*raws[:with_segments_for + 1], sum(raws[with_segments_for + 1:])]   # sections merged
    segments, offset = [], 0
    for raw in raws:
        segments.append(Segment(offset=offset, bytes=raw // 4, raw_bytes=raw))
        offset += raw // 4
    when = datetime(2026, 11, 30, 3, tzinfo=UTC)
    return Manifest(backup_id="petclinic/20261130T030000Z", database="petclinic", logical_date=when, source={},
                    started_at=when, finished_at=when, stored_at=when, tools={}, codec="zstd",
                    objects=[StoredObject(name=NAME, bytes=offset, sha256="0" * 64, raw_bytes=sum(raws),
                                          segments=segments)],
                    tables={t: TableEntry(rows=rows, crc32="00000000") for t, (rows, _) in sections.items()})


def _work(manifest: Manifest) -> list:
    return [(obj, i, s) for obj in manifest.objects for i, s in enumerate(obj.segments)][1:]


SECTIONS = {"audit_log": (1_066_145, 163 * MB), "owners": (98_299, 15 * MB), "pet_photos": (73_957, 617 * MB),
            "visits": (546_825, 53 * MB)}


def test_rows_weigh_more_than_bytes_and_each_section_gets_its_own_tables_rows():
    manifest = _manifest(SECTIONS)
    costs = _section_costs(manifest, _work(manifest))
    order = [list(SECTIONS)[index - 1] for (_, index) in sorted(costs, key=lambda k: -costs[k])]
    # The keyless log (1M rows, 163 MB) costs more than the BLOB table (74k rows, 617 MB): it starts first.
    assert order == ["audit_log", "pet_photos", "visits", "owners"]


def test_without_one_segment_per_table_rows_are_estimated_from_the_bytes():
    manifest = _manifest(SECTIONS, with_segments_for=2)   # the last two tables' sections in one segment
    costs = _section_costs(manifest, _work(manifest))
    by_index = {index: cost for (_, index), cost in costs.items()}
    assert len(by_index) == 3 and max(by_index, key=by_index.__getitem__) == 3   # the merged, biggest one


def test_only_the_costliest_section_shares_and_only_when_it_is_more_than_a_fair_share():
    costs = {(NAME, 1): 10.0, (NAME, 2): 2.0, (NAME, 3): 1.0}
    big = dict.fromkeys(costs, SHARED_SEGMENT)
    assert _shared_sections(costs, big, jobs=4) == {(NAME, 1)}
    assert _shared_sections(costs, big, jobs=1) == set(), "one connection: nothing to share with"
    balanced = {(NAME, 1): 3.0, (NAME, 2): 3.0, (NAME, 3): 2.9}
    assert _shared_sections(balanced, big, jobs=2) == set(), "a fair share needs no second connection"
    small = dict.fromkeys(costs, SHARED_SEGMENT - 1)
    assert _shared_sections(costs, small, jobs=4) == set(), "a small section never shares"
