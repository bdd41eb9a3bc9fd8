"""A lease on a backup's `.lease` blob: who holds it is writing (backup) or reading (restore) that
backup. A second backup of the same run finds it held and exits without writing (F8); a holder
that dies stops renewing and the lease frees itself when its duration runs out, never earlier (F9);
retention skips backups whose lease is held (F12)."""

from __future__ import annotations

import logging
import threading

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobLeaseClient

from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)


class LeaseHeldError(DrError):
    """Another process holds the lease."""


class BackupLease:
    def __init__(self, blob: BlobClient, duration: int = 60, purpose: str = "backup") -> None:
        if not (15 <= duration <= 60):
            raise ValueError("Azure blob leases last 15 to 60 seconds")
        self.blob = blob
        self.duration = duration
        self.purpose = purpose
        self._lease: BlobLeaseClient | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: BaseException | None = None

    def __enter__(self) -> BackupLease:
        if self._lease is None:
            self.acquire()
        return self

    def acquire(self) -> None:
        """Take the lease now (LeaseHeldError if another process holds it) and start renewing it."""
        try:
            self.blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        except HttpResponseError as err:
            if err.status_code != 412:  # exists and leased by someone else
                raise
        try:
            self._lease = self.blob.acquire_lease(lease_duration=self.duration)
        except HttpResponseError as err:
            if err.status_code == 409:
                raise LeaseHeldError(
                    f"{self.blob.container_name}/{self.blob.blob_name} is leased by another process: another "
                    f"{self.purpose} of this backup is running. Nothing was written; if that process died, "
                    f"the lease frees itself within {self.duration} s") from None
            raise
        self._renewer = threading.Thread(target=self._renew, name="lease-renewer", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                self._lease.renew()  # type: ignore[union-attr]
            except Exception as err:  # reported by check(); the work must stop
                self.lost = err
                log.error("lost the lease on %s: %s", self.blob.blob_name, err)
                return

    def check(self) -> None:
        if self.lost is not None:
            raise LeaseHeldError(f"the lease on {self.blob.blob_name} was lost ({self.lost}); stopping")

    def confirm(self) -> None:
        """Renew the lease now and wait for the answer: proof that it is still ours at this moment. Called
        right before an irreversible write (the commit, the manifest): the renewer's last success may be a
        third of the duration old, and a process that was paused (SIGSTOP, a frozen VM) past the duration
        may have lost the lease to another run that is writing the same backup."""
        self.check()
        try:
            self._lease.renew()  # type: ignore[union-attr]
        except HttpResponseError as err:
            self.lost = err
            raise LeaseHeldError(f"the lease on {self.blob.blob_name} is no longer ours (HTTP {err.status_code}): "
                                 f"another {self.purpose} may hold it; stopping before the write, nothing was "
                                 f"committed by this run") from None

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lease is not None:
            try:
                self._lease.release()
            except HttpResponseError as err:
                log.warning("could not release the lease on %s (%s); it expires in %d s",
                            self.blob.blob_name, err.status_code, self.duration)


def is_leased(blob: BlobClient) -> bool:
    """Leased or breaking. A missing blob is not leased; any other error is raised, never read as
    "free" (retention would otherwise delete a backup a restore is reading)."""
    try:
        props = blob.get_blob_properties()
    except HttpResponseError as err:
        if err.status_code == 404:
            return False
        raise
    return props.lease.state in ("leased", "breaking")


def readers(container, layout) -> list[str]:
    """Names of the backup's `.inuse-*` blobs currently leased: restores reading it right now."""
    prefix = layout.base.join(".inuse-").path
    return [b.name for b in container.list_blobs(name_starts_with=prefix) if b.lease.state in ("leased", "breaking")]
