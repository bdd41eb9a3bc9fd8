"""Extra copies of a verified backup in other clouds (the 3-2-1 rule), each copy verified.

    wasb://<container>/<root>/<database>/<stamp>/<object>   ->   <destination>/<database>/<stamp>/<object>
    wasb://<container>/<root>/<database>/<stamp>/manifest.json -> <destination>/<database>/<stamp>/manifest.json

- Only a backup whose manifest says `verified` is copied.
- Each object streams from Azure to S3 (multipart, bounded part size and concurrency) or GCS
  (resumable, bounded chunk size): memory stays bounded whatever the object's size, nothing is
  staged on disk. The stream is hashed on the way; the last bytes are handed to the uploader only
  if size and SHA-256 match the manifest, so a damaged source never completes an upload.
- Uploads are create-only (S3 If-None-Match: *, GCS ifGenerationMatch=0); an object that exists
  with different content is a hard failure, never overwritten.
- The copy is read back from the destination and checked (size, SHA-256) against the manifest;
  only then is the manifest written there, last: its presence at the destination means the copy
  is complete and was verified. Then the copy is listed in the Azure manifest (ETag compare-and-set).
- Idempotent: a complete copy is not uploaded again; a re-run only makes sure the Azure manifest
  lists it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from azure.storage.blob import BlobServiceClient

from multicloud_dr.backup.blockblob import SHA256_METADATA
from multicloud_dr.backup.codec import CONTENT_TYPE
from multicloud_dr.backup.layout import MANIFEST, BackupLayout, StorageUrl
from multicloud_dr.backup.manifest import Copy, Manifest, ManifestError, StoredObject
from multicloud_dr.backup.store import BackupStore, ConcurrentUpdateError, ManifestRecord
from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.aws import AwsConnection
from multicloud_dr.connections.gcp import GcpConnection
from multicloud_dr.exceptions import ConfigError, DrError, InputError
from multicloud_dr.progress import MB, Progress

log = logging.getLogger(__name__)

SCHEMES = ("s3", "gs")
RUN_METADATA = "copy-run"      # which copy run created a destination object (only that run deletes it)
SOURCE_METADATA = "source"
DEFAULT_PART_SIZE = 8 * MB
DEFAULT_CONCURRENCY = 4
S3_MIN_PART = 5 * MB
S3_MAX_PARTS = 10_000
GCS_CHUNK_QUANTUM = 256 * 1024   # a resumable upload's chunk size must be a multiple of 256 KiB
READ_CHUNK = 1 * MB
RECORD_ATTEMPTS = 4


class CopyInputError(InputError):
    """The copy cannot start as asked (bad destination, missing bucket, backup not verified)."""


class BackupNotVerifiedError(CopyInputError):
    """Only verified backups are copied."""


class DestinationNotFoundError(CopyInputError):
    """The destination bucket does not exist or cannot be reached with these credentials."""


class CopyConflictError(CopyInputError):
    """The destination holds different content under the copy's names: never overwritten."""


class SourceDamagedError(DrError):
    """The Azure object's bytes differ from its manifest entry; nothing was left at the destination."""


class CopyVerificationError(DrError):
    """Reading the uploaded copy back did not give the manifest's size and SHA-256."""


# ----------------------------------------------------------------------------------------------
# Paths


@dataclass(frozen=True)
class PlannedObject:
    source: StorageUrl
    destination: StorageUrl
    entry: StoredObject


@dataclass(frozen=True)
class CopyPlan:
    source_manifest: StorageUrl
    destination_manifest: StorageUrl
    objects: list[PlannedObject]


def parse_destination(destination: StorageUrl | str) -> StorageUrl:
    """`s3://bucket/prefix` or `gs://bucket/prefix` (prefix optional); anything else is a ConfigError."""
    url = StorageUrl.parse(destination) if isinstance(destination, str) else destination
    if url.scheme not in SCHEMES:
        raise ConfigError(f"a copy goes to another cloud: s3://BUCKET/PREFIX or gs://BUCKET/PREFIX, not {url} "
                          f"(the backup itself is in Azure Blob)")
    return url


