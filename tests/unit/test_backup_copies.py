"""Copies without servers: where objects go, the streaming reader's checks, sizes, result shape."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from multicloud_dr.backup.copies import (
    S3_MAX_PARTS,
    CopiedObject,
    CopyResult,
    HashingReader,
    SourceDamagedError,
    _precondition_failed,
    _s3_part_size,
    copy_digest,
    make_target,
    parse_destination,
    plan_copy,
    relative_path,
)
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.manifest import Copy, Manifest, ManifestError, StoredObject
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, InputError
from multicloud_dr.progress import MB

STAMP = "20261122T030000Z"
SHA = "a" * 64


def manifest(root: str = "wasb://dr-backups/mysql", names: tuple[str, ...] = ("petclinic.sql.zst",),
             database: str = "petclinic") -> Manifest:
    when = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    objects = [StoredObject(name=f"{root}/{database}/{STAMP}/{n}", bytes=10 + i, sha256=f"{i:x}" * 64, raw_bytes=40)
               for i, n in enumerate(names)]
    return Manifest(backup_id=f"{database}/{STAMP}", database=database, logical_date=when, source={},
                    started_at=when, finished_at=when, stored_at=when, tools={}, codec="zstd", objects=objects,
                    tables={})


@pytest.mark.parametrize(("root", "destination", "expected"), [
    ("wasb://dr-backups/mysql", "s3://bucket/copies", "s3://bucket/copies/petclinic/20261122T030000Z"),
    ("wasb://dr-backups/mysql", "gs://bucket", "gs://bucket/petclinic/20261122T030000Z"),
    ("wasb://dr-backups/a/b/c", "s3://bucket/x/y/", "s3://bucket/x/y/petclinic/20261122T030000Z"),
    ("wasb://dr-backups", "gs://bucket/p", "gs://bucket/p/petclinic/20261122T030000Z"),
])
def test_the_copy_keeps_the_path_below_the_backup_root(root: str, destination: str, expected: str):
    url = StorageUrl.parse(f"{root}/petclinic/{STAMP}/manifest.json")
    plan = plan_copy(url, manifest(root), StorageUrl.parse(destination))
    assert str(plan.destination_manifest) == f"{expected}/manifest.json"
    assert [str(p.destination) for p in plan.objects] == [f"{expected}/petclinic.sql.zst"]
    assert [str(p.source) for p in plan.objects] == [f"{root.rstrip('/')}/petclinic/{STAMP}/petclinic.sql.zst"]


def test_objects_outside_the_backup_are_refused():
    url = StorageUrl.parse(f"wasb://dr-backups/mysql/petclinic/{STAMP}/manifest.json")
    elsewhere = manifest("wasb://dr-backups/other")
    with pytest.raises(ManifestError, match="not under"):
        plan_copy(url, elsewhere, StorageUrl.parse("s3://b/p"))
    other_backup = manifest().model_copy(update={"objects": [StoredObject(
        name="wasb://dr-backups/mysql/petclinic/20250101T000000Z/petclinic.sql.zst", bytes=1, sha256=SHA,
        raw_bytes=1)]})
    with pytest.raises(ManifestError, match="inside the backup"):
        plan_copy(url, other_backup, StorageUrl.parse("s3://b/p"))
    with pytest.raises(ManifestError, match="not under"):
        relative_path(StorageUrl.parse("wasb://c/mysql"), StorageUrl.parse("wasb://c/mysqlx/a"))
    assert relative_path(StorageUrl.parse("wasb://c"), StorageUrl.parse("wasb://c/a/b")) == "a/b"


def test_a_manifest_at_the_wrong_path_is_refused():
    url = StorageUrl.parse(f"wasb://dr-backups/mysql/other_db/{STAMP}/manifest.json")
    with pytest.raises(ManifestError, match="moved"):
        plan_copy(url, manifest(), StorageUrl.parse("s3://b/p"))


@pytest.mark.parametrize("bad", ["wasb://c/p", "wasbs://c/p"])
def test_only_other_clouds_are_destinations(bad: str):
    with pytest.raises(ConfigError, match="another cloud"):
        parse_destination(bad)
    with pytest.raises(ConfigError, match="not a storage URL"):
        parse_destination("ftp://host/p")
    assert parse_destination("s3://b").path == "" and parse_destination("gs://b/x/").path == "x"


def test_the_connection_must_belong_to_the_destination_cloud():
    with pytest.raises(ConfigError, match="connection of type aws or s3") as caught:
        make_target(StorageUrl.parse("s3://b/p"), Endpoint("google_cloud_platform"))
    assert isinstance(caught.value, InputError)
    with pytest.raises(ConfigError, match="google_cloud_platform"):
        make_target(StorageUrl.parse("gs://b/p"), Endpoint("aws"))
    with pytest.raises(ConfigError, match="positive"):
        make_target(StorageUrl.parse("s3://b/p"), Endpoint("aws"), part_size=0)


def test_s3_parts_grow_so_any_object_fits_in_10000_parts():
    assert _s3_part_size(0, 8 * MB) == 8 * MB
    assert _s3_part_size(3 * MB, 1 * MB) == 5 * MB          # S3's minimum part size
    huge = 500 * 1024 * MB                                   # 500 GiB
    part = _s3_part_size(huge, 8 * MB)
    assert part % MB == 0 and -(-huge // part) < S3_MAX_PARTS


def chunks_of(data: bytes, size: int):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_the_reader_streams_in_any_read_size_and_hashes():
    data = bytes(range(256)) * 4000
    reader = HashingReader(chunks_of(data, 1000), len(data), hashlib.sha256(data).hexdigest(), "x")
    out = bytearray()
    while piece := reader.read(777):
        assert reader.tell() == len(out) + len(piece)
        out += piece
    assert bytes(out) == data and reader.sha256 == hashlib.sha256(data).hexdigest()
    assert not reader.seekable() and reader.readable()
    assert reader.seek(0, io.SEEK_CUR) == len(data)
    with pytest.raises(io.UnsupportedOperation):
        reader.seek(0)


def test_the_reader_holds_one_chunk_plus_one_read_at_most():
    data = b"x" * (40 * 1024)
    reader = HashingReader(chunks_of(data, 1024), len(data), hashlib.sha256(data).hexdigest(), "x")
    while reader.read(4096):
        pass
    assert reader.peak_buffered <= 4096 + 1024


def test_damaged_data_never_hands_over_its_last_byte():
    data = b"0123456789" * 100
    reader = HashingReader(chunks_of(data, 64), len(data), hashlib.sha256(b"other").hexdigest(), "wasb://c/x")
    handed = 0
    with pytest.raises(SourceDamagedError, match="SHA-256"):
        while piece := reader.read(100):
            handed += len(piece)
    assert handed == len(data) - 100 and reader.tell() == handed


def test_read_all_checks_too():
    data = b"abc" * 10
    assert HashingReader([data], len(data), hashlib.sha256(data).hexdigest(), "x").read() == data
    with pytest.raises(SourceDamagedError):
        HashingReader([data], len(data), SHA, "x").read()


def test_a_stream_of_the_wrong_length_is_damage():
    data = b"abcdef"
    with pytest.raises(SourceDamagedError, match="ended after 6"):
        reader = HashingReader([data], 10, SHA, "x")
        while reader.read(4):
            pass
    with pytest.raises(SourceDamagedError, match="more than the 4"):
        HashingReader([data], 4, SHA, "x").read(100)


def test_copy_digest_is_the_object_sha_for_one_object():
    one = manifest()
    assert copy_digest(one) == one.objects[0].sha256
    two = manifest(names=("a.sql.zst", "b.sql.zst"))
    listing = "".join(f"{o.sha256}  {o.name.rsplit('/', 1)[-1]}\n" for o in two.objects)
    assert copy_digest(two) == hashlib.sha256(listing.encode()).hexdigest()


def test_the_result_is_json():
    when = datetime(2026, 11, 22, 3, 5, tzinfo=UTC)
    result = CopyResult("wasb://c/p/m", "s3://b/p/m", "db/stamp", Copy(url="s3://b/p/m", bytes=5, sha256=SHA,
                                                                       verified_at=when),
                        [CopiedObject("wasb://c/o", "s3://b/o", 5, SHA, uploaded=True, read_back=True)],
                        manifest_written=True, recorded=True, seconds=1.23456)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["copy"]["verified_at"].startswith("2026-11-22T03:05:00")
    assert data["bytes_uploaded"] == 5 and data["created"] is True and data["seconds"] == 1.235
    assert "5 bytes" not in result.summary() and "uploaded" in result.summary()


def test_s3_create_only_conflicts_are_recognised():
    def error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    assert _precondition_failed(error("PreconditionFailed", 412))
    assert _precondition_failed(error("ConditionalRequestConflict", 409))
    assert not _precondition_failed(error("AccessDenied", 403))
