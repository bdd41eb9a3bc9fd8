"""The static frontend's DR copies on the lab's real servers: moto S3 -> Azurite (Blob) and the GCS emulator.

Each test makes its own S3 bucket, Azure container and GCS bucket (one uuid name for all three) and removes
them afterwards. What is checked is what a user relies on: every copy byte-for-byte equal to the source and
marked with its SHA-256, headers kept, a re-run writes nothing, only changed objects move, nothing the
source still has is deleted. (The GCS emulator ignores ifGenerationMatch preconditions, so the conditional
writes are exercised for real only against Azurite here.)
"""

from __future__ import annotations

import gzip
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import FrontendConfig, load_topology
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.aws import aws_client
from multicloud_dr.connections.gcp import storage_client
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.exceptions import InputError
from multicloud_dr.frontend.sync import (
    BlobCopy,
    CopySync,
    FrontendSourceError,
    FrontendSyncInputError,
    S3Source,
    run_frontend_sync,
    sync_copy,
    sync_frontend,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
BIG = "assets/bundle.bin"
UNICODE = "assets/fonts and icons/ünïcødé 日本語.css"


@dataclass
class Site:
    """One test's three storage places, all named `name`, and the source files put in S3 (key -> bytes)."""

    name: str
    s3: object
    container: object
    gcs: object
    files: dict[str, bytes]

    @property
    def source(self) -> str:
        return f"s3://{self.name}/site"

    def config(self, delete_removed: bool = False) -> FrontendConfig:
        return FrontendConfig(source=self.source, source_conn_id="aws_primary", delete_removed=delete_removed,
                              copies=[{"url": f"wasb://{self.name}/dr/site", "conn_id": "azure_blob_dr"},
                                      {"url": f"gs://{self.name}/site", "conn_id": "gcs_dr"}])

    def put(self, key: str, data: bytes, **headers) -> None:
        self.s3.put_object(Bucket=self.name, Key=f"site/{key}", Body=data, **headers)
        self.files[key] = data

    def blob_copies(self) -> dict[str, object]:
        return {b.name.removeprefix("dr/site/"): b
                for b in self.container.list_blobs(name_starts_with="dr/site/", include=["metadata"])}

    def gcs_copies(self) -> dict[str, object]:
        return {b.name.removeprefix("site/"): b for b in self.gcs.list_blobs(self.name, prefix="site/")}

    def blob_bytes(self, key: str) -> bytes:
        return self.container.download_blob(f"dr/site/{key}", decompress=False).readall()   # the stored bytes

    def gcs_bytes(self, key: str) -> bytes:
        return self.gcs.bucket(self.name).blob(f"site/{key}").download_as_bytes(raw_download=True)

    def state(self) -> dict:
        """What any write would change: Blob ETag and Last-Modified, GCS generation, metageneration, updated."""
        return {"blob": {k: (b.etag, b.last_modified) for k, b in self.blob_copies().items()},
                "gcs": {k: (b.generation, b.metageneration, b.updated) for k, b in self.gcs_copies().items()}}


def _empty(s3, container, gcs, name: str) -> None:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=name)
    for page in pages:
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)
    container.delete_container()
    bucket = gcs.bucket(name)
    for blob in gcs.list_blobs(name):
        blob.delete()
    bucket.delete()


@pytest.fixture
def site(lab):
    """A small static site in a fresh S3 bucket (one object > 8 MiB, nested keys, spaces and unicode), and an
    empty Azure container and GCS bucket of the same name for its copies."""
    name = f"fe-test-{uuid.uuid4().hex[:12]}"
    s3 = aws_client(get_endpoint("aws_primary"), "s3")
    s3.create_bucket(Bucket=name)
    container = blob_service_client(get_endpoint("azure_blob_dr")).create_container(name)
    gcs = storage_client(get_endpoint("gcs_dr"))
    gcs.create_bucket(name)
    site = Site(name, s3, container, gcs, {})
    site.put("index.html", b"<!doctype html><title>PetClinic</title>", ContentType="text/html",
             CacheControl="no-cache")
    site.put("assets/app.js", gzip.compress(b"console.log('petclinic');" * 50), ContentType="application/javascript",
             ContentEncoding="gzip", CacheControl="public, max-age=31536000, immutable")
    site.put(UNICODE, b"body { font-family: serif }", ContentType="text/css")
    site.put(BIG, os.urandom(9 * MiB + 4321), ContentType="application/octet-stream")
    site.put("img/logos/2026/logo.svg", b"<svg/>", ContentType="image/svg+xml")
    yield site
    _empty(s3, container, gcs, name)


def assert_copies_equal_source(site: Site) -> None:
    blobs, gcs = site.blob_copies(), site.gcs_copies()
    assert set(blobs) == set(site.files) == set(gcs)
    for key, data in site.files.items():
        sha = hashlib.sha256(data).hexdigest()
        assert site.blob_bytes(key) == data, f"Blob copy of {key} differs"
        assert site.gcs_bytes(key) == data, f"GCS copy of {key} differs"
        assert blobs[key].metadata["sha256"] == sha and gcs[key].metadata["sha256"] == sha


