"""The static frontend's DR copies: the primary's S3 bucket (s3://BUCKET/PREFIX) copied object by object
to the DR site's Blob container (wasb://CONTAINER/PREFIX) and/or GCS bucket (gs://BUCKET/PREFIX).

    s3://<bucket>/<prefix>/<key>   ->   wasb://<container>/<prefix>/<key>,  gs://<bucket>/<prefix>/<key>

What counts as "up to date": the copy has the source's size and SHA-256. S3 cannot tell us a SHA-256:
its ETag is the MD5 of the bytes only for a single-part upload without KMS, and for a multipart upload
it is a hash of the parts' hashes ("...-12"), which changes with the part size even for equal bytes.
So the SHA-256 is computed while the source is streamed, and recorded on the copy, after the copy was
read back and verified, as metadata `sha256`, next to `source_etag`: the S3 ETag of the version it was
made from. The ETag is then only a cache key, never a content hash: while the source's ETag and size are
what the copy recorded, the source is not read again. When the ETag changed but the size did not (the
same file uploaded again, or uploaded in another number of parts), the source is read once to hash it:
equal bytes only refresh `source_etag` on the copy, different bytes are copied.

- `decide()` / `plan()` are the whole decision, pure: copy, check (read the source to compare), skip,
  retag (same bytes, new source ETag), delete or extra. Never delete a key the source still has; keys
  the source no longer has are deleted only with `delete_removed`, otherwise reported as `extra`.
  Content type or cache control changed on their own (same bytes) are not detected: S3 lists neither,
  and a HEAD per object on every run would cost more than it saves; re-upload such a source file.
- Streaming: each object goes S3 -> copy in chunks (Blob: staged blocks committed once; GCS: a
  resumable upload), never staged on disk. Memory is about `workers` x 3 x `chunk_size` at most.
- Every write is conditional on what was listed (Blob: If-Match the listed ETag, or If-None-Match: *
  for a new name; GCS: ifGenerationMatch), so a concurrent writer is never silently overwritten.
- Verification: the written copy is read back (size and SHA-256) before `sha256` is set on it. A copy
  without `sha256` is one this tool did not verify, and is copied again on the next run.
- Content type, cache control, content encoding, disposition and language are kept.
- A source that lists no object at all is refused (a wrong prefix, or an emptied bucket, must not turn
  into deleting the DR site); deletes wait until every transfer of that copy succeeded (an old page
  at the copy may still need the old assets).
- Idempotent: a second run reads the two listings and writes nothing.

`run_frontend_sync(topology)` is what `drctl frontend sync` calls; `sync_frontend(config)` and
`sync_copy(...)` are the same for a FrontendConfig and for one copy (one Airflow mapped task per copy).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.exceptions import ConfigError, DrError, InputError
from multicloud_dr.progress import MB, Progress

if TYPE_CHECKING:
    from multicloud_dr.config import FrontendConfig, FrontendCopy, Topology

log = logging.getLogger(__name__)

SHA256_METADATA = "sha256"            # the source's SHA-256, set on a copy only after it was read back and matched
SOURCE_ETAG_METADATA = "source_etag"  # the S3 ETag it was copied from (Azure metadata names are C# identifiers: no -)
DEFAULT_CHUNK_SIZE = 8 * MB           # Blob block / GCS resumable chunk; objects up to this size go in one request
DEFAULT_WORKERS = 4                   # objects transferred at once
READ_CHUNK = 1 * MB                   # S3 and read-back stream reads
GCS_CHUNK_QUANTUM = 256 * 1024        # a resumable upload's chunk size must be a multiple of 256 KiB
MAX_LISTED_CHANGES = 200              # per copy in the JSON result (XCom stays small); the log has every one

Action = Literal["copy", "check", "skip", "retag", "delete", "extra"]


class FrontendSourceError(InputError):
    """The source bucket is missing, unreadable or empty: nothing was copied or deleted."""


class CopyLocationError(InputError):
    """A copy's container or bucket is missing or unreadable: that copy was not touched."""


class SourceChangedError(DrError):
    """The source object changed between listing and reading: run again."""


class ConcurrentChangeError(DrError):
    """Someone else wrote the copy's object while this sync ran: nothing of theirs was overwritten."""


class CopyVerificationError(DrError):
    """Reading the written copy back did not give the source's size and SHA-256."""


class FrontendSyncError(DrError):
    """Some objects or copies failed; `result` is the sync's summary (what did succeed is in place)."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


class FrontendSyncInputError(InputError):
    """Every failure is a missing prerequisite (a container or bucket to create): a retry will not help."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result


# ----------------------------------------------------------------------------------------------
# The decision (pure)


@dataclass(frozen=True)
class SourceObject:
    key: str          # below the source prefix
    size: int
    etag: str         # without quotes


