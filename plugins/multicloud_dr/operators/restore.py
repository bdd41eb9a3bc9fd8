"""Operator for restoring a MySQL backup into a server (the restore drill, a failover)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step

LATEST = "latest"


class RestoreBackupOperator(BaseOperator):
    """Restore one backup into `database` on the server behind `target_conn_id`: loaded into a private
    database, checked row for row against the manifest, then swapped in atomically (never half-applied).

    `manifest` is a manifest URL, or "latest": the newest verified backup of `source_database` under
    `location`. Returns the restore's result (tables, rows, bytes, seconds; no secrets)."""

    template_fields: Sequence[str] = ("manifest", "location", "source_database", "target_conn_id", "database",
                                      "storage_conn_id", "jobs")

    def __init__(self, *, manifest: str = LATEST, location: str | None = None, source_database: str | None = None,
                 target_conn_id: str, database: str, storage_conn_id: str, jobs: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        self.location = location
        self.source_database = source_database
        self.target_conn_id = target_conn_id
        self.database = database
        self.storage_conn_id = storage_conn_id
        self.jobs = jobs

    def execute(self, context: Context) -> dict:
        from multicloud_dr.connections import get_endpoint
        from multicloud_dr.restore.mysql_restore import RestoreRequest, restore_backup

        def step() -> dict:
            request = RestoreRequest(target=get_endpoint(self.target_conn_id), database=self.database,
                                     jobs=int(self.jobs))
            # "latest" falls back to the previous verified backup when the newest turns out damaged (F28).
            return restore_backup(request, self.storage_conn_id, self.manifest, self.location,
                                  self.source_database).to_dict()

        return run_step(step)