def relative_path(root: StorageUrl, url: StorageUrl) -> str:
    """`url`'s path below `root` (same scheme and container), e.g. `petclinic/20261122T030000Z/x.sql.zst`."""
    prefix = f"{root.path}/" if root.path else ""
    if url.scheme != root.scheme or url.bucket != root.bucket or not url.path.startswith(prefix):
        raise ManifestError(f"{url} is not under {root}: the manifest names an object outside its backup")
    return url.path[len(prefix):]


def plan_copy(manifest_url: StorageUrl, manifest: Manifest, destination: StorageUrl) -> CopyPlan:
    """Where each object of the backup goes: the same path relative to the backup's root."""
    destination = parse_destination(destination)
    layout = BackupLayout.from_manifest_url(manifest_url, manifest.codec)
    if f"{layout.database}/{layout.stamp}" != manifest.backup_id:
        raise ManifestError(f"{manifest_url} holds backup {manifest.backup_id!r}, not "
                            f"{layout.database}/{layout.stamp} as its path says: it was moved or is not ours")
    base = f"{layout.database}/{layout.stamp}/"
    objects = []
    seen: set[str] = set()
    for entry in manifest.objects:
        source = StorageUrl.parse(entry.name)
        rel = relative_path(layout.root, source)
        if not rel.startswith(base) or rel == base + MANIFEST:
            raise ManifestError(f"{manifest_url}: object {entry.name} is not a data object inside the backup "
                                f"({layout.base}/)")
        if rel in seen:
            raise ManifestError(f"{manifest_url} lists {entry.name} twice")
        seen.add(rel)
        objects.append(PlannedObject(source, destination.join(rel), entry))
    return CopyPlan(manifest_url, destination.join(relative_path(layout.root, manifest_url)), objects)


def content_fields(manifest: Manifest) -> dict:
    """What identifies a backup's content: everything but verification state and the list of copies."""
    return manifest.model_dump(mode="json", exclude={"verification", "copies"})


def copy_digest(manifest: Manifest) -> str:
    """The copy's SHA-256 as listed in `copies`: for a one-object backup (what mysql_backup writes) the
    object's SHA-256; for several objects, the SHA-256 of their `sha256sum`-style listing."""
    if len(manifest.objects) == 1:
        return manifest.objects[0].sha256
    listing = "".join(f"{o.sha256}  {o.name.rsplit('/', 1)[-1]}\n" for o in manifest.objects)
    return hashlib.sha256(listing.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# Streaming


class HashingReader:
    """A forward-only file object over a stream of chunks (an Azure download) for an uploader to read.

    It hashes what passes through and never holds more than one source chunk plus the requested
    read. The read that would hand over the last expected byte first checks size and SHA-256: on a
    mismatch it raises SourceDamagedError instead, so the upload is never completed. `seekable()` is
    False so boto3 takes its streaming (non-seekable) path; `tell()` serves GCS resumable uploads.
    """

    def __init__(self, chunks: Iterable[bytes], expected_bytes: int, expected_sha256: str, name: str,
                 progress: Progress | None = None, progress_offset: int = 0) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._sha = hashlib.sha256()
        self._pos = 0
        self._eof = False
        self.expected_bytes = expected_bytes
        self.expected_sha256 = expected_sha256
        self.name = name
        self.progress = progress
        self.progress_offset = progress_offset
        self.closed = False
        self.peak_buffered = 0   # the most bytes held at once (tests check memory stays bounded)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._pos + offset if whence == io.SEEK_CUR else -1
        if target != self._pos:
            raise io.UnsupportedOperation(f"{self.name}: a streamed copy cannot seek (at {self._pos}, asked {target})")
        return self._pos

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def _next_chunk(self) -> bool:
        while not self._eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                return False
            if chunk:
                self._pending = memoryview(chunk)
                return True
        return False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.expected_bytes - self._pos, 0) + 1   # whole rest (+1 to notice a longer stream)
        out = bytearray()
        while len(out) < size:
            if not self._pending and not self._next_chunk():
                break
            take = self._pending[:size - len(out)]
            out += take
            self._pending = self._pending[len(take):]
            self.peak_buffered = max(self.peak_buffered, len(out) + len(self._pending))
        data = bytes(out)
        new_pos = self._pos + len(data)
        if new_pos > self.expected_bytes:
            raise SourceDamagedError(f"{self.name} holds more than the {self.expected_bytes:,} bytes its manifest "
                                     f"lists: the source is damaged or was replaced")
        self._sha.update(data)
        if not data and new_pos < self.expected_bytes:
            raise SourceDamagedError(f"{self.name} ended after {new_pos:,} of the {self.expected_bytes:,} bytes its "
                                     f"manifest lists: the source is damaged or was replaced")
        if new_pos == self.expected_bytes and data:
            got = self._sha.hexdigest()
            if got != self.expected_sha256:
                raise SourceDamagedError(f"{self.name}: SHA-256 {got} differs from the manifest's "
                                         f"{self.expected_sha256}: the source is damaged; nothing was copied. "
                                         f"Run `drctl verify` on the backup, and use another backup")
        self._pos = new_pos
        if self.progress:
            self.progress.update(self.progress_offset + new_pos)
        return data


