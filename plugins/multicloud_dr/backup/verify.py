"""Read a stored backup back and check it: SHA-256 and size of every object against the manifest,
decompression to the end of the stream, the dump's completion footer, and every table's row count
and checksum. Only then is the manifest marked verified; "latest" only ever picks verified ones."""

from __future__ import annotations

import hashlib
import logging
import zlib
from dataclasses import dataclass

import zstandard
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient

from multicloud_dr.backup.codec import Decompressor
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.manifest import Manifest, ManifestError, Verification
from multicloud_dr.backup.scan import DumpScanner, ScanResult
from multicloud_dr.backup.store import BackupStore, ManifestRecord
from multicloud_dr.exceptions import ConfigError, DrError
from multicloud_dr.progress import MB, Progress

log = logging.getLogger(__name__)


class NoVerifiedBackupError(DrError):
    """No backup has passed verification."""


@dataclass
class ReadBack:
    sha256: str
    bytes: int
    raw_bytes: int
    scan: ScanResult
    error: str = ""   # decompression error, or "" if the stream decoded to its end
    frame_starts: tuple[int, ...] = ()   # compressed offsets where frames began
    frame_raw: tuple[int, ...] = ()      # and what each decompressed to

    def segments(self) -> list[tuple[int, int, int]]:
        """(offset, bytes, raw_bytes) of each frame, as the backup recorded them."""
        ends = [*self.frame_starts[1:], self.bytes]
        return [(start, end - start, raw) for start, end, raw in zip(self.frame_starts, ends, self.frame_raw,
                                                                      strict=True)]


def read_back(blob: BlobClient, codec: str, expected_bytes: int | None = None) -> ReadBack:
    sha = hashlib.sha256()
    scanner = DumpScanner()
    decomp = Decompressor(codec)
    stored = raw = 0
    error = ""
    progress = Progress(f"verify {blob.blob_name}", expected_bytes)
    for chunk in blob.download_blob(max_concurrency=2).chunks():
        sha.update(chunk)
        stored += len(chunk)
        progress.update(stored)
        if error:
            continue  # keep hashing to report the real SHA-256
        try:
            for out in decomp.pieces(chunk):
                raw += len(out)
                scanner.feed(out)
        except (zstandard.ZstdError, zlib.error) as err:
            error = f"decompression failed at stored byte ~{stored}: {err}"
    if not error and not decomp.finished():
        error = "the compressed stream ends early (truncated object)"
    return ReadBack(sha.hexdigest(), stored, raw, scanner.finish(), error, tuple(decomp.frame_starts),
                    tuple(decomp.frame_raw))


def check_against_manifest(manifest: Manifest, obj_index: int, rb: ReadBack) -> list[str]:
    obj = manifest.objects[obj_index]
    problems = []
    if rb.sha256 != obj.sha256:
        problems.append(f"{obj.name}: SHA-256 {rb.sha256} differs from the manifest's {obj.sha256}")
    if rb.bytes != obj.bytes:
        problems.append(f"{obj.name}: {rb.bytes} bytes stored, the manifest says {obj.bytes}")
    if rb.error:
        problems.append(f"{obj.name}: {rb.error}")
    elif not rb.scan.complete:
        problems.append(f"{obj.name}: the dump has no completion footer (cut short)")
    elif obj.segments and list(rb.frame_starts) != [s.offset for s in obj.segments]:
        # A restore reads each segment alone: each must be exactly one frame.
        problems.append(f"{obj.name}: its frames start at {len(rb.frame_starts)} offsets that differ from the "
                        f"manifest's {len(obj.segments)} segments")
    if not problems:
        for name, entry in manifest.tables.items():
            got = rb.scan.tables.get(name)
            if got is None or got.rows != entry.rows or f"{got.crc32:08x}" != entry.crc32:
                problems.append(f"table {name}: {got.rows if got else 'missing'} rows/crc "
                                f"{f'{got.crc32:08x}' if got else '-'} vs manifest {entry.rows}/{entry.crc32}")
    return problems