@dataclass(frozen=True)
class CopyObject:
    key: str                     # below the copy's prefix
    size: int
    version: str                 # Blob ETag or GCS generation: what conditional writes and deletes name
    sha256: str | None = None    # recorded after verification; None: not verified by this tool
    source_etag: str | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class Decision:
    key: str
    action: Action
    reason: str
    source: SourceObject | None = None
    copy: CopyObject | None = None
    sha256: str | None = None    # the source's SHA-256 when this decision knew it


def decide(key: str, source: SourceObject | None, copy: CopyObject | None, *, delete_removed: bool = False,
           source_sha256: str | None = None) -> Decision:
    """What to do with one key. `source_sha256`: the source's SHA-256 if this run has read it (for the
    current `source.etag`), else None. A key the source has is never deleted."""
    if source is None and copy is None:
        raise ValueError(f"{key!r} is neither at the source nor at the copy")
    if source is None:
        if delete_removed:
            return Decision(key, "delete", "the source no longer has it (delete_removed)", None, copy)
        return Decision(key, "extra", "the source no longer has it (kept: delete_removed is false)", None, copy)
    if copy is None:
        return Decision(key, "copy", "new at the source", source, None, source_sha256)
    if copy.size != source.size:
        return Decision(key, "copy", f"size differs (source {source.size:,} bytes, copy {copy.size:,})", source, copy,
                        source_sha256)
    if copy.sha256 is None:
        return Decision(key, "copy", "the copy was never verified (no sha256 recorded)", source, copy, source_sha256)
    if source_sha256 is not None:
        if source_sha256 != copy.sha256:
            return Decision(key, "copy", "content differs (SHA-256)", source, copy, source_sha256)
        if copy.source_etag != source.etag:
            return Decision(key, "retag", "same bytes, new source ETag: only the copy's source_etag is updated",
                            source, copy, source_sha256)
        return Decision(key, "skip", "same size and SHA-256", source, copy, source_sha256)
    if copy.source_etag == source.etag:
        return Decision(key, "skip", "same size, and the source ETag the copy was verified from", source, copy,
                        copy.sha256)
    return Decision(key, "check", "same size but the source ETag changed: the source is read to compare", source,
                    copy)


def plan(sources: Iterable[SourceObject], copies: Iterable[CopyObject], *, delete_removed: bool = False,
         hashes: Mapping[tuple[str, str], str] | None = None) -> list[Decision]:
    """One decision per key of either side, in key order. `hashes`: (key, source ETag) -> SHA-256 the run
    has computed already."""
    by_source = {s.key: s for s in sources}
    by_copy = {c.key: c for c in copies}
    hashes = hashes or {}
    decisions = []
    for key in sorted(by_source.keys() | by_copy.keys()):
        source = by_source.get(key)
        known = hashes.get((key, source.etag)) if source else None
        decision = decide(key, source, by_copy.get(key), delete_removed=delete_removed, source_sha256=known)
        # The rule that matters most, checked where the plan is made: what the source has is never deleted.
        assert not (decision.action == "delete" and key in by_source), key
        decisions.append(decision)
    return decisions


def is_folder_marker(key: str, size: int) -> bool:
    """A zero-byte `dir/` object (what consoles create for "folders"): no web page needs it, and not every
    storage service keeps such names. Ignored on both sides."""
    return size == 0 and key.endswith("/")


# ----------------------------------------------------------------------------------------------
# Streams


@dataclass(frozen=True)
class ContentHeaders:
    """The HTTP headers a static site depends on, carried from S3 to each copy."""

    content_type: str | None = None
    cache_control: str | None = None
    content_encoding: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None


