"""mysql_binlog_archive run by Airflow (`dag.test()`) on the lab: the primary's binlogs since the backup land in
the archive as indexed pieces, and a second run writes nothing new."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import yaml

from multicloud_dr.backup import binlog
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.source import connect
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.lab.airflow_run import run_dag, task_results

ROOT = Path(__file__).resolve().parents[2]


def test_the_dag_archives_what_the_primary_wrote_since_the_backup_and_a_rerun_writes_nothing(
        airflow_db, tmp_path, monkeypatch, delete_blob_prefix):
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    root = StorageUrl("wasb", "dr-backups", f"e2e-binlog-{uuid.uuid4().hex[:8]}")
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["backup"]["location"] = str(root)
    data["backup"]["binlogs"] = {"interval_seconds": 2, "run_minutes": 0.1}   # a 6 s task
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    primary = get_endpoint("mysql_primary")
    store = BackupStore(service, root.bucket)
    try:
        backup = run_backup(BackupRequest(primary, "petclinic", root, datetime(2026, 11, 20, 3, tzinfo=UTC)), service)
        assert verify_backup(store, backup.manifest_url).status == "verified"
        with contextlib.closing(connect(primary, "petclinic")) as conn, conn.cursor() as cur:
            cur.execute("UPDATE owners SET telephone = telephone WHERE id = 1")   # a transaction after the backup
            cur.execute("CREATE TABLE IF NOT EXISTS e2e_binlog_probe (id INT PRIMARY KEY)")
            cur.execute("INSERT IGNORE INTO e2e_binlog_probe VALUES (1)")
            conn.commit()
        first = run_dag("mysql_binlog_archive", ROOT / "dags")
        results = task_results(first)
        assert str(first.state) == "success", results
        archived = results["archive_petclinic"][1]
        assert archived["pieces_written"] >= 1 and not archived["gaps"]
        archive = binlog.BinlogArchive(store, root, "petclinic")
        manifest = store.read_manifest(backup.manifest_url).manifest
        cov = binlog.coverage(archive.pieces(), manifest.binlog_file, manifest.binlog_position)
        assert cov.ok and cov.last_gtid, "from the backup's position on, whole"
        names = sorted(b.name for b in service.get_container_client(root.bucket).list_blobs(
            name_starts_with=root.path + "/petclinic/binlog/") if b.name.endswith((".binlog", ".binlog.json")))
        second = run_dag("mysql_binlog_archive", ROOT / "dags")
        assert str(second.state) == "success"
        assert task_results(second)["archive_petclinic"][1]["pieces_written"] == 0
        assert names == sorted(b.name for b in service.get_container_client(root.bucket).list_blobs(
            name_starts_with=root.path + "/petclinic/binlog/") if b.name.endswith((".binlog", ".binlog.json")))
    finally:
        with contextlib.closing(connect(primary, "petclinic")) as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS e2e_binlog_probe")
        delete_blob_prefix(service, root)
