"""Saved plans between the plan task and the apply task, which may run on different machines (no local
files pass between tasks). A saved plan can hold secrets (provider data, sensitive values in the clear),
so it goes only to the private backup container, never to XCom or a log; XCom carries its URL and SHA-256.

    <plan_location>/<cloud>/<environment>/<stack>/<run key>/plan.tfplan    the saved plan (sha256 in metadata)
    <plan_location>/<cloud>/<environment>/<stack>/<run key>/plan.json      what it does (counts, no values)
    <plan_location>/<cloud>/<environment>/<stack>/<run key>/applied-<sha256>.json   once that plan was applied

The marker is named after the plan's SHA-256: a re-run plan task stores a new plan in the same place, and
that plan is not "applied" because the one before it was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Protocol

from multicloud_dr.backup.blockblob import SHA256_METADATA  # the same metadata key as backup objects
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.exceptions import ConfigError, InputError
from multicloud_dr.terraform.stacks import StackRef

PLAN = "plan.tfplan"
PLAN_INFO = "plan.json"
APPLIED = "applied-{sha256}.json"


class PlanIntegrityError(InputError):
    """The stored plan is missing or is not the plan that was approved."""


class Blobs(Protocol):
    """The few blob operations the store needs (Azure Blob in production)."""

    def read(self, name: str) -> bytes | None: ...

    def write(self, name: str, data: bytes, *, overwrite: bool, metadata: dict[str, str] | None = None,
              content_type: str = "application/octet-stream") -> bool: ...


class AzureBlobs:
    def __init__(self, service, container: str) -> None:
        self.service = service
        self.container_name = container
        self.container = service.get_container_client(container)

    def check(self) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.get_container_properties()
        except ResourceNotFoundError:
            raise ConfigError(f"container {self.container_name!r} does not exist in storage account "
                              f"{self.service.account_name}: create it (private access) or fix "
                              f"`terraform.plan_location`") from None

    def read(self, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.get_blob_client(name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def write(self, name: str, data: bytes, *, overwrite: bool, metadata: dict[str, str] | None = None,
              content_type: str = "application/octet-stream") -> bool:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        try:
            self.container.get_blob_client(name).upload_blob(data, overwrite=overwrite, metadata=metadata,
                                                             content_settings=ContentSettings(content_type=content_type))
            return True
        except ResourceExistsError:
            return False


@dataclass(frozen=True)
class StoredPlan:
    url: StorageUrl
    sha256: str
    info: dict                                        # what the plan does (no values): safe to log
    data: bytes = field(default=b"", repr=False)      # the plan itself: may hold secrets


class PlanStore:
    def __init__(self, blobs: Blobs, location: StorageUrl) -> None:
        self.blobs = blobs
        self.location = location

    @classmethod
    def from_service(cls, service, location: StorageUrl) -> PlanStore:
        if location.scheme != "wasb":
            raise ConfigError(f"saved plans are kept in Azure Blob (wasb://...); got {location}")
        blobs = AzureBlobs(service, location.bucket)
        blobs.check()
        return cls(blobs, location)

    def plan_url(self, ref: StackRef, run_key: str) -> StorageUrl:
        return self.location.join(ref.cloud, ref.environment, ref.stack, run_key, PLAN)

    def _name(self, url: StorageUrl, leaf: str | None = None) -> str:
        if url.scheme != self.location.scheme or url.bucket != self.location.bucket:
            raise ConfigError(f"{url} is not in {self.location.scheme}://{self.location.bucket}")
        if leaf is None:
            return url.path
        return url.path.rsplit("/", 1)[0] + "/" + leaf

    def put_plan(self, url: StorageUrl, data: bytes, info: dict) -> StoredPlan:
        """Store a plan (a retried plan task replaces its own run's plan), then what it does."""
        sha = hashlib.sha256(data).hexdigest()
        info = {**info, "plan_sha256": sha}
        self.blobs.write(self._name(url), data, overwrite=True, metadata={SHA256_METADATA: sha})
        self.blobs.write(self._name(url, PLAN_INFO), json.dumps(info, indent=2, sort_keys=True).encode(),
                         overwrite=True, content_type="application/json")
        return StoredPlan(url, sha, info)

    def get_plan(self, url: StorageUrl, sha256: str) -> StoredPlan:
        """The plan's bytes are checked against the SHA-256 the plan task reported (and the approver saw)."""
        data = self.blobs.read(self._name(url))
        if data is None:
            raise PlanIntegrityError(f"no saved plan at {url}: run the plan again (trigger the DAG again)")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise PlanIntegrityError(f"the saved plan at {url} has SHA-256 {actual}, not the approved {sha256}: it was "
                                     f"replaced after the plan task; trigger the DAG again for a new plan and approval")
        raw_info = self.blobs.read(self._name(url, PLAN_INFO))
        return StoredPlan(url, actual, json.loads(raw_info) if raw_info else {}, data)

    def applied(self, url: StorageUrl, sha256: str) -> dict | None:
        raw = self.blobs.read(self._name(url, APPLIED.format(sha256=sha256)))
        return json.loads(raw) if raw else None

    def mark_applied(self, url: StorageUrl, sha256: str, record: dict) -> bool:
        """Create the marker once (never overwritten); False when it was there already."""
        data = json.dumps(record, indent=2, sort_keys=True).encode()
        return self.blobs.write(self._name(url, APPLIED.format(sha256=sha256)), data, overwrite=False,
                                content_type="application/json")
