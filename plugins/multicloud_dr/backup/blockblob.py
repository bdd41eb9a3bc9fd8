"""Upload one stream to a block blob as staged blocks, committed once at the end.

- Block ids are deterministic (the block's index), so a retry of the same run re-stages the same
  ids instead of piling up new ones, and nothing is visible to readers until the single commit.
- The commit is conditional (If-None-Match: *). If the blob already exists, its SHA-256 (kept in
  its metadata) is compared with ours: equal means an earlier commit whose response was lost (F6)
  and counts as success; different is a hard failure, never an overwrite.
- A block blob holds at most 50,000 blocks, so the block size doubles every `tier_blocks` blocks;
  a stream that would still need a 50,001st block fails before anything is committed (F13).
- Memory stays bounded whatever the stream's size (F14): at most `max_inflight_bytes` of blocks are
  queued or uploading, and writers wait for room.
- Each block is retried with exponential backoff on connection errors and 5xx answers (F7).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceRequestError, ServiceResponseError
from azure.storage.blob import BlobBlock, BlobClient, ContentSettings

from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)

MAX_BLOCKS = 50_000
MAX_BLOCK_SIZE = 4000 * 1024 * 1024  # service limit per block (API 2019-12-12 and later)
SHA256_METADATA = "sha256"


class UploadError(DrError):
    """The upload could not complete; nothing was committed."""


class BlobConflictError(DrError):
    """The blob exists with different content: never overwritten."""


@dataclass(frozen=True)
class CommittedBlob:
    name: str
    bytes: int
    sha256: str
    blocks: int
    already_existed: bool
    stored_at: datetime | None = None   # the storage server's Last-Modified of the committed blob


def _retryable(err: BaseException) -> bool:
    if isinstance(err, (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError)):
        return True
    return isinstance(err, HttpResponseError) and (err.status_code or 0) in (408, 429, 500, 502, 503, 504)


def with_retries(fn, what: str, attempts: int = 6, first_delay: float = 0.5, max_delay: float = 8.0):
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as err:
            if not _retryable(err) or attempt == attempts:
                raise
            log.warning("%s failed (%s: %s); retry %d/%d in %.1f s", what, type(err).__name__,
                        str(err).splitlines()[0][:200], attempt, attempts - 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


class StagedBlockWriter:
    def __init__(self, blob: BlobClient, *, block_size: int = 8 * 1024 * 1024, tier_blocks: int = 10_000,
                 max_block_size: int = MAX_BLOCK_SIZE, max_inflight_bytes: int = 64 * 1024 * 1024,
                 concurrency: int = 4, max_blocks: int = MAX_BLOCKS) -> None:
        if block_size <= 0 or tier_blocks <= 0:
            raise ValueError("block_size and tier_blocks must be positive")
        self.blob = blob
        self.block_size = block_size
        self.tier_blocks = tier_blocks
        self.max_block_size = min(max_block_size, MAX_BLOCK_SIZE)
        self.max_blocks = max_blocks
        self.max_inflight = max_inflight_bytes
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="stage-block")
        self._buffer = bytearray()
        self._ids: list[str] = []
        self._futures: list[Future] = []
        self._inflight = 0
        self._room = threading.Condition()
        self._error: BaseException | None = None
        self._sha = hashlib.sha256()
        self.bytes = 0

    # Block ids must all have the same length within a blob; the SDK base64-encodes them.
    @staticmethod
    def block_id(index: int) -> str:
        return f"mcdr-{index:08d}"

    def _size_for(self, index: int) -> int:
        return min(self.block_size << (index // self.tier_blocks), self.max_block_size)

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise UploadError(f"staging blocks of {self.blob.blob_name} failed: {self._error}") from self._error
        if not data:
            return
        self._sha.update(data)
        self.bytes += len(data)
        self._buffer += data
        size = self._size_for(len(self._ids))
        while len(self._buffer) >= size:
            block = bytes(self._buffer[:size])
            del self._buffer[:size]
            self._submit(block)
            size = self._size_for(len(self._ids))

    def _submit(self, block: bytes) -> None:
        index = len(self._ids)
        if index >= self.max_blocks:
            raise UploadError(
                f"{self.blob.blob_name}: the stream needs more than {self.max_blocks:,} blocks even at "
                f"{self._size_for(index) / 2**20:.0f} MiB per block; nothing was committed. Raise the block "
                f"size (block_size) or split the backup")
        block_id = self.block_id(index)
        self._ids.append(block_id)
        with self._room:
            while self._inflight and self._inflight + len(block) > self.max_inflight and self._error is None:
                self._room.wait()
            self._inflight += len(block)
        self._futures.append(self._pool.submit(self._stage, block_id, block))

    def _stage(self, block_id: str, block: bytes) -> None:
        try:
            with_retries(lambda: self.blob.stage_block(block_id, block, length=len(block)),
                         f"stage block {block_id} of {self.blob.blob_name}")
        except BaseException as err:
            self._error = self._error or err
            raise
        finally:
            with self._room:
                self._inflight -= len(block)
                self._room.notify_all()

    def finish(self) -> tuple[list[str], str]:
        """Flush the last block and wait for every block; returns (block ids, sha256)."""
        try:
            if self._buffer:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            for future in self._futures:
                future.result()
        except UploadError:
            raise
        except Exception as err:
            raise UploadError(f"staging blocks of {self.blob.blob_name} failed: {err}") from err
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return list(self._ids), self._sha.hexdigest()

    def abort(self) -> None:
        """Stop uploading (uncommitted blocks are discarded by the service after a week)."""
        self._error = self._error or UploadError("aborted")
        with self._room:
            self._room.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)


def commit(blob: BlobClient, block_ids: list[str], sha256: str, size: int, content_type: str,
           metadata: dict[str, str] | None = None) -> CommittedBlob:
    """Commit the staged blocks, only if the blob does not exist yet (F6: compare on 'exists')."""
    meta = {SHA256_METADATA: sha256, "bytes": str(size), **(metadata or {})}
    try:
        response = with_retries(lambda: blob.commit_block_list([BlobBlock(block_id=b) for b in block_ids],
                                                    content_settings=ContentSettings(content_type=content_type),
                                                    metadata=meta,
                                                    match_condition=MatchConditions.IfMissing),
                     f"commit {blob.blob_name}")
        return CommittedBlob(blob.blob_name, size, sha256, len(block_ids), already_existed=False,
                             stored_at=response.get("last_modified"))
    except ResourceExistsError:
        return existing_matches(blob, sha256, size, len(block_ids))
    except HttpResponseError as err:
        if err.status_code in (409, 412):  # condition failed: it exists
            return existing_matches(blob, sha256, size, len(block_ids))
        raise


def existing_matches(blob: BlobClient, sha256: str, size: int, blocks: int) -> CommittedBlob:
    props = blob.get_blob_properties()
    theirs = (props.metadata or {}).get(SHA256_METADATA)
    if theirs == sha256 and props.size == size:
        log.info("%s already exists with the same SHA-256 (an earlier commit whose answer was lost): kept",
                 blob.blob_name)
        return CommittedBlob(blob.blob_name, size, sha256, blocks, already_existed=True,
                             stored_at=props.last_modified)
    raise BlobConflictError(
        f"{blob.container_name}/{blob.blob_name} already exists with different content "
        f"(sha256 {theirs or 'unknown'}, {props.size} bytes; ours {sha256}, {size} bytes). It was not "
        f"overwritten: move it aside or choose another backup prefix")