class _Sink:
    """A write-only file object that hashes and counts (reading a copy back)."""

    def __init__(self, progress: Progress | None = None, offset: int = 0) -> None:
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.progress = progress
        self.offset = offset

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.bytes += len(data)
        if self.progress:
            self.progress.update(self.offset + self.bytes)
        return len(data)


# ----------------------------------------------------------------------------------------------
# Destinations


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    metadata: dict[str, str]
    version: str                  # S3 ETag, GCS generation: pins reads and deletes to this object
    modified: datetime | None     # the destination server's time the object was written

    @property
    def sha256(self) -> str | None:
        return self.metadata.get(SHA256_METADATA)


class ObjectExistsError(Exception):
    """A create-only write found the object already there."""


class Target(Protocol):
    scheme: str
    bucket: str

    def check_bucket(self) -> None: ...
    def head(self, key: str) -> RemoteObject | None: ...
    def read_into(self, obj: RemoteObject, sink: _Sink) -> None: ...
    def read_small(self, obj: RemoteObject) -> bytes: ...
    def upload(self, key: str, reader: HashingReader, size: int, content_type: str,
               metadata: dict[str, str]) -> None: ...
    def put_new(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None: ...
    def delete(self, obj: RemoteObject) -> None: ...


def _s3_part_size(size: int, part_size: int) -> int:
    part = max(part_size, S3_MIN_PART)
    need = math.ceil(size / (S3_MAX_PARTS - 1)) if size else 0   # leave one part of slack
    if need > part:
        part = math.ceil(need / MB) * MB
    return part


class S3Target:
    scheme = "s3"

    def __init__(self, conn: str | Endpoint | AwsConnection, bucket: str, part_size: int = DEFAULT_PART_SIZE,
                 concurrency: int = DEFAULT_CONCURRENCY, client: Any = None) -> None:
        self.conn = AwsConnection.from_ref(conn, purpose=f"s3://{bucket}")
        self.bucket = bucket
        self.part_size = part_size
        self.concurrency = concurrency
        self.client = client or self.conn.client("s3")
        # Create-only writes: every PutObject / CompleteMultipartUpload of this client carries
        # If-None-Match: * (boto3's managed upload does not pass it through ExtraArgs).
        self.client.meta.events.register("before-parameter-build.s3.PutObject", _if_none_match)
        self.client.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload", _if_none_match)

    def _where(self) -> str:
        url = self.conn.endpoint_url("s3")
        return f" at {url}" if url else ""

    def check_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise DestinationNotFoundError(
                    f"S3 bucket {self.bucket!r} does not exist{self._where()}: create it (aws s3 mb s3://{self.bucket}"
                    f") or fix the copy's destination URL") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise DestinationNotFoundError(
                    f"access to S3 bucket {self.bucket!r} was denied{self._where()}: the credentials of the aws "
                    f"connection need s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on it") from None
            raise
        except BotoCoreError as err:
            raise DrError(f"cannot reach S3{self._where()}: {err}") from err

    def head(self, key: str) -> RemoteObject | None:
        from botocore.exceptions import ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return RemoteObject(key, resp["ContentLength"], dict(resp.get("Metadata") or {}), resp["ETag"],
                            resp.get("LastModified"))

    def read_into(self, obj: RemoteObject, sink: _Sink) -> None:
        body = self.client.get_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.version)["Body"]
        try:
            for chunk in body.iter_chunks(READ_CHUNK):
                sink.write(chunk)
        finally:
            body.close()

    def read_small(self, obj: RemoteObject) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.version)["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def upload(self, key: str, reader: HashingReader, size: int, content_type: str,
               metadata: dict[str, str]) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import ClientError

        part = _s3_part_size(size, self.part_size)
        config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=self.concurrency,
                                use_threads=True, preferred_transfer_client="classic")
        # Parts read from a stream wait in memory for an upload thread: at most this many at once.
        config.max_in_memory_upload_chunks = self.concurrency + 1
        try:
            self.client.upload_fileobj(reader, self.bucket, key, Config=config,
                                       ExtraArgs={"Metadata": metadata, "ContentType": content_type})
        except ClientError as err:
            if _precondition_failed(err):
                raise ObjectExistsError(key) from None
            raise

    def put_new(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                   Metadata=metadata)
        except ClientError as err:
            if _precondition_failed(err):
                raise ObjectExistsError(key) from None
            raise

    def delete(self, obj: RemoteObject) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=obj.key)


