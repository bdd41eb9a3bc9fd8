"""F17 with standard tools only: back up a database full of awkward objects, restore it into the lab's
DR server with nothing but the blob's bytes, `zstd -dc` and the `mysql` client, and compare everything."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from datetime import UTC, datetime

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.source import option_file
from multicloud_dr.connections import get_endpoint

from .conftest import mysql_connect


def _connect(endpoint, database):
    return mysql_connect(endpoint, database)


def test_f17_backup_restores_equal_with_standard_tools_only(lab, small_db, blob_service, tmp_path, snapshot,
                                                            delete_blob_prefix):
    primary, dr = get_endpoint("mysql_primary"), get_endpoint("mysql_dr")
    source_db = small_db[0]
    root = StorageUrl("wasb", "dr-backups", f"test-roundtrip-{uuid.uuid4().hex[:8]}")
    result = run_backup(BackupRequest(primary, source_db, root, datetime(2026, 11, 3, 3, tzinfo=UTC)), blob_service)
    source = snapshot(primary, source_db)
    assert source["routines"] and source["triggers"] and source["views"] and source["events"]
    assert any(name == "table vet schedule" for name in source), "the table with a space is missing"

    # 1. the stored bytes, fetched as any blob client would (az storage blob download, azcopy, ...)
    dump = tmp_path / "dump.sql.zst"
    obj = StorageUrl.parse(result.manifest.objects[0].name)
    with open(dump, "wb") as handle:
        blob_service.get_container_client(obj.bucket).get_blob_client(obj.path).download_blob().readinto(handle)
    # 2. standard tools only: zstd and the mysql client, credentials from an option file
    target_db = f"restored_{uuid.uuid4().hex[:6]}"
    try:
        with option_file(dr) as cnf:
            subprocess.run(["mysql", f"--defaults-file={cnf}", "-e", f"CREATE DATABASE {target_db}"], check=True)
            restore = subprocess.run(["bash", "-o", "pipefail", "-c",
                                      f'zstd -dc "{dump}" | mysql --defaults-file="{cnf}" {target_db}'],
                                     capture_output=True, text=True, check=False)
        assert restore.returncode == 0, restore.stderr
        restored = snapshot(dr, target_db)
        assert restored.keys() == source.keys()
        for key in source:
            assert restored[key] == source[key], f"{key} differs after the round trip"
        with contextlib.closing(_connect(dr, target_db)) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM audit_log")  # the table without a primary key
            assert cur.fetchone()[0] == result.manifest.tables["audit_log"].rows > 0
    finally:
        with contextlib.closing(_connect(dr, None)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {target_db}")
        delete_blob_prefix(blob_service, root)


