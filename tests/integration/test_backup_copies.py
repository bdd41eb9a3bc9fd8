"""Extra copies of a real, verified backup: Azurite -> moto S3 and -> the GCS emulator, each copy read
back and checked, listed in the Azure manifest; re-runs upload nothing; damage and conflicts fail
without leaving anything behind or overwriting anything.

Every test writes under its own prefix (Azure, S3 and GCS) and removes it afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pymysql
import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from multicloud_dr.backup import copies
from multicloud_dr.backup.copies import (
    BackupNotVerifiedError,
    CopyConflictError,
    DestinationNotFoundError,
    SourceDamagedError,
    content_fields,
    copy_backup,
)
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.manifest import Copy, Manifest
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.aws import aws_client
from multicloud_dr.connections.gcp import storage_client
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.exceptions import ConfigError, InputError

LOGICAL_DATE = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
STAMP = "20261122T030000Z"
CONN = {"s3": "aws_primary", "gs": "gcs_dr"}
MiB = 1024 * 1024


@dataclass
class Lab:
    service: object
    container: str
    store: BackupStore
    s3: object
    s3_bucket: str
    gcs: object
    gcs_bucket: str


@pytest.fixture(scope="module")
def clouds(lab) -> Lab:
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    container = os.environ["LAB_AZURE_CONTAINER"]
    return Lab(service, container, BackupStore(service, container), aws_client(get_endpoint("aws_primary"), "s3"),
               os.environ["LAB_S3_BUCKET"], storage_client(get_endpoint("gcs_dr")), os.environ["LAB_GCS_BUCKET"])


@dataclass
class Prefixes:
    azure: str
    remote: str

    def destination(self, scheme: str, bucket: str, sub: str = "") -> StorageUrl:
        return StorageUrl.parse(f"{scheme}://{bucket}/{self.remote}{'/' + sub if sub else ''}")


@pytest.fixture
def prefixes(clouds: Lab) -> Iterator[Prefixes]:
    """A unique prefix, cleaned in all three clouds afterwards."""
    token = uuid.uuid4().hex[:10]
    prefix = Prefixes(f"test-copies/{token}", f"test-copies/{token}")
    yield prefix
    container = clouds.service.get_container_client(clouds.container)
    for blob in container.list_blobs(name_starts_with=prefix.azure + "/"):
        container.delete_blob(blob.name, delete_snapshots="include")
    pages = clouds.s3.get_paginator("list_objects_v2").paginate(Bucket=clouds.s3_bucket, Prefix=prefix.remote + "/")
    for page in pages:
        for obj in page.get("Contents", []):
            clouds.s3.delete_object(Bucket=clouds.s3_bucket, Key=obj["Key"])
    uploads = clouds.s3.list_multipart_uploads(Bucket=clouds.s3_bucket, Prefix=prefix.remote + "/")
    for upload in uploads.get("Uploads", []):
        clouds.s3.abort_multipart_upload(Bucket=clouds.s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for blob in clouds.gcs.list_blobs(clouds.gcs_bucket, prefix=prefix.remote + "/"):
        blob.delete()


def make_backup(clouds: Lab, prefix: str, database: str = "petclinic", verify: bool = True) -> StorageUrl:
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), database,
                                      StorageUrl.parse(f"wasb://{clouds.container}/{prefix}"), LOGICAL_DATE),
                        clouds.service)
    if verify:
        assert verify_backup(clouds.store, result.manifest_url).status == "verified"
    return result.manifest_url


def azure_manifest(clouds: Lab, url: StorageUrl) -> Manifest:
    record = clouds.store.read_manifest(url)
    assert record is not None
    return record.manifest


def s3_keys(clouds: Lab, prefix: str) -> dict[str, dict]:
    pages = clouds.s3.get_paginator("list_objects_v2").paginate(Bucket=clouds.s3_bucket, Prefix=prefix + "/")
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def gcs_keys(clouds: Lab, prefix: str) -> dict[str, object]:
    return {b.name: b for b in clouds.gcs.list_blobs(clouds.gcs_bucket, prefix=prefix + "/")}


def remote_bytes(clouds: Lab, scheme: str, key: str) -> bytes:
    if scheme == "s3":
        return clouds.s3.get_object(Bucket=clouds.s3_bucket, Key=key)["Body"].read()
    return clouds.gcs.bucket(clouds.gcs_bucket).blob(key).download_as_bytes()


def remote_state(clouds: Lab, scheme: str, prefix: str) -> dict[str, tuple]:
    """Each object's identity: S3 (ETag, LastModified), GCS (generation, updated)."""
    if scheme == "s3":
        return {k: (o["ETag"], o["LastModified"]) for k, o in s3_keys(clouds, prefix).items()}
    return {k: (b.generation, b.updated) for k, b in gcs_keys(clouds, prefix).items()}


