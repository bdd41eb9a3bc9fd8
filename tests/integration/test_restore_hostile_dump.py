"""A backup whose dump holds a statement the dump tool never writes, with hashes that match.

The backup is made through the normal path from a source database, then a copy of it is crafted: its
dump has one statement added (SET GLOBAL, GRANT, an INSERT into mysql.user, a trigger that writes to
mysql.user), recompressed in segments as the backup writes them, hashed, and given a manifest that
verification accepts (sizes, SHA-256, footer, every table's rows and checksums). Only the restore's
statement check can stop it, and it must, before the target database is touched: every statement of a
restore runs as the DR server's admin.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime

import pytest
import zstandard

from multicloud_dr.backup.codec import SegmentedCompressor
from multicloud_dr.backup.layout import BackupLayout, StorageUrl, stamp
from multicloud_dr.backup.manifest import Segment, StoredObject
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import get_endpoint
from multicloud_dr.restore.mysql_restore import (
    RestoreNotUsableError,
    RestoreRequest,
    check_usable,
    restore_status,
    run_restore,
    scratch_name,
)
from multicloud_dr.restore.statements import DumpStatementError

from .conftest import mysql_connect

INTRUDER = "mcdr_intruder"
MAX_CONNECT_ERRORS = 4242


@pytest.fixture
def target(dr, restore_target):
    """A target database on the DR server that holds yesterday's data; the intruder a crafted dump would
    create is dropped at the end whatever happened."""
    yield restore_target("t_hostile_dump", yesterday=True)
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{INTRUDER}'@'%'")


def _crafted_backup(record, store, inject, day: int):
    """A copy of `record`'s backup, at another stamp, whose dump has `inject(sql) -> sql` applied; its
    manifest lists the new object's size, SHA-256 and segments, and says verified (checked below)."""
    obj = record.manifest.objects[0]
    stored = store.blob(StorageUrl.parse(obj.name)).download_blob().readall()
    with zstandard.ZstdDecompressor().stream_reader(stored, read_across_frames=True) as reader:
        sql = reader.read()
    crafted = inject(sql)
    assert crafted != sql
    comp = SegmentedCompressor("zstd")
    data = comp.compress(crafted) + comp.flush()
    layout = BackupLayout(BackupLayout.from_manifest_url(record.url).root, record.manifest.database,
                          stamp(datetime(2026, 11, day, 3, tzinfo=UTC)))
    store.blob(layout.data).upload_blob(data)
    manifest = record.manifest.model_copy(deep=True, update={
        "backup_id": f"{record.manifest.database}/{layout.stamp}",
        "logical_date": datetime(2026, 11, day, 3, tzinfo=UTC),
        "objects": [StoredObject(name=str(layout.data), bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                                 raw_bytes=len(crafted),
                                 segments=[Segment(offset=o, bytes=n, raw_bytes=r) for o, n, r in comp.segments])],
    })
    assert store.create_manifest(layout.manifest, manifest)
    result = verify_backup(store, layout.manifest)
    assert result.status == "verified", f"the crafted backup is not manifest-consistent: {result.detail}"
    return store.read_manifest(layout.manifest)


def _after(marker: bytes, statement: bytes):
    def inject(sql: bytes) -> bytes:
        at = sql.index(marker) + len(marker)
        return sql[:at] + statement + sql[at:]
    return inject


HOSTILE = {
    "set-global-in-the-header": _after(b"/*!40101 SET NAMES utf8mb4 */;\n",
                                       f"SET GLOBAL max_connect_errors = {MAX_CONNECT_ERRORS};\n".encode()),
    "grant-after-a-table": _after(b"UNLOCK TABLES;\n",
                                  f"GRANT ALL PRIVILEGES ON *.* TO '{INTRUDER}'@'%' IDENTIFIED BY 'x';\n".encode()),
    "insert-into-mysql-user": _after(b"UNLOCK TABLES;\n",
                                     b"INSERT INTO `mysql`.`user` (`Host`, `User`) VALUES ('%','" + INTRUDER.encode()
                                     + b"');\n"),
    "trigger-writing-mysql": _after(b"/*!50003 SET sql_mode              = @saved_sql_mode */ ;\n",
                                    b"DELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`dr_admin`@`127.0.0.1`*/ "
                                    b"/*!50003 TRIGGER owners_grant AFTER INSERT ON owners FOR EACH ROW\nBEGIN\n"
                                    b"  INSERT INTO mysql.global_priv VALUES ('%', '" + INTRUDER.encode()
                                    + b"', '{}');\nEND */;;\nDELIMITER ;\n"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_manifest_consistent_backup_with_an_injected_statement_is_refused_before_the_target_is_touched(
        case, small_db, backup_root, blob_service, store, dr, target):
    made = run_backup(BackupRequest(get_endpoint("mysql_primary"), small_db[0], backup_root,
                                    datetime(2026, 11, 1, 3, tzinfo=UTC)), blob_service)
    assert verify_backup(store, made.manifest_url).status == "verified"
    crafted = _crafted_backup(store.read_manifest(made.manifest_url), store, HOSTILE[case], day=9)

    with pytest.raises(DumpStatementError, match=r"refusing the backup: line \d+ of .* is ") as refused:
        run_restore(RestoreRequest(dr, target, jobs=2, replace=True), store, crafted)
    assert "\n" not in str(refused.value), "the refusal is one line"
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (target,))
        assert cur.fetchall() == (("yesterday",),), "the refused backup touched the target"
        cur.execute("SELECT @@GLOBAL.max_connect_errors")
        assert cur.fetchone()[0] != MAX_CONNECT_ERRORS, "the injected SET GLOBAL ran on the DR server"
        cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = %s", (INTRUDER,))
        assert cur.fetchone()[0] == 0, "the injected statement made an account on the DR server"
        cur.execute("SHOW DATABASES LIKE %s", (scratch_name(target, "restore"),))
        assert cur.fetchall() == (), "the private database was left behind"
    assert restore_status(dr, target)["status"] == "failed"
    with pytest.raises(RestoreNotUsableError):
        check_usable(dr, target)