class HashingReader:
    """A forward-only file object over chunks (an S3 body) for an uploader to read: hashes and counts
    what passes through; holds at most one chunk plus the requested read."""

    def __init__(self, chunks: Iterable[bytes], on_bytes: Callable[[int], None] | None = None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._sha = hashlib.sha256()
        self._on_bytes = on_bytes
        self.bytes = 0
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes

    def close(self) -> None:
        self.closed = True

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def read(self, size: int | None = -1) -> bytes:
        out = bytearray()
        while size is None or size < 0 or len(out) < size:
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
                continue
            take = self._pending if size is None or size < 0 else self._pending[:size - len(out)]
            out += take
            self._pending = self._pending[len(take):]
        data = bytes(out)
        self._sha.update(data)
        self.bytes += len(data)
        if self._on_bytes and data:
            self._on_bytes(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(READ_CHUNK):
            yield data


class _Digest:
    """A write-only file object that hashes and counts (a copy read back)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        return len(data)


# ----------------------------------------------------------------------------------------------
# The source: S3


class S3Source:
    """The source bucket, through the aws connection `conn_id`. Every read names the listed version
    (If-Match its ETag), so a source replaced meanwhile is noticed instead of copied half old, half new."""

    def __init__(self, url: StorageUrl, conn_id: str, client: Any = None) -> None:
        from multicloud_dr.connections.aws import aws_client

        if url.scheme != "s3":
            raise ConfigError(f"the frontend's source is s3://BUCKET/PREFIX, not {url}")
        self.url = url
        self.conn_id = conn_id
        self.client = client or aws_client(conn_id, "s3")
        self._prefix = f"{url.path}/" if url.path else ""

    def _where(self) -> str:
        endpoint = getattr(self.client.meta, "endpoint_url", None)
        return f" at {endpoint}" if endpoint and "amazonaws.com" not in endpoint else ""

    def list(self) -> list[SourceObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        objects = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.url.bucket, Prefix=self._prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self._prefix):]
                    if key and not is_folder_marker(key, item["Size"]):
                        objects.append(SourceObject(key, int(item["Size"]), item["ETag"].strip('"')))
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchBucket", "404", "NotFound"):
                raise FrontendSourceError(
                    f"S3 bucket {self.url.bucket!r} does not exist{self._where()}: create it (aws s3 mb "
                    f"s3://{self.url.bucket}) or fix frontend.source in the topology") from None
            if code in ("AccessDenied", "403", "Forbidden"):
                raise FrontendSourceError(
                    f"listing S3 bucket {self.url.bucket!r} was denied{self._where()}: connection {self.conn_id!r} "
                    f"needs s3:ListBucket and s3:GetObject on it") from None
            raise
        except BotoCoreError as err:
            raise DrError(f"cannot reach S3{self._where()} (connection {self.conn_id!r}): {err}") from err
        return objects

    def key(self, obj: SourceObject) -> str:
        return self._prefix + obj.key

    def open(self, obj: SourceObject) -> tuple[Any, ContentHeaders]:
        """The object's body (a stream) and headers, pinned to the listed ETag."""
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.url.bucket, Key=self.key(obj), IfMatch=f'"{obj.etag}"')
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise SourceChangedError(f"{self.url.join(obj.key)} changed or disappeared since it was listed: "
                                         f"run the sync again") from None
            raise
        headers = ContentHeaders(response.get("ContentType"), response.get("CacheControl"),
                                 response.get("ContentEncoding"), response.get("ContentDisposition"),
                                 response.get("ContentLanguage"))
        return response["Body"], headers

    def chunks(self, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()


# ----------------------------------------------------------------------------------------------
# The copies: Blob and GCS


@dataclass(frozen=True)
class Written:
    version: str    # the new object's ETag / generation
    size: int
    sha256: str     # of the bytes streamed from the source


class CopyTarget(Protocol):
    url: StorageUrl

    def list(self) -> list[CopyObject]: ...
    def write(self, key: str, reader: HashingReader, size: int, headers: ContentHeaders,
              replace: CopyObject | None) -> Written: ...
    def read_back(self, key: str, version: str) -> tuple[int, str]: ...
    def mark(self, key: str, version: str, sha256: str, source_etag: str) -> None: ...
    def delete(self, obj: CopyObject) -> None: ...


class BlobCopy:
    """A copy in an Azure Blob container, through the wasb connection `conn_id`."""

    def __init__(self, url: StorageUrl, conn_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 service: Any = None) -> None:
        from multicloud_dr.connections.wasb import blob_service_client

        self.url = url
        self.conn_id = conn_id
        self.chunk_size = chunk_size
        self.service = service or blob_service_client(conn_id)
        self.container = self.service.get_container_client(url.bucket)
        self._prefix = f"{url.path}/" if url.path else ""

    def list(self) -> list[CopyObject]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        account = getattr(self.service, "account_name", None) or "the account"
        try:
            blobs = list(self.container.list_blobs(name_starts_with=self._prefix, include=["metadata"]))
        except ResourceNotFoundError:
            raise CopyLocationError(
                f"Azure container {self.url.bucket!r} does not exist in {account}: create it (az storage container "
                f"create --name {self.url.bucket}) or fix the copy's url {self.url}") from None
        except ClientAuthenticationError:
            raise CopyLocationError(f"connection {self.conn_id!r} was refused listing container {self.url.bucket!r}: "
                                    f"it needs read, write, list and delete on the container") from None
        except HttpResponseError as err:
            if err.status_code == 403:
                raise CopyLocationError(f"connection {self.conn_id!r} may not list container {self.url.bucket!r}: "
                                        f"it needs read, write, list and delete on the container") from None
            raise
        objects = []
        for blob in blobs:
            key = blob.name[len(self._prefix):]
            if key and not is_folder_marker(key, blob.size):
                metadata = blob.metadata or {}
                objects.append(CopyObject(key, int(blob.size), blob.etag, metadata.get(SHA256_METADATA),
                                          metadata.get(SOURCE_ETAG_METADATA), blob.last_modified))
        return objects

    def _blob(self, key: str) -> Any:
        return self.container.get_blob_client(self._prefix + key)

    @staticmethod
    def _conditions(replace: CopyObject | None) -> dict:
        from azure.core import MatchConditions

        if replace is None:
            return {"match_condition": MatchConditions.IfMissing}
        return {"etag": replace.version, "match_condition": MatchConditions.IfNotModified}

    def write(self, key: str, reader: HashingReader, size: int, headers: ContentHeaders,
              replace: CopyObject | None) -> Written:
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.storage.blob import BlobBlock, ContentSettings

        from multicloud_dr.backup.blockblob import StagedBlockWriter, with_retries

        blob = self._blob(key)
        settings = ContentSettings(content_type=headers.content_type, content_encoding=headers.content_encoding,
                                   content_language=headers.content_language,
                                   content_disposition=headers.content_disposition,
                                   cache_control=headers.cache_control)
        try:
            if size <= self.chunk_size:
                data = reader.read()
                response = blob.upload_blob(data, length=len(data), overwrite=replace is not None,
                                            content_settings=settings, **self._conditions(replace))
            else:
                # Staged blocks, committed once: readers see the old object until the new one is whole.
                writer = StagedBlockWriter(blob, block_size=self.chunk_size, max_inflight_bytes=2 * self.chunk_size,
                                           concurrency=2)
                try:
                    for chunk in reader:
                        writer.write(chunk)
                    block_ids, _ = writer.finish()
                except BaseException:
                    writer.abort()
                    raise
                response = with_retries(lambda: blob.commit_block_list(
                    [BlobBlock(block_id=b) for b in block_ids], content_settings=settings,
                    **self._conditions(replace)), f"commit {blob.blob_name}")
        except (ResourceExistsError, ResourceModifiedError):
            raise ConcurrentChangeError(f"{self.url.join(key)} was written by someone else while this sync ran: "
                                        f"it was not overwritten; run the sync again") from None
        return Written(response["etag"], reader.bytes, reader.sha256)

    def read_back(self, key: str, version: str) -> tuple[int, str]:
        from azure.core import MatchConditions

        digest = _Digest()
        # decompress=False: the stored bytes, not a gzip-encoded object decoded on the way (the SDK's default).
        download = self._blob(key).download_blob(etag=version, match_condition=MatchConditions.IfNotModified,
                                                 max_concurrency=1, decompress=False)
        for chunk in download.chunks():
            digest.write(chunk)
        return digest.bytes, digest.sha.hexdigest()

    def mark(self, key: str, version: str, sha256: str, source_etag: str) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        try:
            self._blob(key).set_blob_metadata({SHA256_METADATA: sha256, SOURCE_ETAG_METADATA: source_etag},
                                              etag=version, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            raise ConcurrentChangeError(f"{self.url.join(key)} changed while it was being verified: it is left "
                                        f"unverified and is copied again on the next run") from None

    def delete(self, obj: CopyObject) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            self._blob(obj.key).delete_blob(delete_snapshots="include", etag=obj.version,
                                            match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            pass   # gone already
        except ResourceModifiedError:
            raise ConcurrentChangeError(f"{self.url.join(obj.key)} changed since it was listed: not deleted; run the "
                                        f"sync again") from None


class GcsCopy:
    """A copy in a GCS bucket, through the google_cloud_platform connection `conn_id`."""

    def __init__(self, url: StorageUrl, conn_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE, client: Any = None) -> None:
        from multicloud_dr.connections.gcp import storage_client

        self.url = url
        self.conn_id = conn_id
        self.chunk_size = max(GCS_CHUNK_QUANTUM, chunk_size // GCS_CHUNK_QUANTUM * GCS_CHUNK_QUANTUM)
        self.client = client or storage_client(conn_id)
        self.bucket = self.client.bucket(url.bucket)
        self._prefix = f"{url.path}/" if url.path else ""

    def list(self) -> list[CopyObject]:
        from google.api_core import exceptions as gexc

        try:
            blobs = list(self.client.list_blobs(self.url.bucket, prefix=self._prefix or None))
        except gexc.NotFound:
            raise CopyLocationError(
                f"GCS bucket {self.url.bucket!r} does not exist: create it (gcloud storage buckets create "
                f"gs://{self.url.bucket}) or fix the copy's url {self.url}") from None
        except gexc.Forbidden:
            raise CopyLocationError(f"connection {self.conn_id!r} may not list gs://{self.url.bucket}: it needs "
                                    f"roles/storage.objectAdmin on the bucket") from None
        objects = []
        for blob in blobs:
            key = blob.name[len(self._prefix):]
            if key and not is_folder_marker(key, int(blob.size or 0)):
                metadata = blob.metadata or {}
                objects.append(CopyObject(key, int(blob.size or 0), str(blob.generation),
                                          metadata.get(SHA256_METADATA), metadata.get(SOURCE_ETAG_METADATA),
                                          blob.updated))
        return objects

    def write(self, key: str, reader: HashingReader, size: int, headers: ContentHeaders,
              replace: CopyObject | None) -> Written:
        from google.api_core import exceptions as gexc

        # Up to one chunk: a single multipart request; more: a resumable upload, one chunk in memory at a time.
        blob = self.bucket.blob(self._prefix + key, chunk_size=self.chunk_size if size > self.chunk_size else None)
        blob.cache_control = headers.cache_control
        blob.content_encoding = headers.content_encoding
        blob.content_disposition = headers.content_disposition
        blob.content_language = headers.content_language
        try:
            blob.upload_from_file(reader, size=size, content_type=headers.content_type,
                                  if_generation_match=int(replace.version) if replace else 0)
        except gexc.PreconditionFailed:
            raise ConcurrentChangeError(f"{self.url.join(key)} was written by someone else while this sync ran: "
                                        f"it was not overwritten; run the sync again") from None
        return Written(str(blob.generation), reader.bytes, reader.sha256)

    def read_back(self, key: str, version: str) -> tuple[int, str]:
        digest = _Digest()
        # raw: the stored bytes, not a gzip-encoded object decompressed on the way.
        self.bucket.blob(self._prefix + key, generation=int(version)).download_to_file(
            digest, raw_download=True, if_generation_match=int(version))
        return digest.bytes, digest.sha.hexdigest()

    def mark(self, key: str, version: str, sha256: str, source_etag: str) -> None:
        from google.api_core import exceptions as gexc

        blob = self.bucket.blob(self._prefix + key)
        blob.metadata = {SHA256_METADATA: sha256, SOURCE_ETAG_METADATA: source_etag}
        try:
            blob.patch(if_generation_match=int(version))
        except gexc.PreconditionFailed:
            raise ConcurrentChangeError(f"{self.url.join(key)} changed while it was being verified: it is left "
                                        f"unverified and is copied again on the next run") from None

    def delete(self, obj: CopyObject) -> None:
        from google.api_core import exceptions as gexc

        try:
            self.bucket.blob(self._prefix + obj.key).delete(if_generation_match=int(obj.version))
        except gexc.NotFound:
            pass   # gone already
        except gexc.PreconditionFailed:
            raise ConcurrentChangeError(f"{self.url.join(obj.key)} changed since it was listed: not deleted; run the "
                                        f"sync again") from None


def make_target(url: StorageUrl | str, conn_id: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CopyTarget:
    url = StorageUrl.parse(url) if isinstance(url, str) else url
    if url.scheme == "wasb":
        return BlobCopy(url, conn_id, chunk_size)
    if url.scheme == "gs":
        return GcsCopy(url, conn_id, chunk_size)
    raise ConfigError(f"a frontend copy goes to wasb://CONTAINER/PREFIX or gs://BUCKET/PREFIX, not {url}")


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """What one object's transfer may fail with (the others go on): the three SDKs' I/O errors and ours."""
    from azure.core.exceptions import AzureError
    from botocore.exceptions import BotoCoreError, ClientError
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.storage import exceptions as gcs  # the resumable upload's errors (google-cloud-storage 3)

    return (DrError, OSError, AzureError, BotoCoreError, ClientError, GoogleAPIError, GoogleAuthError,
            gcs.InvalidResponse, gcs.DataCorruption)


# ----------------------------------------------------------------------------------------------
# Results


@dataclass
class Change:
    key: str
    action: str      # copied, retagged, deleted, extra, failed; in a dry run: copy, check, delete, extra
    reason: str
    bytes: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CopyResult:
    url: str
    dry_run: bool = False
    planned: dict[str, int] = field(default_factory=dict)
    copied: int = 0
    skipped: int = 0
    retagged: int = 0
    deleted: int = 0
    extra: int = 0
    failed: int = 0
    checked: int = 0               # sources read only to compare with the copy
    bytes_copied: int = 0
    deletes_postponed: bool = False
    error: str | None = None       # the whole copy failed (e.g. its container is missing)
    error_is_input: bool = False
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict:
        listed = self.changes[:MAX_LISTED_CHANGES]
        return {"url": self.url, "dry_run": self.dry_run, "planned": dict(self.planned), "copied": self.copied,
                "skipped": self.skipped, "retagged": self.retagged, "deleted": self.deleted, "extra": self.extra,
                "failed": self.failed, "checked": self.checked, "bytes_copied": self.bytes_copied,
                "deletes_postponed": self.deletes_postponed, "error": self.error, "seconds": round(self.seconds, 3),
                "changes": [c.to_dict() for c in listed], "changes_omitted": len(self.changes) - len(listed)}

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0

    def summary(self, source: str) -> str:
        if self.error:
            return f"frontend {source} -> {self.url}: not synced: {self.error}"
        if self.dry_run:
            p = self.planned
            return (f"frontend {source} -> {self.url} (dry run): would copy {p.get('copy', 0)}, check "
                    f"{p.get('check', 0)}, delete {p.get('delete', 0)}; {p.get('skip', 0)} up to date, "
                    f"{p.get('extra', 0)} extra kept")
        rate = f", {self.bytes_copied / MB / self.seconds:.1f} MB/s" if self.bytes_copied and self.seconds > 0 else ""
        tail = "; deletes postponed (a transfer failed)" if self.deletes_postponed else ""
        failed = f", {self.failed} FAILED" if self.failed else ""
        return (f"frontend {source} -> {self.url}: {self.copied} copied ({self.bytes_copied / MB:.1f} MB{rate}), "
                f"{self.skipped} skipped, {self.retagged} retagged, {self.deleted} deleted, {self.extra} extra kept"
                f"{failed} in {self.seconds:.1f} s{tail}")


@dataclass
class SyncResult:
    source: str
    dry_run: bool
    copies: list[CopyResult]
    seconds: float = 0.0

    def _total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.copies)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.copies)

    def to_dict(self) -> dict:
        return {"source": self.source, "dry_run": self.dry_run, "ok": self.ok,
                **{name: self._total(name) for name in ("copied", "skipped", "retagged", "deleted", "extra",
                                                         "failed", "bytes_copied")},
                "seconds": round(self.seconds, 3), "copies": [c.to_dict() for c in self.copies]}

    def summary(self) -> str:
        head = "(dry run) " if self.dry_run else ""
        return (f"frontend sync {head}{self.source} -> {len(self.copies)} copies: {self._total('copied')} copied, "
                f"{self._total('skipped')} skipped, {self._total('deleted')} deleted, {self._total('extra')} extra, "
                f"{self._total('failed')} failed; {self._total('bytes_copied') / MB:.1f} MB in {self.seconds:.1f} s")

    def raise_for_failures(self) -> None:
        """FrontendSyncInputError when every failure is a missing prerequisite, FrontendSyncError otherwise."""
        if self.ok:
            return
        problems = []
        for c in self.copies:
            if c.error:
                problems.append(f"{c.url}: {c.error}")
            failed = [ch for ch in c.changes if ch.action == "failed"]
            problems += [f"{c.url}/{ch.key}: {ch.reason}" for ch in failed[:3]]
            if len(failed) > 3:
                problems.append(f"{c.url}: {len(failed) - 3} more failed objects (see the log)")
        message = (f"frontend sync of {self.source} incomplete ({'; '.join(problems)}); what succeeded is in place, "
                   f"a re-run copies only the rest")
        if all(c.error_is_input for c in self.copies if not c.ok):
            raise FrontendSyncInputError(message, self.to_dict())
        raise FrontendSyncError(message, self.to_dict())


# ----------------------------------------------------------------------------------------------
# The sync


class _SourceHashes:
    """SHA-256s of source versions computed in this run, shared between copies: (key, ETag) -> hash."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, obj: SourceObject) -> str | None:
        with self._lock:
            return self._known.get((obj.key, obj.etag))

    def put(self, obj: SourceObject, sha256: str) -> None:
        with self._lock:
            self._known[(obj.key, obj.etag)] = sha256

    def snapshot(self) -> dict[tuple[str, str], str]:
        with self._lock:
            return dict(self._known)


class CopySync:
    """Bring one copy in line with the source: plan from the two listings, then transfer, verify,
    retag and delete as planned."""

    def __init__(self, source: S3Source, sources: list[SourceObject], target: CopyTarget, *,
                 delete_removed: bool = False, workers: int = DEFAULT_WORKERS, hashes: _SourceHashes | None = None
                 ) -> None:
        if workers < 1:
            raise ConfigError("workers must be at least 1")
        self.source = source
        self.sources = sources
        self.target = target
        self.delete_removed = delete_removed
        self.workers = workers
        self.hashes = hashes or _SourceHashes()
        self.result = CopyResult(str(target.url))
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._moved = 0

    def plan(self) -> list[Decision]:
        decisions = plan(self.sources, self.target.list(), delete_removed=self.delete_removed,
                         hashes=self.hashes.snapshot())
        planned: dict[str, int] = {}
        for d in decisions:
            planned[d.action] = planned.get(d.action, 0) + 1
        self.result.planned = planned
        return decisions

    def run(self, *, dry_run: bool = False) -> CopyResult:
        """Plan, then (unless `dry_run`) apply. A copy that cannot be listed is reported in `result.error`."""
        started = time.monotonic()
        result = self.result
        result.dry_run = dry_run
        try:
            decisions = self.plan()
        except _transfer_errors() as err:   # its container is missing, or its service cannot be reached
            result.error = " ".join(str(err).split())[:500] or type(err).__name__
            result.error_is_input = isinstance(err, InputError) and not err.retry_may_help
            result.seconds = time.monotonic() - started
            log.error("%s", result.summary(str(self.source.url)))
            return result
        if dry_run:
            for d in decisions:
                if d.action == "skip":
                    result.skipped += 1
                else:
                    result.extra += d.action == "extra"
                    result.changes.append(Change(d.key, d.action, d.reason, d.source.size if d.source else 0))
                    log.info("would %s %s: %s", d.action, self.target.url.join(d.key), d.reason)
        else:
            self.apply(decisions)
        result.seconds = time.monotonic() - started
        log.info("%s", result.summary(str(self.source.url)))
        return result

    # -- applying the plan

    def apply(self, decisions: list[Decision]) -> CopyResult:
        """Carry out a plan made by `plan()`: transfers (in `workers` threads), then deletes, unless a transfer
        failed. Every write names the version the plan saw, so a change made meanwhile is not overwritten."""
        result = self.result
        work = [d for d in decisions if d.action in ("copy", "check", "retag")]
        self._progress = Progress(f"frontend -> {self.target.url}",
                                  sum(d.source.size for d in work if d.source and d.action == "copy"))
        for d in decisions:
            if d.action == "skip":
                result.skipped += 1
            elif d.action == "extra":
                self._record(Change(d.key, "extra", d.reason))
        if self.workers == 1 or len(work) <= 1:
            for d in work:
                self._one(d)
        else:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="frontend-copy") as pool:
                list(pool.map(self._one, work))
        deletes = [d for d in decisions if d.action == "delete"]
        if deletes and result.failed:
            # An old page still at the copy may need the old assets until its replacement made it across.
            result.deletes_postponed = True
            for d in deletes:
                self._record(Change(d.key, "extra", "deletion postponed: a transfer of this copy failed"))
            return result
        for d in deletes:
            self._one(d)
        return result

    def _one(self, decision: Decision) -> None:
        try:
            self._carry_out(decision)
        except _transfer_errors() as err:
            reason = " ".join(str(err).split())[:500] or type(err).__name__
            log.error("%s: %s failed: %s", self.target.url.join(decision.key), decision.action, reason)
            self._record(Change(decision.key, "failed", reason, decision.source.size if decision.source else 0))

    def _carry_out(self, decision: Decision) -> None:
        url = self.target.url.join(decision.key)
        if decision.action == "check":
            sha256 = self._hash_source(decision.source)
            with self._lock:
                self.result.checked += 1
            decision = decide(decision.key, decision.source, decision.copy, delete_removed=self.delete_removed,
                              source_sha256=sha256)
            if decision.action == "skip":
                with self._lock:
                    self.result.skipped += 1
                return
        if decision.action == "retag":
            self.target.mark(decision.key, decision.copy.version, decision.sha256, decision.source.etag)
            log.info("%s: %s", url, decision.reason)
            self._record(Change(decision.key, "retagged", decision.reason))
        elif decision.action == "copy":
            self._copy(decision)
        elif decision.action == "delete":
            self.target.delete(decision.copy)
            log.info("deleted %s: %s", url, decision.reason)
            self._record(Change(decision.key, "deleted", decision.reason, decision.copy.size))
        else:
            raise AssertionError(decision)

    def _hash_source(self, obj: SourceObject) -> str:
        if known := self.hashes.get(obj):
            return known
        body, _ = self.source.open(obj)
        reader = HashingReader(self.source.chunks(body))
        for _ in reader:
            pass
        self._check_length(obj, reader.bytes)
        self.hashes.put(obj, reader.sha256)
        return reader.sha256

    def _copy(self, decision: Decision) -> None:
        obj = decision.source
        url = self.target.url.join(decision.key)
        body, headers = self.source.open(obj)
        reader = HashingReader(self.source.chunks(body), self._moved_bytes)
        log.info("copying %s (%.2f MB) -> %s: %s", self.source.url.join(obj.key), obj.size / MB, url, decision.reason)
        written = self.target.write(decision.key, reader, obj.size, headers, decision.copy)
        self._check_length(obj, written.size)
        if decision.sha256 is not None and decision.sha256 != written.sha256:
            raise SourceChangedError(f"{self.source.url.join(obj.key)} read as SHA-256 {written.sha256}, earlier in "
                                     f"this run as {decision.sha256}: the source changed; run the sync again")
        self.hashes.put(obj, written.sha256)
        size, sha256 = self.target.read_back(decision.key, written.version)
        if size != obj.size or sha256 != written.sha256:
            raise CopyVerificationError(
                f"{url} read back as {size:,} bytes, SHA-256 {sha256}; the source streamed {obj.size:,} bytes, "
                f"SHA-256 {written.sha256}: the copy is left unverified (no sha256) and is copied again next run")
        self.target.mark(decision.key, written.version, written.sha256, obj.etag)
        with self._lock:
            self.result.bytes_copied += obj.size
        self._record(Change(decision.key, "copied", decision.reason, obj.size))

    def _check_length(self, obj: SourceObject, got: int) -> None:
        if got != obj.size:
            raise SourceChangedError(f"{self.source.url.join(obj.key)} streamed {got:,} bytes, listed as "
                                     f"{obj.size:,}: the source changed; run the sync again")

    def _moved_bytes(self, n: int) -> None:
        with self._lock:
            self._moved += n
            if self._progress:
                self._progress.update(self._moved, f"{self.result.copied} objects done")

    def _record(self, change: Change) -> None:
        counter = {"copied": "copied", "retagged": "retagged", "deleted": "deleted", "extra": "extra",
                   "failed": "failed"}[change.action]
        with self._lock:
            setattr(self.result, counter, getattr(self.result, counter) + 1)
            self.result.changes.append(change)


def _source(source: str, source_conn_id: str) -> S3Source:
    return S3Source(StorageUrl.parse(source), source_conn_id)


def _listed_source(source: S3Source) -> list[SourceObject]:
    objects = source.list()
    if not objects:
        # A wrong prefix or an emptied bucket: never the cue to empty the DR site.
        raise FrontendSourceError(f"{source.url} lists no objects: nothing was copied or deleted. Check "
                                  f"frontend.source (bucket and prefix) and that the site was published")
    log.info("%s: %d objects, %.1f MB", source.url, len(objects), sum(o.size for o in objects) / MB)
    return objects


def sync_copy(source: str, source_conn_id: str, copy_url: str, copy_conn_id: str, *, delete_removed: bool = False,
              dry_run: bool = False, workers: int = DEFAULT_WORKERS, chunk_size: int = DEFAULT_CHUNK_SIZE
              ) -> SyncResult:
    """Sync one copy (`copy_url` wasb://... or gs://...) with the S3 `source`; raises FrontendSyncError /
    FrontendSyncInputError (with `.result`) if anything failed, after doing all it could."""
    started = time.monotonic()
    src = _source(source, source_conn_id)
    objects = _listed_source(src)
    target = make_target(copy_url, copy_conn_id, chunk_size)
    copy = CopySync(src, objects, target, delete_removed=delete_removed, workers=workers).run(dry_run=dry_run)
    result = SyncResult(str(src.url), dry_run, [copy], time.monotonic() - started)
    result.raise_for_failures()
    return result


def sync_frontend(config: FrontendConfig, *, dry_run: bool = False, workers: int = DEFAULT_WORKERS,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, copies: list[FrontendCopy] | None = None) -> SyncResult:
    """Sync every copy of the frontend (or `copies`) with its source: the source is listed once, and a
    source read to hash it serves every copy. One copy failing does not stop the others."""
    started = time.monotonic()
    src = _source(config.source, config.source_conn_id)
    objects = _listed_source(src)
    hashes = _SourceHashes()
    results = []
    for copy in copies if copies is not None else config.copies:
        try:
            target = make_target(copy.url, copy.conn_id, chunk_size)
        except InputError as err:
            results.append(CopyResult(copy.url, dry_run, error=str(err), error_is_input=True))
            log.error("frontend %s -> %s: not synced: %s", src.url, copy.url, err)
            continue
        results.append(CopySync(src, objects, target, delete_removed=config.delete_removed, workers=workers,
                                hashes=hashes).run(dry_run=dry_run))
    result = SyncResult(str(src.url), dry_run, results, time.monotonic() - started)
    log.info("%s", result.summary())
    result.raise_for_failures()
    return result


@dataclass(frozen=True)
class CopiesReport:
    ok: bool
    failed: list[str]     # copies without a complete result
    message: str          # a head line, then one line per copy

    def to_dict(self) -> dict:
        return {"ok": self.ok, "failed": self.failed, "message": self.message}


def copies_report(expected: Iterable[str], results: Iterable[dict | None]) -> CopiesReport:
    """One line per expected copy url, from the results of `sync_copy(...).to_dict()` (one per copy; a copy
    whose task failed has none)."""
    by_url = {c["url"]: c for r in results if r for c in r.get("copies", [])}
    lines, failed = [], []
    expected = list(expected)
    for url in expected:
        copy = by_url.get(url)
        if copy is None:
            failed.append(url)
            lines.append(f"{url}: NO RESULT (its sync failed: see that task's log)")
        else:
            lines.append(f"{url}: {copy['copied']} copied ({copy['bytes_copied'] / MB:.1f} MB), {copy['skipped']} "
                         f"skipped, {copy['deleted']} deleted, {copy['extra']} extra kept")
    head = f"frontend copies: {len(expected) - len(failed)} of {len(expected)} in sync"
    return CopiesReport(not failed, failed, "\n".join([head, *lines]))


def run_frontend_sync(topology: Topology, *, dry_run: bool = False) -> dict:
    """`drctl frontend sync [--dry-run]`: sync every copy of the topology's frontend; returns the JSON summary.
    Raises ConfigError when the topology has no frontend section, FrontendSyncInputError (exit 2) when a
    bucket or container must be created, FrontendSyncError (exit 1, retry may help) for failed transfers;
    both carry the summary as `.result`."""
    if topology.frontend is None:
        raise ConfigError("the topology has no frontend section: add one (source: s3://BUCKET/PREFIX, copies: "
                          "[{url: wasb://CONTAINER/PREFIX or gs://BUCKET/PREFIX, conn_id: ...}]) to sync a static "
                          "frontend")
    return sync_frontend(topology.frontend, dry_run=dry_run).to_dict()

