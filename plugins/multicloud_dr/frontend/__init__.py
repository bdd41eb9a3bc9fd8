"""The static frontend's DR copies: S3 -> Azure Blob and/or GCS, verified, idempotent (see sync.py)."""

from multicloud_dr.frontend.sync import (
    FrontendSyncError,
    FrontendSyncInputError,
    run_frontend_sync,
    sync_copy,
    sync_frontend,
)

__all__ = ["FrontendSyncError", "FrontendSyncInputError", "run_frontend_sync", "sync_copy", "sync_frontend"]