def _if_none_match(params: dict, **_: Any) -> None:
    params.setdefault("IfNoneMatch", "*")


def _precondition_failed(err: Exception) -> bool:
    response = getattr(err, "response", {}) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # 412: it exists; 409 ConditionalRequestConflict: another writer is creating it right now.
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


class GcsTarget:
    scheme = "gs"

    def __init__(self, conn: str | Endpoint | GcpConnection, bucket: str, part_size: int = DEFAULT_PART_SIZE,
                 client: Any = None) -> None:
        self.conn = GcpConnection.from_ref(conn, purpose=f"gs://{bucket}")
        self.bucket = bucket
        # Chunks of a resumable upload: a multiple of 256 KiB, each held in memory while it is sent.
        self.chunk_size = max(GCS_CHUNK_QUANTUM, part_size // GCS_CHUNK_QUANTUM * GCS_CHUNK_QUANTUM)
        self.client = client or self.conn.storage_client()
        self._bucket = self.client.bucket(bucket)

    def _where(self) -> str:
        url = self.conn.values.get("endpoint_url")
        return f" at {url}" if url else ""

    def check_bucket(self) -> None:
        from google.api_core import exceptions as gexc

        try:
            self._bucket.reload()
        except gexc.NotFound:
            raise DestinationNotFoundError(
                f"GCS bucket {self.bucket!r} does not exist{self._where()}: create it (gcloud storage buckets "
                f"create gs://{self.bucket}) or fix the copy's destination URL") from None
        except gexc.Forbidden:
            raise DestinationNotFoundError(
                f"access to GCS bucket {self.bucket!r} was denied{self._where()}: the service account needs "
                f"roles/storage.objectAdmin (or objectCreator + objectViewer + delete) on it") from None
        except gexc.GoogleAPICallError:
            raise
        except Exception as err:  # connection refused and the like come from requests/urllib3
            raise DrError(f"cannot reach GCS{self._where()}: {err}") from err

    def head(self, key: str) -> RemoteObject | None:
        blob = self._bucket.get_blob(key)
        if blob is None:
            return None
        return RemoteObject(key, int(blob.size or 0), dict(blob.metadata or {}), str(blob.generation),
                            blob.time_created or blob.updated)

    def read_into(self, obj: RemoteObject, sink: _Sink) -> None:
        blob = self._bucket.blob(obj.key, generation=int(obj.version))
        blob.download_to_file(sink, checksum="auto")

    def read_small(self, obj: RemoteObject) -> bytes:
        return self._bucket.blob(obj.key, generation=int(obj.version)).download_as_bytes()

    def upload(self, key: str, reader: HashingReader, size: int, content_type: str,
               metadata: dict[str, str]) -> None:
        from google.api_core import exceptions as gexc

        blob = self._bucket.blob(key, chunk_size=self.chunk_size)
        blob.metadata = metadata
        try:
            blob.upload_from_file(reader, size=size, content_type=content_type, if_generation_match=0)
        except gexc.PreconditionFailed:
            raise ObjectExistsError(key) from None

    def put_new(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        from google.api_core import exceptions as gexc

        blob = self._bucket.blob(key)
        blob.metadata = metadata
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=0)
        except gexc.PreconditionFailed:
            raise ObjectExistsError(key) from None

    def delete(self, obj: RemoteObject) -> None:
        self._bucket.blob(obj.key).delete(if_generation_match=int(obj.version))


def make_target(destination: StorageUrl, conn: str | Endpoint, part_size: int = DEFAULT_PART_SIZE,
                concurrency: int = DEFAULT_CONCURRENCY) -> Target:
    """The destination's target, reached through `conn` (a connection id, URI or Endpoint of its cloud)."""
    destination = parse_destination(destination)
    if part_size <= 0 or concurrency <= 0:
        raise ConfigError("part_size and concurrency must be positive")
    if destination.scheme == "s3":
        return S3Target(AwsConnection.from_ref(conn, purpose=str(destination)), destination.bucket, part_size,
                        concurrency)
    return GcsTarget(GcpConnection.from_ref(conn, purpose=str(destination)), destination.bucket, part_size)


# ----------------------------------------------------------------------------------------------
# The copy


@dataclass
class CopiedObject:
    source: str
    destination: str
    bytes: int
    sha256: str
    uploaded: bool       # False: it was at the destination already (same size and SHA-256)
    read_back: bool      # True: read back from the destination by this run and checked

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class CopyResult:
    manifest: str                    # the backup (Azure manifest URL)
    destination: str                 # the copy's manifest URL
    backup_id: str
    copy: Copy                       # as listed in the Azure manifest's `copies`
    objects: list[CopiedObject] = field(default_factory=list)
    manifest_written: bool = False   # False: the copy was complete already
    recorded: bool = False           # True: this run added/updated the entry in the Azure manifest
    seconds: float = 0.0

    @property
    def bytes_uploaded(self) -> int:
        return sum(o.bytes for o in self.objects if o.uploaded)

    @property
    def bytes_read_back(self) -> int:
        return sum(o.bytes for o in self.objects if o.read_back)

    @property
    def created(self) -> bool:
        return self.manifest_written or any(o.uploaded for o in self.objects)

    def to_dict(self) -> dict:
        return {
            "manifest": self.manifest,
            "destination": self.destination,
            "backup_id": self.backup_id,
            "copy": self.copy.model_dump(mode="json"),
            "objects": [o.to_dict() for o in self.objects],
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_read_back": self.bytes_read_back,
            "created": self.created,
            "manifest_written": self.manifest_written,
            "recorded": self.recorded,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        total = self.copy.bytes
        if not self.created:
            what = "already complete, nothing uploaded"
        else:
            up = self.bytes_uploaded
            rate = f" ({up / MB / self.seconds:.1f} MB/s)" if up and self.seconds > 0 else ""
            what = (f"{up / MB:.1f} MB uploaded{rate}, {self.bytes_read_back / MB:.1f} MB read back and verified, "
                    f"manifest written")
        listed = "listed in the backup's manifest" if self.recorded else "already listed in the backup's manifest"
        at = self.copy.verified_at.isoformat() if self.copy.verified_at else "-"
        return (f"copy of {self.backup_id} ({total / MB:.1f} MB) -> {self.destination}: {what} in "
                f"{self.seconds:.1f} s; {listed} (verified_at {at})")


def copy_backup(service: BlobServiceClient, manifest_url: StorageUrl, destination: StorageUrl,
                dest_conn: str | Endpoint, *, part_size: int = DEFAULT_PART_SIZE,
                concurrency: int = DEFAULT_CONCURRENCY, target: Target | None = None) -> CopyResult:
    """Copy the verified backup at `manifest_url` (wasb://...) to `destination` (s3://BUCKET/PREFIX or
    gs://BUCKET/PREFIX) keeping its path below the backup root, verify the copy by reading it back,
    write the manifest there last, and list the copy in the Azure manifest. Idempotent."""
    destination = parse_destination(destination)
    if manifest_url.scheme != "wasb":
        raise ConfigError(f"the backup to copy is named by its Azure manifest (wasb://...), not {manifest_url}")
    store = BackupStore(service, manifest_url.bucket)
    record = store.read_manifest(manifest_url)
    if record is None:
        raise ManifestError(f"no backup manifest at {manifest_url}: check the URL (drctl backups list shows them)")
    manifest = record.manifest
    _require_verified(manifest_url, manifest)
    plan = plan_copy(manifest_url, manifest, destination)
    target = target or make_target(destination, dest_conn, part_size, concurrency)
    target.check_bucket()
    progress = Progress(f"copy {manifest.backup_id} -> {destination.scheme}", manifest.bytes_stored)
    run_id = uuid.uuid4().hex

    # 1. Look before writing anything: any conflict fails the copy with nothing uploaded.
    manifest_key = plan.destination_manifest.path
    dest_manifest = target.head(manifest_key)
    if dest_manifest is not None:
        _check_dest_manifest(target, dest_manifest, plan, manifest)
    existing = {p.destination.path: _check_existing(target, p, target.head(p.destination.path))
                for p in plan.objects}

    # 2. Upload what is missing. 3. Unless a complete copy was there already, read every object back
    #    and only then write the manifest, last. Anything this run uploaded is removed on failure.
    results: list[CopiedObject] = []
    uploaded: list[RemoteObject] = []
    manifest_written = False
    try:
        done = 0
        for planned in plan.objects:
            entry = planned.entry
            found = existing[planned.destination.path]
            ours = False
            if found is None:
                if dest_manifest is not None:
                    log.warning("%s: the copy's manifest is there but this object is missing: uploading it again",
                                planned.destination)
                found = _upload(store, target, planned, manifest.codec, run_id, progress, done)
                ours = found.metadata.get(RUN_METADATA) == run_id
                if ours:
                    uploaded.append(found)
            results.append(CopiedObject(str(planned.source), str(planned.destination), entry.bytes, entry.sha256,
                                        uploaded=ours, read_back=False))
            done += entry.bytes
        if dest_manifest is None or uploaded:
            _read_back_all(target, plan, results, uploaded)
        if dest_manifest is None:
            dest_manifest = _write_dest_manifest(target, plan, record, run_id)
            manifest_written = dest_manifest.metadata.get(RUN_METADATA) == run_id
    except BaseException:
        _delete_ours(target, uploaded, run_id)
        raise

    verified_at = dest_manifest.modified or store.server_now()
    new_copy = Copy(url=str(plan.destination_manifest), bytes=manifest.bytes_stored, sha256=copy_digest(manifest),
                    verified_at=verified_at)
    recorded, listed = _record_copy(store, record, new_copy)
    result = CopyResult(str(manifest_url), str(plan.destination_manifest), manifest.backup_id, listed, results,
                        manifest_written=manifest_written, recorded=recorded, seconds=progress.seconds)
    log.info("%s", result.summary())
    return result


def _require_verified(url: StorageUrl, manifest: Manifest) -> None:
    status = manifest.verification.status
    if status == "verified":
        return
    if status == "failed":
        raise BackupNotVerifiedError(f"backup {manifest.backup_id} ({url}) failed verification "
                                     f"({manifest.verification.detail[:300]}): it is not copied; use another backup")
    raise BackupNotVerifiedError(f"backup {manifest.backup_id} ({url}) has not been verified: only verified backups "
                                 f"are copied. Verify it first: drctl verify {url}")


def _check_dest_manifest(target: Target, found: RemoteObject, plan: CopyPlan, manifest: Manifest) -> None:
    data = target.read_small(found)
    try:
        theirs = Manifest.parse(data, str(plan.destination_manifest))
    except ManifestError as err:
        raise CopyConflictError(f"{plan.destination_manifest} already exists and is not this backup's manifest "
                                f"({err}); it was not overwritten: move it aside or copy to another prefix") from None
    if content_fields(theirs) != content_fields(manifest):
        raise CopyConflictError(f"{plan.destination_manifest} already exists for different content (backup "
                                f"{theirs.backup_id}, objects {[o.sha256[:12] for o in theirs.objects]}); it was not "
                                f"overwritten: move it aside or copy to another prefix")


def _conflict(planned: PlannedObject, found: RemoteObject, detail: str) -> CopyConflictError:
    return CopyConflictError(
        f"{planned.destination} already exists with different content ({detail}; the backup's object is "
        f"{planned.entry.bytes:,} bytes, sha256 {planned.entry.sha256}). It was not overwritten: move it aside "
        f"or copy to another prefix")


def _check_existing(target: Target, planned: PlannedObject, found: RemoteObject | None) -> RemoteObject | None:
    """None if the object is missing; the object if it matches; CopyConflictError if it differs."""
    if found is None:
        return None
    entry = planned.entry
    if found.size != entry.bytes:
        raise _conflict(planned, found, f"{found.size:,} bytes")
    if found.sha256 is not None and found.sha256 != entry.sha256:
        raise _conflict(planned, found, f"sha256 {found.sha256} in its metadata")
    if found.sha256 is None:
        # Not written by this tool: its content decides, read it.
        sink = _Sink()
        target.read_into(found, sink)
        if sink.sha.hexdigest() != entry.sha256 or sink.bytes != entry.bytes:
            raise _conflict(planned, found, f"sha256 {sink.sha.hexdigest()}")
    log.info("%s is there already with the same size and SHA-256: not uploaded again", planned.destination)
    return found


def _upload(store: BackupStore, target: Target, planned: PlannedObject, codec: str, run_id: str,
            progress: Progress, done: int) -> RemoteObject:
    entry = planned.entry
    blob = store.blob(planned.source)
    download = blob.download_blob(max_concurrency=1)
    if download.size != entry.bytes:
        raise SourceDamagedError(f"{planned.source} is {download.size:,} bytes, its manifest lists {entry.bytes:,}: "
                                 f"the source is damaged or was replaced; nothing was copied. Run `drctl verify` "
                                 f"on the backup and use another one")
    content_type = CONTENT_TYPE.get(codec) or download.properties.content_settings.content_type \
        or "application/octet-stream"
    metadata = {SHA256_METADATA: entry.sha256, SOURCE_METADATA: str(planned.source), RUN_METADATA: run_id}
    reader = HashingReader(download.chunks(), entry.bytes, entry.sha256, str(planned.source), progress, done)
    log.info("copying %s (%.1f MB) -> %s", planned.source, entry.bytes / MB, planned.destination)
    try:
        target.upload(planned.destination.path, reader, entry.bytes, content_type, metadata)
    except ObjectExistsError:
        # Someone else created it between our look and our write: keep theirs if it is the same.
        found = target.head(planned.destination.path)
        if found is None:
            raise DrError(f"{planned.destination} was reported as existing but is not there: run again") from None
        return _check_existing(target, planned, found)  # type: ignore[return-value]
    except SourceDamagedError:
        _delete_if_ours(target, planned.destination.path, run_id)
        raise
    found = target.head(planned.destination.path)
    if found is None:
        raise CopyVerificationError(f"{planned.destination} is not there after its upload succeeded: run again")
    return found


def _read_back_all(target: Target, plan: CopyPlan, results: list[CopiedObject], uploaded: list[RemoteObject]) -> None:
    """Read every object back from the destination; size and SHA-256 must be the manifest's."""
    progress = Progress(f"read back {plan.destination_manifest}", sum(p.entry.bytes for p in plan.objects))
    done = 0
    ours = {o.key for o in uploaded}
    for planned, result in zip(plan.objects, results, strict=True):
        found = target.head(planned.destination.path)
        if found is None:
            raise CopyVerificationError(f"{planned.destination} disappeared before it could be read back: run again")
        sink = _Sink(progress, done)
        target.read_into(found, sink)
        got = sink.sha.hexdigest()
        if got != planned.entry.sha256 or sink.bytes != planned.entry.bytes:
            detail = (f"{planned.destination} read back as {sink.bytes:,} bytes, sha256 {got}; the manifest says "
                      f"{planned.entry.bytes:,} bytes, sha256 {planned.entry.sha256}")
            if planned.destination.path in ours:
                raise CopyVerificationError(f"{detail}: the upload was damaged; it is removed, run again")
            raise CopyConflictError(f"{detail}: it was there before this copy and was not overwritten: move it "
                                    f"aside or copy to another prefix")
        result.read_back = True
        done += sink.bytes
    log.info("read back %d object(s), %.1f MB from %s: size and SHA-256 match the manifest", len(plan.objects),
             done / MB, plan.destination_manifest)


def _write_dest_manifest(target: Target, plan: CopyPlan, record: ManifestRecord, run_id: str) -> RemoteObject:
    key = plan.destination_manifest.path
    try:
        target.put_new(key, record.manifest.dump(), "application/json", {RUN_METADATA: run_id})
    except ObjectExistsError:
        found = target.head(key)
        if found is None:
            raise DrError(f"{plan.destination_manifest} was reported as existing but is not there: run again") from None
        _check_dest_manifest(target, found, plan, record.manifest)
        return found
    found = target.head(key)
    if found is None:  # written (the copy is complete): never fail, and so never clean up, after this point
        log.warning("%s was written but cannot be read back yet (eventual consistency?)", plan.destination_manifest)
        return RemoteObject(key, 0, {RUN_METADATA: run_id}, "", None)
    return found


def _delete_if_ours(target: Target, key: str, run_id: str) -> None:
    try:
        found = target.head(key)
        if found is not None and found.metadata.get(RUN_METADATA) == run_id:
            log.warning("removing %s://%s/%s (written by this failed copy)", target.scheme, target.bucket, key)
            target.delete(found)
    except Exception as err:  # the original failure matters more
        log.error("could not remove %s://%s/%s after a failed copy: %s", target.scheme, target.bucket, key, err)


def _delete_ours(target: Target, uploaded: list[RemoteObject], run_id: str) -> None:
    for obj in uploaded:
        _delete_if_ours(target, obj.key, run_id)


def _record_copy(store: BackupStore, record: ManifestRecord, new: Copy) -> tuple[bool, Copy]:
    """List the copy in the Azure manifest (compare-and-set on its ETag, re-read and retried on a race).
    Returns (changed, the entry as listed)."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        manifest = record.manifest
        current = next((c for c in manifest.copies if c.url == new.url), None)
        if current is not None and current.bytes == new.bytes and current.sha256 == new.sha256:
            return False, current
        copies = [c for c in manifest.copies if c.url != new.url] + [new]
        try:
            store.replace_manifest(record, manifest.model_copy(update={"copies": copies}))
            return True, new
        except ConcurrentUpdateError:
            if attempt == RECORD_ATTEMPTS:
                raise
            log.info("%s changed while the copy was being listed in it: reading it again (%d/%d)", record.url,
                     attempt, RECORD_ATTEMPTS - 1)
            fresh = store.read_manifest(record.url)
            if fresh is None:
                raise ManifestError(f"{record.url} disappeared while the copy was being listed in it") from None
            if content_fields(fresh.manifest) != content_fields(record.manifest):
                raise ManifestError(f"{record.url} now describes different content: the copy is not listed; "
                                    f"run the copy again") from None
            record = fresh
    raise AssertionError("unreachable")