def test_sync_copies_every_object_byte_for_byte_with_its_headers(site):
    result = sync_frontend(site.config()).to_dict()

    assert result["ok"] and result["copied"] == 2 * len(site.files) and result["failed"] == 0
    assert result["bytes_copied"] == 2 * sum(len(d) for d in site.files.values())
    assert_copies_equal_source(site)
    blob, gcs = site.blob_copies()["assets/app.js"], site.gcs_copies()["assets/app.js"]
    assert (blob.content_settings.content_type, blob.content_settings.content_encoding,
            blob.content_settings.cache_control) == ("application/javascript", "gzip",
                                                     "public, max-age=31536000, immutable")
    assert (gcs.content_type, gcs.content_encoding, gcs.cache_control) == ("application/javascript", "gzip",
                                                                          "public, max-age=31536000, immutable")
    assert site.blob_copies()["index.html"].content_settings.cache_control == "no-cache"
    assert site.gcs_copies()[UNICODE].content_type == "text/css"


def test_a_rerun_copies_nothing_and_writes_nothing(site):
    sync_frontend(site.config())
    before = site.state()

    again = sync_frontend(site.config()).to_dict()

    assert again["copied"] == 0 and again["skipped"] == 2 * len(site.files)
    assert all(c["checked"] == 0 and c["retagged"] == 0 for c in again["copies"]), "a source was read again"
    assert site.state() == before


def test_a_changed_object_is_the_only_one_copied(site):
    sync_frontend(site.config())
    before = site.state()
    site.put("index.html", b"<!doctype html><title>PetClinic 2</title>", ContentType="text/html")
    # Same size, other bytes: only the SHA-256 read from the source tells them apart.
    same_size = bytearray(site.files[BIG])
    same_size[5 * MiB] ^= 0xFF
    site.put(BIG, bytes(same_size))

    result = sync_frontend(site.config()).to_dict()

    assert result["copied"] == 4 and result["skipped"] == 2 * (len(site.files) - 2)
    assert {c["key"] for copy in result["copies"] for c in copy["changes"]} == {"index.html", BIG}
    assert_copies_equal_source(site)
    after = site.state()
    for side in ("blob", "gcs"):
        unchanged = set(site.files) - {"index.html", BIG}
        assert {k: after[side][k] for k in unchanged} == {k: before[side][k] for k in unchanged}


def test_the_same_bytes_uploaded_again_are_not_copied_again(site):
    """A multipart upload of the same bytes has another ETag: the source is read once, the copy is only retagged,
    and the next run reads nothing."""
    sync_frontend(site.config())
    key = f"site/{BIG}"
    upload = site.s3.create_multipart_upload(Bucket=site.name, Key=key)
    data = site.files[BIG]
    parts = [site.s3.upload_part(Bucket=site.name, Key=key, UploadId=upload["UploadId"], PartNumber=n, Body=chunk)
             for n, chunk in ((1, data[:5 * MiB]), (2, data[5 * MiB:]))]
    site.s3.complete_multipart_upload(Bucket=site.name, Key=key, UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"ETag": p["ETag"], "PartNumber": n} for n, p in enumerate(parts, 1)]})

    result = sync_frontend(site.config()).to_dict()

    assert result["copied"] == 0 and result["retagged"] == 2
    assert [c["checked"] for c in result["copies"]] == [1, 0], "the second copy reused the first one's hash"
    assert_copies_equal_source(site)
    rerun = sync_frontend(site.config()).to_dict()
    assert rerun["retagged"] == 0 and all(c["checked"] == 0 for c in rerun["copies"])


def test_a_removed_source_object_is_kept_unless_delete_removed(site):
    sync_frontend(site.config())
    site.s3.delete_object(Bucket=site.name, Key="site/img/logos/2026/logo.svg")
    del site.files["img/logos/2026/logo.svg"]

    kept = sync_frontend(site.config()).to_dict()

    assert kept["extra"] == 2 and kept["deleted"] == 0 and kept["copied"] == 0
    assert "img/logos/2026/logo.svg" in site.blob_copies() and "img/logos/2026/logo.svg" in site.gcs_copies()

    deleted = sync_frontend(site.config(delete_removed=True)).to_dict()

    assert deleted["deleted"] == 2 and deleted["extra"] == 0
    assert_copies_equal_source(site)   # exactly the source's keys, every one intact


