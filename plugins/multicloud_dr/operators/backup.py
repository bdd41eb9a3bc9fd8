"""Operators for the nightly MySQL backup: dump+upload, verify, copy, retention."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step

log = logging.getLogger(__name__)


def _logical_date(context: Context):
    # Manual runs may have no logical date in Airflow 3: the run's run_after names the backup then.
    return context.get("logical_date") or context["dag_run"].run_after


def _blob_service(storage_conn_id: str):
    from multicloud_dr.connections.wasb import blob_service_client

    return blob_service_client(storage_conn_id)


class MySqlBackupOperator(BaseOperator):
    """Stream `mysqldump` of one database into Azure Blob: compressed, hashed, staged blocks committed
    once, manifest written last. Named from the run's logical date, so a retry or a re-run of the same
    date writes nothing new. Returns the backup's summary (no secrets)."""

    template_fields: Sequence[str] = ("source_conn_id", "database", "location", "storage_conn_id", "codec")

    def __init__(self, *, source_conn_id: str, database: str, location: str, storage_conn_id: str,
                 codec: str = "zstd", lease_wait_seconds: float = 900.0, lease_seconds: int = 60,
                 **kwargs: Any) -> None:
        # Each key of the summary is also its own XCom, so downstream tasks can take `.output["manifest"]`.
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.database = database
        self.location = location
        self.storage_conn_id = storage_conn_id
        self.codec = codec
        # A second try of the same run (a restarted scheduler resets a try that is still dumping, F21) waits
        # for the first one's lease instead of spending its retries on it: it ends when the first writes the
        # manifest (success, nothing written) or its lease frees itself (this try then takes over).
        self.lease_wait_seconds = lease_wait_seconds
        self.lease_seconds = lease_seconds
        self._child: subprocess.Popen | None = None

    def execute(self, context: Context) -> dict:
        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
        from multicloud_dr.connections import get_endpoint

        def step() -> dict:
            request = BackupRequest(source=get_endpoint(self.source_conn_id), database=self.database,
                                    root=StorageUrl.parse(self.location), logical_date=_logical_date(context),
                                    codec=self.codec, lease_wait_seconds=self.lease_wait_seconds,
                                    lease_seconds=self.lease_seconds)
            return run_backup(request, _blob_service(self.storage_conn_id), on_child=self._track).to_dict()

        return run_step(step)

    def _track(self, child: subprocess.Popen | None) -> None:
        self._child = child

    def on_kill(self) -> None:
        if self._child is not None and self._child.poll() is None:
            log.warning("killing mysqldump (pid %d): the task is being stopped", self._child.pid)
            self._child.kill()


class VerifyBackupOperator(BaseOperator):
    """Read every object of a backup back, check SHA-256, decompression, footer and per-table rows and
    checksums against the manifest, and mark the manifest verified (or failed: the task fails)."""

    template_fields: Sequence[str] = ("manifest", "storage_conn_id")

    def __init__(self, *, manifest: str, storage_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.backup.store import BackupStore
        from multicloud_dr.backup.verify import verify_backup
        from multicloud_dr.monitoring import metrics

        url = StorageUrl.parse(self.manifest)

        def step():
            store = BackupStore(_blob_service(self.storage_conn_id), url.bucket)
            return store, verify_backup(store, url)

        store, result = run_step(step)
        if result.status != "verified":
            # The stored bytes are wrong: reading them again will not change that.
            raise AirflowFailException(f"backup failed verification: {result.detail}")
        with metrics.measuring(f"the age and size of {url}"):
            record = store.read_manifest(url)   # verify_backup returns no manifest: its times and sizes are there
            if record is not None:
                metrics.send_backup(record.manifest, store.server_now())
        return result.to_dict()


class CopyBackupOperator(BaseOperator):
    """Copy a verified backup to another cloud (s3:// or gs://) and verify the copy (3-2-1)."""

    template_fields: Sequence[str] = ("manifest", "storage_conn_id", "destination")

    def __init__(self, *, manifest: str, storage_conn_id: str, destination: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.storage_conn_id = storage_conn_id
        self.destination = destination  # {"url": "s3://bucket/prefix", "conn_id": "aws_primary"}

    def execute(self, context: Context) -> dict:
        from multicloud_dr.backup.copies import copy_backup
        from multicloud_dr.backup.layout import StorageUrl

        return run_step(lambda: copy_backup(
            _blob_service(self.storage_conn_id), StorageUrl.parse(self.manifest),
            StorageUrl.parse(self.destination["url"]), self.destination["conn_id"],
        ).to_dict())


class BackupRetentionOperator(BaseOperator):
    """Delete backups older than the policy allows; never the newest verified ones, never one in use
    by a restore; decides by the storage server's clock. Logs what it deletes before deleting."""

    template_fields: Sequence[str] = ("location", "database", "storage_conn_id")

    def __init__(self, *, location: str, database: str, storage_conn_id: str, keep_days: int = 30,
                 min_keep: int = 1, dry_run: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.location = location
        self.database = database
        self.storage_conn_id = storage_conn_id
        self.keep_days = keep_days
        self.min_keep = min_keep
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict:
        from multicloud_dr.backup.layout import StorageUrl
        from multicloud_dr.backup.retention import RetentionPolicy, run_retention

        return run_step(lambda: run_retention(
            _blob_service(self.storage_conn_id), StorageUrl.parse(self.location), self.database,
            RetentionPolicy(keep_days=self.keep_days, min_keep=self.min_keep), dry_run=self.dry_run,
        ).to_dict())