def bucket_of(clouds: Lab, scheme: str) -> str:
    return clouds.s3_bucket if scheme == "s3" else clouds.gcs_bucket


def damage_source(clouds: Lab, manifest: Manifest) -> None:
    """Flip one byte of the Azure data blob, keeping its metadata (as bit rot or a bad rewrite would)."""
    blob = clouds.store.blob(StorageUrl.parse(manifest.objects[0].name))
    props = blob.get_blob_properties()
    data = bytearray(blob.download_blob().readall())
    data[len(data) // 2] ^= 0x01
    blob.upload_blob(bytes(data), overwrite=True, metadata=props.metadata,
                     content_settings=ContentSettings(content_type=props.content_settings.content_type))


# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_copy_is_streamed_verified_listed_and_a_rerun_uploads_nothing(clouds: Lab, prefixes: Prefixes, scheme: str):
    manifest_url = make_backup(clouds, prefixes.azure)
    source = azure_manifest(clouds, manifest_url)
    destination = prefixes.destination(scheme, bucket_of(clouds, scheme))

    result = copy_backup(clouds.service, manifest_url, destination, get_endpoint(CONN[scheme]))

    data_key = f"{prefixes.remote}/petclinic/{STAMP}/petclinic.sql.zst"
    manifest_key = f"{prefixes.remote}/petclinic/{STAMP}/manifest.json"
    assert result.destination == f"{scheme}://{bucket_of(clouds, scheme)}/{manifest_key}"
    assert result.created and result.manifest_written and result.recorded
    assert result.bytes_uploaded == source.bytes_stored == result.bytes_read_back
    data = remote_bytes(clouds, scheme, data_key)
    assert hashlib.sha256(data).hexdigest() == source.objects[0].sha256
    assert len(data) == source.objects[0].bytes
    # The destination's manifest is the Azure manifest's content, written last.
    dest_manifest = Manifest.parse(remote_bytes(clouds, scheme, manifest_key), manifest_key)
    assert content_fields(dest_manifest) == content_fields(source)
    assert json.loads(remote_bytes(clouds, scheme, manifest_key)) == json.loads(source.dump())
    # ... and the Azure manifest lists the copy.
    listed = azure_manifest(clouds, manifest_url)
    assert listed.copies == [result.copy]
    assert result.copy.url == result.destination
    assert result.copy.bytes == source.bytes_stored and result.copy.sha256 == source.objects[0].sha256
    assert result.copy.verified_at is not None and result.copy.verified_at.tzinfo is not None
    json.dumps(result.to_dict())

    # A re-run uploads nothing and writes nothing, not even the Azure manifest.
    before = remote_state(clouds, scheme, prefixes.remote)
    azure_etag = clouds.store.read_manifest(manifest_url).etag
    again = copy_backup(clouds.service, manifest_url, destination, get_endpoint(CONN[scheme]))
    assert not again.created and not again.manifest_written and not again.recorded
    assert again.bytes_uploaded == 0 and again.bytes_read_back == 0
    assert again.copy == result.copy
    assert remote_state(clouds, scheme, prefixes.remote) == before
    assert set(before) == {data_key, manifest_key}
    assert clouds.store.read_manifest(manifest_url).etag == azure_etag


def test_copies_to_both_clouds_at_once_are_both_listed(clouds: Lab, prefixes: Prefixes):
    """The DAG maps one copy task per destination: they update the Azure manifest concurrently."""
    manifest_url = make_backup(clouds, prefixes.azure)
    results: dict[str, object] = {}

    def run(scheme: str) -> None:
        try:
            results[scheme] = copy_backup(clouds.service, manifest_url,
                                          prefixes.destination(scheme, bucket_of(clouds, scheme)),
                                          get_endpoint(CONN[scheme]))
        except Exception as err:  # surfaced by the assertion below
            results[scheme] = err

    threads = [threading.Thread(target=run, args=(scheme,)) for scheme in ("s3", "gs")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(r, copies.CopyResult) for r in results.values()), results
    listed = azure_manifest(clouds, manifest_url).copies
    assert sorted(c.url for c in listed) == sorted(r.destination for r in results.values())
    for scheme in ("s3", "gs"):
        key = f"{prefixes.remote}/petclinic/{STAMP}/petclinic.sql.zst"
        assert hashlib.sha256(remote_bytes(clouds, scheme, key)).hexdigest() == listed[0].sha256


def test_listing_the_copy_survives_a_concurrent_manifest_update(clouds: Lab, prefixes: Prefixes, monkeypatch):
    manifest_url = make_backup(clouds, prefixes.azure)
    original = BackupStore.replace_manifest
    other = Copy(url="gs://elsewhere/x/petclinic/20261122T030000Z/manifest.json", bytes=1, sha256="0" * 64)
    raced: list[bool] = []

    def racing_replace(self, record, manifest):
        if not raced:  # someone else lists their copy between our read and our write
            raced.append(True)
            original(self, record, record.manifest.model_copy(update={"copies": [*record.manifest.copies, other]}))
        return original(self, record, manifest)

    monkeypatch.setattr(BackupStore, "replace_manifest", racing_replace)
    result = copy_backup(clouds.service, manifest_url, prefixes.destination("s3", clouds.s3_bucket),
                         get_endpoint("aws_primary"))
    assert raced and result.recorded
    assert azure_manifest(clouds, manifest_url).copies == [other, result.copy]


def test_an_unverified_backup_is_refused(clouds: Lab, prefixes: Prefixes):
    manifest_url = make_backup(clouds, prefixes.azure, verify=False)
    with pytest.raises(BackupNotVerifiedError, match="drctl verify") as caught:
        copy_backup(clouds.service, manifest_url, prefixes.destination("s3", clouds.s3_bucket),
                    get_endpoint("aws_primary"))
    assert isinstance(caught.value, InputError)
    assert s3_keys(clouds, prefixes.remote) == {}
    assert azure_manifest(clouds, manifest_url).copies == []


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_damaged_source_fails_the_copy_and_leaves_nothing_behind(clouds: Lab, prefixes: Prefixes, scheme: str):
    manifest_url = make_backup(clouds, prefixes.azure)
    damage_source(clouds, azure_manifest(clouds, manifest_url))
    with pytest.raises(SourceDamagedError, match="SHA-256"):
        copy_backup(clouds.service, manifest_url, prefixes.destination(scheme, bucket_of(clouds, scheme)),
                    get_endpoint(CONN[scheme]))
    assert remote_state(clouds, scheme, prefixes.remote) == {}, "nothing may be left at the destination"
    assert azure_manifest(clouds, manifest_url).copies == []


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_a_different_object_at_the_destination_is_never_overwritten(clouds: Lab, prefixes: Prefixes, scheme: str):
    manifest_url = make_backup(clouds, prefixes.azure)
    source = azure_manifest(clouds, manifest_url)
    key = f"{prefixes.remote}/petclinic/{STAMP}/petclinic.sql.zst"
    squatter = os.urandom(source.objects[0].bytes)  # same size, other bytes: only the hash tells
    if scheme == "s3":  # no sha256 in its metadata: its content is read and hashed
        clouds.s3.put_object(Bucket=clouds.s3_bucket, Key=key, Body=squatter)
    else:  # its metadata claims another sha256
        blob = clouds.gcs.bucket(clouds.gcs_bucket).blob(key)
        blob.metadata = {"sha256": hashlib.sha256(squatter).hexdigest()}
        blob.upload_from_string(squatter)
    before = remote_state(clouds, scheme, prefixes.remote)

    with pytest.raises(CopyConflictError, match="not overwritten"):
        copy_backup(clouds.service, manifest_url, prefixes.destination(scheme, bucket_of(clouds, scheme)),
                    get_endpoint(CONN[scheme]))
    assert remote_state(clouds, scheme, prefixes.remote) == before   # untouched, and no manifest written
    assert remote_bytes(clouds, scheme, key) == squatter
    assert azure_manifest(clouds, manifest_url).copies == []


def test_a_different_manifest_at_the_destination_is_never_overwritten(clouds: Lab, prefixes: Prefixes):
    manifest_url = make_backup(clouds, prefixes.azure)
    key = f"{prefixes.remote}/petclinic/{STAMP}/manifest.json"
    clouds.s3.put_object(Bucket=clouds.s3_bucket, Key=key, Body=b'{"not": "ours"}')
    with pytest.raises(CopyConflictError, match="not overwritten"):
        copy_backup(clouds.service, manifest_url, prefixes.destination("s3", clouds.s3_bucket),
                    get_endpoint("aws_primary"))
    assert set(s3_keys(clouds, prefixes.remote)) == {key}
    assert remote_bytes(clouds, "s3", key) == b'{"not": "ours"}'


def test_a_lost_manifest_write_is_completed_by_the_next_run(clouds: Lab, prefixes: Prefixes):
    """A run that stopped after uploading (no manifest at the destination): the next run uploads
    nothing, reads the object back, writes the manifest and lists the copy."""
    manifest_url = make_backup(clouds, prefixes.azure)
    destination = prefixes.destination("s3", clouds.s3_bucket)
    copy_backup(clouds.service, manifest_url, destination, get_endpoint("aws_primary"))
    manifest_key = f"{prefixes.remote}/petclinic/{STAMP}/manifest.json"
    clouds.s3.delete_object(Bucket=clouds.s3_bucket, Key=manifest_key)
    data_before = {k: v for k, v in remote_state(clouds, "s3", prefixes.remote).items() if k != manifest_key}

    again = copy_backup(clouds.service, manifest_url, destination, get_endpoint("aws_primary"))
    assert again.bytes_uploaded == 0 and again.bytes_read_back > 0 and again.manifest_written
    after = remote_state(clouds, "s3", prefixes.remote)
    assert manifest_key in after
    assert {k: v for k, v in after.items() if k != manifest_key} == data_before


def test_bad_destinations_fail_with_what_to_do(clouds: Lab, prefixes: Prefixes):
    manifest_url = make_backup(clouds, prefixes.azure)
    with pytest.raises(ConfigError, match="another cloud"):
        copy_backup(clouds.service, manifest_url, StorageUrl.parse("wasb://elsewhere/x"), get_endpoint("aws_primary"))
    with pytest.raises(ConfigError, match="connection of type"):
        copy_backup(clouds.service, manifest_url, prefixes.destination("s3", clouds.s3_bucket),
                    get_endpoint("gcs_dr"))
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    with pytest.raises(DestinationNotFoundError, match=f"aws s3 mb s3://{missing}"):
        copy_backup(clouds.service, manifest_url, StorageUrl.parse(f"s3://{missing}/x"), get_endpoint("aws_primary"))
    with pytest.raises(DestinationNotFoundError, match=f"gcloud storage buckets create gs://{missing}"):
        copy_backup(clouds.service, manifest_url, StorageUrl.parse(f"gs://{missing}/x"), get_endpoint("gcs_dr"))
    no_manifest = StorageUrl.parse(f"wasb://{clouds.container}/{prefixes.azure}/petclinic/20000101T000000Z/"
                                   f"manifest.json")
    with pytest.raises(InputError, match="no backup manifest"):
        copy_backup(clouds.service, no_manifest, prefixes.destination("s3", clouds.s3_bucket),
                    get_endpoint("aws_primary"))


# ----------------------------------------------------------------------------------------------
# A backup bigger than one part: S3 multipart and GCS resumable uploads, streamed.


@pytest.fixture
def incompressible_database(mysql_primary_admin: dict) -> Iterator[Callable[[int], str]]:
    names: list[str] = []
    conn = pymysql.connect(**mysql_primary_admin, autocommit=True)

    def make(megabytes: int) -> str:
        name = f"copies_{uuid.uuid4().hex[:10]}"
        names.append(name)
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE TABLE `{name}`.blobs (id INT PRIMARY KEY, body LONGBLOB) ENGINE=InnoDB")
            for i in range(megabytes):
                cur.execute(f"INSERT INTO `{name}`.blobs VALUES (%s, %s)", (i, os.urandom(1024 * 1024)))
        return name

    yield make
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def test_a_multi_part_backup_streams_in_parts_and_damage_aborts_every_part(
        clouds: Lab, prefixes: Prefixes, incompressible_database, monkeypatch):
    database = incompressible_database(9)   # ~18 MB of hex in the dump, ~10 MB stored
    manifest_url = make_backup(clouds, prefixes.azure, database)
    source = azure_manifest(clouds, manifest_url)
    size = source.objects[0].bytes
    part = 5 * MiB
    assert size > 8 * MiB, "the test needs an object bigger than GCS's single-request limit and two S3 parts"
    # Small Azure GETs (the SDK's default first GET is 32 MiB, bigger than this object) so the test
    # can tell a streamed copy from a buffered one.
    service = BlobServiceClient.from_connection_string(os.environ["LAB_AZURE_CONNECTION_STRING"],
                                                       max_single_get_size=MiB, max_chunk_get_size=MiB)
    readers: list[copies.HashingReader] = []
    real_reader = copies.HashingReader

    def spy(*args, **kwargs):
        readers.append(real_reader(*args, **kwargs))
        return readers[-1]

    monkeypatch.setattr(copies, "HashingReader", spy)
    key = f"{prefixes.remote}/ok/{database}/{STAMP}/{database}.sql.zst"
    for scheme in ("s3", "gs"):
        result = copy_backup(service, manifest_url, prefixes.destination(scheme, bucket_of(clouds, scheme), "ok"),
                             get_endpoint(CONN[scheme]), part_size=part, concurrency=2)
        assert result.bytes_uploaded == size
        assert hashlib.sha256(remote_bytes(clouds, scheme, key)).hexdigest() == source.objects[0].sha256
    etag = clouds.s3.head_object(Bucket=clouds.s3_bucket, Key=key)["ETag"]
    assert etag.strip('"').endswith(f"-{-(-size // part)}"), f"expected a multipart upload, ETag {etag}"
    # Memory: at most one source chunk plus the part being read, never the whole object.
    assert len(readers) == 2 and max(r.peak_buffered for r in readers) <= part + MiB < size
    assert len(azure_manifest(clouds, manifest_url).copies) == 2

    damage_source(clouds, source)
    for scheme in ("s3", "gs"):
        with pytest.raises(SourceDamagedError):
            copy_backup(service, manifest_url, prefixes.destination(scheme, bucket_of(clouds, scheme), "damaged"),
                        get_endpoint(CONN[scheme]), part_size=part, concurrency=2)
        assert remote_state(clouds, scheme, f"{prefixes.remote}/damaged") == {}
    pending = clouds.s3.list_multipart_uploads(Bucket=clouds.s3_bucket, Prefix=f"{prefixes.remote}/damaged/")
    assert not pending.get("Uploads"), "the damaged copy's multipart upload must be aborted"
    assert len(azure_manifest(clouds, manifest_url).copies) == 2


@pytest.mark.parametrize("size", [1024, 11 * MiB], ids=["single-put", "multipart"])
def test_s3_writes_are_create_only_even_when_a_writer_races_past_the_check(clouds: Lab, prefixes: Prefixes,
                                                                            size: int):
    """The look-before-write can race with another writer: S3 itself must refuse to replace (If-None-Match)."""
    target = copies.S3Target(get_endpoint("aws_primary"), clouds.s3_bucket, part_size=5 * MiB, concurrency=2)
    key = f"{prefixes.remote}/raced.bin"
    clouds.s3.put_object(Bucket=clouds.s3_bucket, Key=key, Body=b"theirs")
    data = os.urandom(size)
    reader = copies.HashingReader([data], size, hashlib.sha256(data).hexdigest(), "test")
    with pytest.raises(copies.ObjectExistsError):
        target.upload(key, reader, size, "application/octet-stream", {})
    with pytest.raises(copies.ObjectExistsError):
        target.put_new(key, b"{}", "application/json", {})
    assert remote_bytes(clouds, "s3", key) == b"theirs"