def test_a_copy_written_by_someone_else_meanwhile_is_not_overwritten(site):
    """Between plan and apply another writer replaces the Blob copy of index.html: our conditional write fails
    for that object alone, their bytes stay, the deletes of the plan are postponed, and the rest is copied.
    (Blob only: the GCS emulator does not enforce ifGenerationMatch.)"""

    sync_frontend(site.config())
    site.put("index.html", b"<title>new at the source</title>", ContentType="text/html")
    site.put("new.html", b"<title>new page</title>", ContentType="text/html")
    site.s3.delete_object(Bucket=site.name, Key="site/img/logos/2026/logo.svg")
    source = S3Source(StorageUrl.parse(site.source), "aws_primary")
    sync = CopySync(source, source.list(), BlobCopy(StorageUrl.parse(f"wasb://{site.name}/dr/site"), "azure_blob_dr"),
                    delete_removed=True)
    decisions = sync.plan()
    assert {d.key: d.action for d in decisions if d.action != "skip"} == {
        "index.html": "copy", "new.html": "copy", "img/logos/2026/logo.svg": "delete"}
    site.container.upload_blob("dr/site/index.html", b"<title>someone else's</title>", overwrite=True)

    result = sync.apply(decisions)

    assert result.failed == 1 and result.copied == 1 and result.deleted == 0 and result.deletes_postponed
    assert "someone else" in next(c.reason for c in result.changes if c.action == "failed")
    assert site.blob_bytes("index.html") == b"<title>someone else's</title>"
    assert site.blob_bytes("new.html") == site.files["new.html"]
    assert "img/logos/2026/logo.svg" in site.blob_copies()
    # Theirs carries no sha256 of ours: the next run copies the source over it, deliberately.
    assert "sha256" not in site.blob_copies()["index.html"].metadata


def test_dry_run_reports_and_writes_nothing(site):
    result = sync_frontend(site.config(), dry_run=True).to_dict()

    assert result["dry_run"] and result["copied"] == 0
    assert [c["planned"] for c in result["copies"]] == [{"copy": len(site.files)}] * 2
    assert site.blob_copies() == {} and site.gcs_copies() == {}


def test_a_missing_copy_container_or_bucket_says_what_to_create(site):
    missing = f"fe-missing-{uuid.uuid4().hex[:8]}"
    for url, conn_id, hint in ((f"wasb://{missing}/site", "azure_blob_dr", "az storage container create"),
                               (f"gs://{missing}/site", "gcs_dr", "gcloud storage buckets create")):
        with pytest.raises(FrontendSyncInputError) as err:
            sync_copy(site.source, "aws_primary", url, conn_id)
        assert isinstance(err.value, InputError) and hint in str(err.value) and missing in str(err.value)
        assert "\n" not in str(err.value)


def test_one_missing_copy_does_not_stop_the_other(site):
    config = FrontendConfig(source=site.source, source_conn_id="aws_primary", copies=[
        {"url": f"wasb://fe-missing-{uuid.uuid4().hex[:8]}/site", "conn_id": "azure_blob_dr"},
        {"url": f"gs://{site.name}/site", "conn_id": "gcs_dr"}])

    with pytest.raises(FrontendSyncInputError) as err:
        sync_frontend(config)

    assert err.value.result["copies"][1]["copied"] == len(site.files)
    assert {k: site.gcs_bytes(k) for k in site.files} == site.files


def test_a_missing_or_empty_source_is_refused_before_anything_is_touched(site):
    with pytest.raises(FrontendSourceError, match="aws s3 mb"):
        sync_copy(f"s3://fe-missing-{uuid.uuid4().hex[:8]}/site", "aws_primary", f"gs://{site.name}/site", "gcs_dr")
    sync_frontend(site.config())
    config = site.config(delete_removed=True)
    empty = FrontendConfig(**{**config.model_dump(), "source": f"s3://{site.name}/no-such-prefix"})
    with pytest.raises(FrontendSourceError, match="lists no objects"):
        sync_frontend(empty)
    assert set(site.blob_copies()) == set(site.files) == set(site.gcs_copies())


def _topology_with(site: Site | None, tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    if site is None:
        data.pop("frontend", None)
    else:
        data["frontend"] = {**site.config().model_dump(), "schedule": "15 2 * * *"}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_run_frontend_sync_reads_the_topology(site, tmp_path):
    result = run_frontend_sync(load_topology(_topology_with(site, tmp_path)))
    assert result["copied"] == 2 * len(site.files) and len(result["copies"]) == 2


def test_the_dag_copies_the_site_and_a_second_run_writes_nothing(site, airflow_db, tmp_path, monkeypatch, capfd):
    from multicloud_dr.lab.airflow_run import run_dag, task_results

    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(_topology_with(site, tmp_path)))
    first = run_dag("frontend_sync", ROOT / "dags", logical_date=datetime(2026, 11, 20, 2, 15, tzinfo=UTC))
    results = task_results(first)
    assert str(first.state) == "success", {k: v[0] for k, v in results.items()}
    assert "2 of 2 in sync" in results["summary"][1]["message"]
    assert_copies_equal_source(site)
    before = site.state()

    second = run_dag("frontend_sync", ROOT / "dags", logical_date=datetime(2026, 11, 21, 2, 15, tzinfo=UTC))

    assert str(second.state) == "success"
    assert site.state() == before
    logs = capfd.readouterr()
    assert "frontend_sync" in logs.out + logs.err, "the task logs were not captured: the check below means nothing"
    account_key = get_endpoint("azure_blob_dr").extra["connection_string"].split("AccountKey=")[1].split(";")[0]
    assert account_key not in logs.out + logs.err


def test_the_dag_parses_without_a_frontend_section(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(_topology_with(None, tmp_path)))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "frontend_sync.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("frontend_sync")
    assert [t.task_id for t in dag.tasks] == ["nothing_to_copy"] and type(dag.timetable).__name__ == "NullTimetable"
