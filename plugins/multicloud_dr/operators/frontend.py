"""Operator for the static frontend's DR copies: one copy (Blob or GCS) synced with the S3 source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step


class FrontendSyncOperator(BaseOperator):
    """Bring one copy of the static frontend (`destination`: {"url": "wasb://CONTAINER/PREFIX" or
    "gs://BUCKET/PREFIX", "conn_id": ...}) in line with `source` (s3://BUCKET/PREFIX): new and changed
    objects streamed across and verified by reading them back, unchanged ones (same size and SHA-256)
    left alone, objects the source no longer has deleted only with `delete_removed`. Idempotent: a retry
    copies only what is still missing. Returns the sync's JSON summary (counts, bytes, seconds).

    A missing bucket or container fails the task at once (a retry will not create it); failed transfers
    go to Airflow's retries."""

    template_fields: Sequence[str] = ("source", "source_conn_id", "destination")
    ui_color = "#e4f0ff"

    def __init__(self, *, source: str, source_conn_id: str, destination: dict, delete_removed: bool = False,
                 dry_run: bool = False, workers: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.source_conn_id = source_conn_id
        self.destination = destination
        self.delete_removed = delete_removed
        self.dry_run = dry_run
        self.workers = workers

    def execute(self, context: Context) -> dict:
        from multicloud_dr.frontend.sync import sync_copy

        return run_step(lambda: sync_copy(
            self.source, self.source_conn_id, self.destination["url"], self.destination["conn_id"],
            delete_removed=self.delete_removed, dry_run=self.dry_run, workers=self.workers,
        ).to_dict())
