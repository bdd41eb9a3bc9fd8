"""Compression for the dump stream: zstd (default, multithreaded) or gzip (for compatibility).
Either output is readable by the standard tools alone (`zstd -dc`, `gunzip -c`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import zstandard

from multicloud_dr.exceptions import ConfigError

CODECS = ("zstd", "gzip")
CONTENT_TYPE = {"zstd": "application/zstd", "gzip": "application/gzip"}
# Level 1: ~7x on row data at ~450 MB/s per core. On a small worker the dump tool and the server
# already use most of the CPU, so a higher level would make compression the bottleneck.
ZSTD_LEVEL = 1
SLICE = 1 << 20   # compressed bytes decompressed at a time (see Decompressor.pieces)


def compressor(codec: str, threads: int = 2):
    """An object with compress(bytes) -> bytes and flush() -> bytes."""
    if codec == "zstd":
        # threads>0 hands the work to zstd's own worker threads (outside the GIL), so compression
        # overlaps with reading the dump and uploading blocks.
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads, write_checksum=True).compressobj()
    if codec == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 31)
    raise ConfigError(f"unknown codec {codec!r}: use one of {', '.join(CODECS)}")


class Decompressor:
    """Streaming decompression that knows whether the compressed stream really ended (F4).

    A stream may be several frames (zstd) or members (gzip) one after another, as `zstd -dc` and
    `gunzip -c` read them: the backup writes one zstd frame per table section (`SegmentedCompressor`).
    `frame_starts` records the compressed offset at which each frame began."""

    def __init__(self, codec: str) -> None:
        if codec not in CODECS:
            raise ConfigError(f"unknown codec {codec!r}")
        self.codec = codec
        self._z = self._new()
        self.consumed = 0             # compressed bytes given so far
        self.frame_starts = [0]
        self.frame_raw = [0]          # bytes each frame decompressed to

    def _new(self):
        if self.codec == "zstd":
            # Each frame carries its own checksum: eof is reached only at the frame's end.
            return zstandard.ZstdDecompressor().decompressobj()
        return zlib.decompressobj(31)

    def decompress(self, data: bytes) -> bytes:
        out = []
        start = self.consumed
        self.consumed += len(data)
        while data:
            if self._z.eof:   # the previous frame ended exactly where this input begins
                self._z = self._new()
                self.frame_starts.append(start)
                self.frame_raw.append(0)
            out.append(self._z.decompress(data))
            self.frame_raw[-1] += len(out[-1])
            if not self._z.eof:
                break
            rest = self._z.unused_data
            start = self.consumed - len(rest)
            data = rest
        return b"".join(out)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """decompress() `data` a slice at a time. Downloads come in 16 MiB chunks, and rows compress up
        to 10:1: one chunk decompressed at once would be a 160 MB piece in memory, a slice ~10 MB."""
        view = memoryview(data)
        for start in range(0, len(view), SLICE):
            yield self.decompress(view[start:start + SLICE])

    def finished(self) -> bool:
        """The compressed stream ended at the end of a frame, with nothing after it."""
        return bool(self._z.eof) and not self._z.unused_data


# mysqldump starts each table's section with this comment line; a new zstd frame starts there, so a
# restore can fetch and decompress any table's section alone (a ranged read), and load several
# tables at once. The object stays one stream for `zstd -dc FILE | mysql`.
TABLE_SECTION = b"\n-- Table structure for table `"


class SegmentedCompressor:
    """compress()/flush() like `compressor()`, ending a zstd frame before every table section.
    `segments` lists each frame's (offset, bytes, raw_bytes) once flushed; gzip is one member."""

    def __init__(self, codec: str, threads: int = 2) -> None:
        self.codec = codec
        self.threads = threads
        self._comp = compressor(codec, threads)
        self._pending = b""           # the last bytes seen: a section marker may continue in the next chunk
        self.segments: list[tuple[int, int, int]] = []
        self._start = (0, 0)          # current frame's (offset, raw offset)
        self.bytes = 0                # compressed bytes produced
        self.raw_bytes = 0

    def _out(self, data: bytes) -> bytes:
        self.bytes += len(data)
        return data

    def _cut(self, raw_offset: int) -> bytes:
        tail = self._out(self._comp.flush())
        offset, raw_start = self._start
        self.segments.append((offset, self.bytes - offset, raw_offset - raw_start))
        self._start = (self.bytes, raw_offset)
        self._comp = compressor(self.codec, self.threads)
        return tail

    def compress(self, chunk: bytes) -> bytes:
        if self.codec != "zstd":
            self.raw_bytes += len(chunk)
            return self._out(self._comp.compress(chunk))
        data = self._pending + chunk
        base = self.raw_bytes - len(self._pending)   # raw offset of data[0]
        self.raw_bytes += len(chunk)
        # Everything but the last len(marker)-1 bytes can be compressed now: a marker found in `data`
        # always starts before that limit, and one that does not fit yet cannot start before it.
        limit = len(data) - (len(TABLE_SECTION) - 1)
        if limit <= 0:
            self._pending = data
            return b""
        out = []
        pos = 0
        found = data.find(TABLE_SECTION)
        while found >= 0:
            cut = found + 1   # the marker line itself opens the new frame
            out.append(self._out(self._comp.compress(data[pos:cut])))
            out.append(self._cut(base + cut))
            pos = cut
            found = data.find(TABLE_SECTION, cut)
        out.append(self._out(self._comp.compress(data[pos:limit])))
        self._pending = data[limit:]
        return b"".join(out)

    def flush(self) -> bytes:
        if self.codec != "zstd":
            out = self._out(self._comp.flush())
            self.segments = []
            return out
        out = self._out(self._comp.compress(self._pending))
        self._pending = b""
        return out + self._cut(self.raw_bytes)
