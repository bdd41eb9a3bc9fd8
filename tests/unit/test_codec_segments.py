"""The backup's zstd stream is one frame per table section: `zstd -dc` still reads it as one stream, each
segment decompresses alone to exactly its section, and verification can see where the frames start."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.backup.codec import Decompressor, SegmentedCompressor


def _dump(rows_per_table: list[int]) -> bytes:
    parts = [b"/*M!999999\\- enable the sandbox mode */\n-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n"]
    for i, rows in enumerate(rows_per_table):
        parts.append(b"\n--\n-- Table structure for table `t%d`\n--\n\nCREATE TABLE `t%d` (id int);\n" % (i, i))
        if rows:
            parts.append(b"INSERT INTO `t%d` VALUES " % i + b",\n".join(b"(%d)" % r for r in range(rows)) + b";\n")
    parts.append(b"-- Dump completed on 2026-11-22\n")
    return b"".join(parts)


def _compress(raw: bytes, chunk: int) -> tuple[bytes, SegmentedCompressor]:
    comp = SegmentedCompressor("zstd")
    out = b"".join(comp.compress(raw[i:i + chunk]) for i in range(0, len(raw), chunk)) + comp.flush()
    return out, comp


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.integers(0, 400), min_size=0, max_size=12), chunk=st.integers(1, 5000))
def test_segments_are_the_table_sections_whatever_the_chunking(rows, chunk):
    raw = _dump(rows)
    out, comp = _compress(raw, chunk)
    assert comp.bytes == len(out) and comp.raw_bytes == len(raw)
    assert len(comp.segments) == len(rows) + 1   # the header, then one per table
    pieces = []
    for offset, size, raw_size in comp.segments:
        decomp = Decompressor("zstd")
        piece = decomp.decompress(out[offset:offset + size])
        assert decomp.finished() and len(piece) == raw_size and decomp.frame_starts == [0]
        pieces.append(piece)
    assert b"".join(pieces) == raw
    for i, piece in enumerate(pieces[1:]):
        assert piece.startswith(b"-- Table structure for table `t%d`" % i)
    whole = Decompressor("zstd")
    assert b"".join(whole.decompress(out[i:i + chunk]) for i in range(0, len(out), chunk)) == raw
    assert whole.finished() and whole.frame_starts == [s[0] for s in comp.segments]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is not installed")
def test_the_standard_tool_reads_all_frames_as_one_stream():
    raw = _dump([50, 0, 300])
    out, _ = _compress(raw, 1000)
    assert subprocess.run(["zstd", "-dc"], input=out, capture_output=True, check=True).stdout == raw


def test_a_truncated_last_frame_is_not_finished():
    raw = _dump([300, 300])
    out, _ = _compress(raw, 4096)
    decomp = Decompressor("zstd")
    decomp.decompress(out[:-5])
    assert not decomp.finished()


def test_gzip_stays_one_member():
    comp = SegmentedCompressor("gzip")
    out = comp.compress(_dump([10, 10])) + comp.flush()
    assert comp.segments == [] and Decompressor("gzip").decompress(out) == _dump([10, 10])


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_download_chunk_decompresses_in_bounded_pieces(codec, monkeypatch):
    """A 16 MiB download chunk of rows that compress ~10:1 must not come out as one ~160 MB piece
    (F14): pieces() gives what each slice of it decompresses to, and all of it, frames included. (The
    slice is made small here so that a small dump spans many.)"""
    from multicloud_dr.backup import codec as codec_module

    monkeypatch.setattr(codec_module, "SLICE", 4 * 1024)
    raw = _dump([40_000, 30_000, 35_000])
    comp = SegmentedCompressor(codec)
    out = comp.compress(raw) + comp.flush()
    assert len(out) > 8 * codec_module.SLICE, "the test needs a chunk of several slices"
    decomp = Decompressor(codec)
    pieces = list(decomp.pieces(out))   # the whole object as one download chunk
    assert b"".join(pieces) == raw and decomp.finished()
    assert len(pieces) == -(-len(out) // codec_module.SLICE)
    assert max(map(len, pieces)) < len(raw) // 4, "one slice decompressed most of the chunk at once"
