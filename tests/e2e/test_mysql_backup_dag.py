"""mysql_backup run by Airflow (`dag.test()`) on the lab: every step, then the same date again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.aws import aws_client
from multicloud_dr.connections.gcp import storage_client
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.lab.airflow_run import run_dag, task_results

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


@pytest.fixture
def topology(tmp_path, monkeypatch, delete_blob_prefix):
    """The shipped topology with this test's own storage prefixes."""
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    data["backup"]["location"] = f"wasb://dr-backups/{prefix}"
    data["backup"]["copies"] = [{"url": f"s3://petclinic-dr-backups/{prefix}", "conn_id": "aws_primary"},
                                {"url": f"gs://petclinic-dr-backups/{prefix}", "conn_id": "gcs_dr"}]
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    yield data, prefix
    delete_blob_prefix(blob_service_client(get_endpoint("azure_blob_dr")), StorageUrl("wasb", "dr-backups", prefix))


def _azure_blobs(prefix: str) -> dict[str, str]:
    container = blob_service_client(get_endpoint("azure_blob_dr")).get_container_client("dr-backups")
    return {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix + "/")}


def test_nightly_backup_end_to_end_and_a_rerun_writes_nothing(airflow_db, topology, capfd):
    _, prefix = topology
    when = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    dag_run = run_dag("mysql_backup", DAGS, logical_date=when)
    results = task_results(dag_run)
    assert str(dag_run.state) == "success", {k: v[0] for k, v in results.items()}
    summary = results["petclinic.dump_and_upload"][1]
    manifest_url = StorageUrl.parse(summary["manifest"])
    assert manifest_url.path == f"{prefix}/petclinic/20261120T030000Z/manifest.json"
    assert summary["rows"] > 0 and summary["bytes_stored"] > 0 and summary["gtid"]

    store = BackupStore(blob_service_client(get_endpoint("azure_blob_dr")), "dr-backups")
    manifest = store.read_manifest(manifest_url).manifest
    assert manifest.verification.status == "verified"
    assert sorted(c.url.split("://")[0] for c in manifest.copies) == ["gs", "s3"]
    s3 = aws_client(get_endpoint("aws_primary"), "s3")
    key = f"{prefix}/petclinic/20261120T030000Z/petclinic.sql.zst"
    assert s3.head_object(Bucket="petclinic-dr-backups", Key=key)["ContentLength"] == manifest.objects[0].bytes
    gcs_blob = storage_client(get_endpoint("gcs_dr")).bucket("petclinic-dr-backups").get_blob(key)
    assert gcs_blob is not None and gcs_blob.size == manifest.objects[0].bytes
    assert results["petclinic.retention"][1]["counts"]["deleted"] == 0
    assert results["petclinic.publish"][1]["manifest"] == str(manifest_url)

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetModel.name == "mysql_backup.petclinic").all())
        assert any(e.extra.get("manifest") == str(manifest_url) for e in events), "no asset event for the backup"

    logs = capfd.readouterr()
    assert "dump_and_upload" in logs.out + logs.err, "the task logs were not captured: the check below means nothing"
    secrets = [get_endpoint("mysql_primary").password,
               get_endpoint("azure_blob_dr").extra["connection_string"].split("AccountKey=")[1].split(";")[0]]
    assert not any(secret in logs.out + logs.err for secret in secrets), "a secret reached the task log (F15)"

    before = _azure_blobs(prefix)
    again = run_dag("mysql_backup", DAGS, logical_date=when)  # cleared and re-run (F10)
    assert str(again.state) == "success"
    assert task_results(again)["petclinic.dump_and_upload"][1]["created"] is False
    assert _azure_blobs(prefix) == before, "re-running the same date changed stored objects"