@dataclass(frozen=True)
class VerifyResult:
    manifest: str
    status: str
    detail: str
    seconds: float
    bytes: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def verify_backup(store: BackupStore, manifest_url: StorageUrl) -> VerifyResult:
    record = store.read_manifest(manifest_url)
    if record is None:
        raise ManifestError(f"no backup manifest at {manifest_url}: check the URL (drctl backups list shows them)")
    manifest = record.manifest
    progress = Progress(f"verify {manifest.backup_id}")
    problems: list[str] = []
    total = 0
    for index, obj in enumerate(manifest.objects):
        try:
            rb = read_back(store.blob(StorageUrl.parse(obj.name)), manifest.codec, obj.bytes)
        except ResourceNotFoundError:
            # A definite verdict, as a wrong hash is: the backup can no longer be restored. (Other errors of
            # the read are the storage's, not the backup's: they fail the verification and change nothing.)
            problems.append(f"{obj.name}: missing from storage")
            continue
        total += rb.bytes
        problems += check_against_manifest(manifest, index, rb)
    status = "failed" if problems else "verified"
    detail = "; ".join(problems) if problems else (
        f"{len(manifest.objects)} object(s), {total / MB:.1f} MB: SHA-256, decompression, footer and "
        f"{len(manifest.tables)} tables' rows/checksums match")
    if not (status == "verified" and manifest.verification.status == "verified"):
        # A re-verification that finds the backup still good leaves the manifest as it is (a re-run of a
        # finished date writes nothing, F10); any change of verdict is recorded.
        _record_verdict(store, record, Verification(status=status, at=store.server_now(), detail=detail[:2000]))
    result = VerifyResult(str(manifest_url), status, detail, round(progress.seconds, 3), total)
    (log.info if status == "verified" else log.error)(
        "verify %s: %s in %.1f s (%.1f MB): %s", manifest.backup_id, status, progress.seconds, total / MB, detail)
    return result


def record_failed_read(store: BackupStore, record: ManifestRecord, detail: str) -> None:
    """A read of the backup outside verification (a restore's) found its objects differ from the manifest
    or gone: the manifest says `failed` from now on, as a failed verification would. So "latest" and the
    failover gate no longer pick it, and retention no longer counts it among the verified backups it must
    keep (F28). A verification that finds it good again (`drctl verify`) marks it verified."""
    _record_verdict(store, record, Verification(status="failed", at=store.server_now(), detail=detail[:2000]))
    log.error("backup %s marked failed: %s", record.manifest.backup_id, detail)


def _record_verdict(store: BackupStore, record: ManifestRecord, verdict: Verification, attempts: int = 4) -> None:
    """Compare-and-set the verdict; a concurrent writer (a copy recording itself) means re-read and retry,
    as long as the backup's objects are the ones that were checked."""
    from multicloud_dr.backup.store import ConcurrentUpdateError

    for attempt in range(1, attempts + 1):
        try:
            store.replace_manifest(record, record.manifest.model_copy(update={"verification": verdict}))
            return
        except ConcurrentUpdateError:
            fresh = store.read_manifest(record.url)
            if attempt == attempts or fresh is None or fresh.manifest.objects != record.manifest.objects:
                raise
            record = fresh


def verified_backups(store: BackupStore, root: StorageUrl, database: str) -> list[ManifestRecord]:
    """Every verified backup of `database` under `root`, newest first (logical date, then when stored)."""
    records = [r for r in store.list_manifests(root, database) if r.manifest.verification.status == "verified"]
    if not records:
        raise NoVerifiedBackupError(f"no verified backup of {database} under {root}: run a backup and "
                                    f"`drctl verify` first")
    return records[::-1]


def latest_verified(store: BackupStore, root: StorageUrl, database: str) -> ManifestRecord:
    return verified_backups(store, root, database)[0]


LATEST = "latest"


@dataclass(frozen=True)
class BackupChoice:
    """The backup a reference names, where it is, and for "latest" the older verified backups a restore
    falls back on, newest first, when the newest turns out damaged (F28)."""

    store: BackupStore
    record: ManifestRecord
    ref: str
    fallbacks: tuple[ManifestRecord, ...] = ()


def resolve_backup(storage: str | BlobServiceClient, ref: str, location: StorageUrl | str | None = None,
                   database: str | None = None) -> BackupChoice:
    """`ref` is "latest" (the newest verified backup of `database` under `location`, wasb://CONTAINER/PREFIX)
    or a manifest URL (that backup, whatever its state: the restore says if it is not verified). `storage`:
    the storage connection's id or URI (or a client already made from one)."""
    if isinstance(storage, str):
        from multicloud_dr.connections.wasb import blob_service_client

        storage = blob_service_client(storage)
    service = storage
    if ref == LATEST:
        if not (location and database):
            raise ConfigError('"latest" needs the backup location (wasb://CONTAINER/PREFIX) and the backed-up '
                              'database to find the newest verified backup')
        root = StorageUrl.parse(location) if isinstance(location, str) else location
        store = BackupStore(service, root.bucket)
        store.check_container()
        newest, *older = verified_backups(store, root, database)
        return BackupChoice(store, newest, ref, tuple(older))
    url = StorageUrl.parse(ref)
    store = BackupStore(service, url.bucket)
    record = store.read_manifest(url)
    if record is None:
        raise ManifestError(f"no backup manifest at {url}: check the URL (drctl backups list shows them)")
    return BackupChoice(store, record, ref)
