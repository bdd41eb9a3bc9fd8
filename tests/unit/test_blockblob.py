"""Staged-block upload rules, at the SDK boundary (a fake BlobClient: Azurite has no 50,000-block cap
and cannot be made slow or flaky on demand; the real-service paths are in tests/integration)."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from multicloud_dr.backup.blockblob import StagedBlockWriter, UploadError

MB = 1024 * 1024


class FakeBlob:
    blob_name = "db/20261101T030000Z/db.sql.zst"
    container_name = "dr-backups"

    def __init__(self, delay: float = 0.0, fail_first: int = 0, error: Exception | None = None) -> None:
        self.delay = delay
        self.fail_first = fail_first
        self.error = error
        self.staged: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def stage_block(self, block_id, data, length=None):
        with self.lock:
            self.attempts[block_id] = self.attempts.get(block_id, 0) + 1
            attempt = self.attempts[block_id]
        if self.error is not None:
            raise self.error
        if attempt <= self.fail_first:
            raise ServiceRequestError("connection reset by peer")
        time.sleep(self.delay)
        with self.lock:
            self.staged[block_id] = len(data)


def test_block_ids_are_deterministic_and_equal_length():
    ids = [StagedBlockWriter.block_id(i) for i in (0, 7, 49_999)]
    assert ids == ["mcdr-00000000", "mcdr-00000007", "mcdr-00049999"]
    assert len({len(i) for i in ids}) == 1


def test_f13_block_size_doubles_every_tier():
    blob = FakeBlob()
    writer = StagedBlockWriter(blob, block_size=10, tier_blocks=3, max_blocks=1000)
    writer.write(b"x" * (3 * 10 + 3 * 20 + 3 * 40 + 5))
    ids, _ = writer.finish()
    assert [blob.staged[i] for i in ids] == [10] * 3 + [20] * 3 + [40] * 3 + [5]


def test_f13_more_blocks_than_allowed_fails_before_commit_with_a_clear_error():
    writer = StagedBlockWriter(FakeBlob(), block_size=10, tier_blocks=2, max_block_size=20, max_blocks=5)
    with pytest.raises(UploadError, match=r"more than 5 blocks.*nothing was committed"):
        writer.write(b"x" * 500)
    writer.abort()


def test_f7_each_block_is_retried_until_it_succeeds(monkeypatch):
    monkeypatch.setattr("multicloud_dr.backup.blockblob.time.sleep", lambda s: None)
    blob = FakeBlob(fail_first=2)
    writer = StagedBlockWriter(blob, block_size=100)
    payload = bytes(range(256)) * 10
    writer.write(payload)
    ids, _ = writer.finish()
    assert sum(blob.staged[i] for i in ids) == len(payload)
    assert all(blob.attempts[i] == 3 for i in ids)


def test_a_non_retryable_error_fails_fast():
    error = HttpResponseError(message="AuthorizationFailure")
    error.status_code = 403
    writer = StagedBlockWriter(FakeBlob(error=error), block_size=10)
    writer.write(b"x" * 10)
    t0 = time.monotonic()
    with pytest.raises(UploadError, match="AuthorizationFailure"):
        writer.finish()
    assert time.monotonic() - t0 < 2


def test_f14_memory_stays_bounded_by_the_in_flight_limit():
    """256 MB through a slow service: traced memory peaks near the in-flight limit, not the stream size."""
    blob = FakeBlob(delay=0.002)
    writer = StagedBlockWriter(blob, block_size=1 * MB, max_inflight_bytes=8 * MB, concurrency=4)
    chunk = b"y" * MB
    tracemalloc.start()
    try:
        for _ in range(256):
            writer.write(chunk)
        writer.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(blob.staged.values()) == 256 * MB
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MB for a 256 MB stream"
