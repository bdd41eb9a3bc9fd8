"""The frontend sync's decision per object, without servers: what is copied, what is left alone, and
that nothing the source still has is ever deleted."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multicloud_dr.frontend.sync import (
    CopyObject,
    HashingReader,
    SourceObject,
    copies_report,
    decide,
    is_folder_marker,
    plan,
)

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def src(key: str = "index.html", size: int = 10, etag: str = "e1") -> SourceObject:
    return SourceObject(key, size, etag)


def cp(key: str = "index.html", size: int = 10, sha256: str | None = SHA_A, source_etag: str | None = "e1"
       ) -> CopyObject:
    return CopyObject(key, size, version="v1", sha256=sha256, source_etag=source_etag)


def test_new_object_is_copied():
    d = decide("index.html", src(), None)
    assert d.action == "copy" and "new" in d.reason


def test_unchanged_object_is_skipped_without_reading_the_source():
    """Same size and the ETag the copy was verified from: up to date, no read needed."""
    d = decide("index.html", src(), cp())
    assert d.action == "skip"
    assert d.sha256 == SHA_A


def test_changed_size_is_copied():
    d = decide("index.html", src(size=11), cp(size=10))
    assert d.action == "copy" and "size" in d.reason


def test_changed_etag_same_size_needs_the_source_hash_first():
    d = decide("index.html", src(etag="e2"), cp())
    assert d.action == "check"


def test_changed_hash_is_copied():
    d = decide("index.html", src(etag="e2"), cp(), source_sha256=SHA_B)
    assert d.action == "copy" and "SHA-256" in d.reason


def test_same_hash_under_a_new_etag_only_retags():
    """Re-uploaded with the same bytes (or in another number of parts): no copy, only source_etag updated."""
    d = decide("index.html", src(etag="e2"), cp(), source_sha256=SHA_A)
    assert d.action == "retag"


def test_same_hash_and_etag_is_skipped():
    assert decide("index.html", src(), cp(), source_sha256=SHA_A).action == "skip"


def test_a_copy_never_verified_is_copied_again():
    """No sha256 on the copy: written by someone else, or a run that failed before verifying it."""
    d = decide("index.html", src(), cp(sha256=None, source_etag=None))
    assert d.action == "copy" and "never verified" in d.reason


def test_a_recorded_etag_with_a_different_size_is_still_copied():
    """The copy was overwritten with other bytes that kept our metadata: its size gives it away."""
    assert decide("index.html", src(size=10), cp(size=9)).action == "copy"


def test_extra_object_is_kept_without_delete_removed():
    d = decide("old.js", None, cp("old.js"))
    assert d.action == "extra"


def test_extra_object_is_deleted_with_delete_removed():
    d = decide("old.js", None, cp("old.js"), delete_removed=True)
    assert d.action == "delete"


def test_neither_side_is_an_error():
    with pytest.raises(ValueError):
        decide("x", None, None)


def test_plan_covers_both_sides_in_key_order_and_uses_known_hashes():
    sources = [src("b.html", etag="e2"), src("a.html"), src("new.css")]
    copies = [cp("a.html"), cp("b.html"), cp("gone.js")]
    decisions = plan(sources, copies, delete_removed=True, hashes={("b.html", "e2"): SHA_A})
    assert [(d.key, d.action) for d in decisions] == [
        ("a.html", "skip"), ("b.html", "retag"), ("gone.js", "delete"), ("new.css", "copy")]


def test_a_hash_known_for_another_etag_is_not_used():
    decisions = plan([src("a.html", etag="e3")], [cp("a.html")], hashes={("a.html", "e2"): SHA_A})
    assert decisions[0].action == "check"


def test_nested_unicode_and_spaced_keys_are_matched_as_they_are():
    key = "assets/fonts and icons/ünïcødé 日本語.woff2"
    assert plan([src(key)], [cp(key)])[0].action == "skip"


def test_folder_markers_are_ignored():
    assert is_folder_marker("assets/", 0)
    assert not is_folder_marker("assets/", 3)
    assert not is_folder_marker("index.html", 0)


keys = st.text(alphabet=st.sampled_from("ab/ é日"), min_size=1, max_size=6)
sources_st = st.dictionaries(keys, st.tuples(st.integers(0, 3), st.sampled_from(["e1", "e2"])), max_size=8)
copies_st = st.dictionaries(keys, st.tuples(st.integers(0, 3), st.sampled_from([SHA_A, SHA_B, None]),
                                            st.sampled_from(["e1", "e2", None])), max_size=8)


@given(sources_st, copies_st, st.booleans())
def test_property_a_key_the_source_has_is_never_deleted(sources, copies, delete_removed):
    decisions = plan([SourceObject(k, s, e) for k, (s, e) in sources.items()],
                     [CopyObject(k, s, "v", h, e) for k, (s, h, e) in copies.items()], delete_removed=delete_removed)
    assert {d.key for d in decisions} == set(sources) | set(copies)
    for d in decisions:
        if d.key in sources:
            assert d.action in ("copy", "check", "skip", "retag")
        else:
            assert d.action == ("delete" if delete_removed else "extra")


def test_hashing_reader_hands_over_every_byte_in_any_read_size():
    data = bytes(range(256)) * 1000
    chunks = [data[i:i + 7777] for i in range(0, len(data), 7777)]
    reader = HashingReader(chunks)
    out = bytearray()
    while part := reader.read(4096):
        out += part
    assert bytes(out) == data and reader.bytes == len(data) == reader.tell()
    assert reader.sha256 == hashlib.sha256(data).hexdigest()


def test_copies_report_names_a_copy_without_result():
    ok = {"copies": [{"url": "wasb://frontend/site", "copied": 1, "bytes_copied": 10, "skipped": 2, "deleted": 0,
                      "extra": 1}]}
    report = copies_report(["wasb://frontend/site", "gs://dr/site"], [ok, None])
    assert not report.ok and report.failed == ["gs://dr/site"]
    assert "gs://dr/site: NO RESULT" in report.message
