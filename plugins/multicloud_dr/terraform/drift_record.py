"""What the last drift check of each stack found, kept where the failover can read it: one small JSON blob per stack,
next to the saved plans (the same private container and connection, `terraform.plan_location` and
`terraform.storage_conn_id`):

    <plan_location>/drift/<cloud>/<environment>/<stack>.json

    {"stack": "azure/dr/failover", "status": "drifted", "changes": {"azurerm_kubernetes_cluster": {"add": 0,
     "change": 1, "destroy": 0}}, "checked_at": "2026-12-02T04:31:07+00:00", "run_id": "scheduled__...",
     "detail": "0 to add, 1 to change, 0 to destroy (azurerm_kubernetes_cluster +0/~1/-0)"}

`status` is "in_sync", "drifted" or "failed" (the plan could not run; `detail` says why, `changes` is empty). Each
check overwrites its stack's record: the newest check wins, and a retried task writes the same blob again. The
record holds counts and names of resource types only, never attribute values (they may be secrets).

`check_and_record_drift` is the drift check as terraform_drift runs it: the plan, then the record, and a "failed"
record when the plan fails (the error is raised after it). A record that cannot be written fails the check: the
record is what the failover's evidence reads, and a check nobody can see has not happened.

`DriftRecords.read` gives the record and its age. The age is the larger of the storage server's (the blob's
Last-Modified against the Date of the read, one clock) and `checked_at` against this machine's clock: neither a
writer's clock that runs ahead nor a blob copied later makes an old check look recent.
"""

from __future__ import annotations

import email.utils
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.exceptions import ConfigError, DrError
from multicloud_dr.terraform.provision import DriftRecord, check_drift
from multicloud_dr.terraform.runner import OnRunner
from multicloud_dr.terraform.stacks import StackRef, TerraformSettings

log = logging.getLogger(__name__)

IN_SYNC, DRIFTED, FAILED = "in_sync", "drifted", "failed"
STATUSES = (IN_SYNC, DRIFTED, FAILED)
FOLDER = "drift"
DETAIL_CHARS = 500

# The failover reads a record while the site being left may be down: one attempt, short timeouts, so that an
# unreachable storage account costs seconds of the evidence, not the client's default minutes of retries.
READ_OPTIONS: dict[str, Any] = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 5}


class DriftRecordError(DrError):
    """A drift record that is not one (hand-edited, truncated, or written for another stack)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)   # as stored: a record read back equals the one written


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


@dataclass(frozen=True)
class DriftCheck:
    """One drift check of one stack, as stored."""

    stack: str                                   # the stack's label: cloud/environment/stack
    status: str                                  # in_sync | drifted | failed
    checked_at: datetime                         # when the check ended (UTC)
    run_id: str                                  # the terraform_drift run (or whatever ran the check)
    detail: str                                  # one line
    changes: dict[str, dict[str, int]] = field(default_factory=dict)   # resource type -> add/change/destroy

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise DriftRecordError(f"drift status {self.status!r} is not one of {', '.join(STATUSES)}")
        if self.checked_at.tzinfo is None:
            raise DriftRecordError("checked_at must carry a time zone (UTC)")

    @property
    def ref(self) -> StackRef:
        parts = self.stack.split("/")
        if len(parts) != 3:
            raise DriftRecordError(f"{self.stack!r} is not a stack label (cloud/environment/stack)")
        return StackRef(*parts)

    @classmethod
    def of_result(cls, ref: StackRef, drifted: bool, changes: dict[str, dict[str, int]], summary_line: str,
                  run_id: str, at: datetime | None = None) -> DriftCheck:
        """The record of a plan that ran: drifted (with its counts per resource type) or in sync."""
        at = at or _now()
        if not drifted:
            return cls(ref.label, IN_SYNC, at, run_id, "no changes: the infrastructure matches the configuration")
        by_type = ", ".join(f"{t} +{c['add']}/~{c['change']}/-{c['destroy']}" for t, c in sorted(changes.items()))
        return cls(ref.label, DRIFTED, at, run_id, one_line(summary_line + (f" ({by_type})" if by_type else "")),
                   {t: dict(c) for t, c in changes.items()})

    @classmethod
    def of_failure(cls, ref: StackRef, err: BaseException, run_id: str, at: datetime | None = None) -> DriftCheck:
        return cls(ref.label, FAILED, at or _now(), run_id,
                   one_line(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__))

    def to_json(self) -> bytes:
        return json.dumps({"stack": self.stack, "status": self.status, "changes": self.changes,
                           "checked_at": self.checked_at.astimezone(UTC).isoformat(timespec="seconds"),
                           "run_id": self.run_id, "detail": self.detail}, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> DriftCheck:
        try:
            raw = json.loads(data)
            changes = raw.get("changes") or {}
            if not isinstance(changes, dict):
                raise TypeError("changes is not an object")
            return cls(stack=str(raw["stack"]), status=str(raw["status"]),
                       checked_at=datetime.fromisoformat(raw["checked_at"]), run_id=str(raw.get("run_id") or ""),
                       detail=str(raw.get("detail") or ""),
                       changes={str(t): {k: int(v) for k, v in c.items()} for t, c in changes.items()})
        except (ValueError, TypeError, KeyError, AttributeError, DriftRecordError) as err:
            raise DriftRecordError(f"{where} is not a drift record ({type(err).__name__}: {err}): run "
                                   f"terraform_drift for the stack again to overwrite it") from None


@dataclass(frozen=True)
class StoredDriftCheck:
    check: DriftCheck
    url: StorageUrl
    age_seconds: float


class DriftRecords:
    """The drift records under `<location>/drift/` in Azure Blob (a BlobServiceClient)."""

    def __init__(self, service: Any, location: StorageUrl) -> None:
        if location.scheme != "wasb":
            raise ConfigError(f"drift records are kept next to the saved plans in Azure Blob (wasb://...); "
                              f"`terraform.plan_location` is {location}")
        self.service = service
        self.location = location
        self.container = service.get_container_client(location.bucket)

    @classmethod
    def for_settings(cls, settings: TerraformSettings, service: Any = None) -> DriftRecords:
        from multicloud_dr.connections.wasb import blob_service_client

        return cls(service or blob_service_client(settings.storage_conn_id), settings.plan_location)

    def url(self, ref: StackRef) -> StorageUrl:
        return self.location.join(FOLDER, ref.cloud, ref.environment, f"{ref.stack}.json")

    def write(self, check: DriftCheck) -> StorageUrl:
        """Store `check` as its stack's record, replacing the one before."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        url = self.url(check.ref)
        try:
            self.container.get_blob_client(url.path).upload_blob(
                check.to_json(), overwrite=True, content_settings=ContentSettings(content_type="application/json"))
        except ResourceNotFoundError:
            raise ConfigError(f"container {self.location.bucket!r} does not exist in storage account "
                              f"{self.service.account_name}: create it (private access) or fix "
                              f"`terraform.plan_location`") from None
        return url

    def read(self, ref: StackRef, *, now: datetime | None = None, **options: Any) -> StoredDriftCheck | None:
        """The record of `ref` and its age; None when no check of it was ever recorded. `options`: per-request
        options of the Azure SDK (the evidence passes READ_OPTIONS)."""
        from azure.core.exceptions import ResourceNotFoundError

        url = self.url(ref)
        seen: dict[str, str] = {}

        def hook(response) -> None:
            seen["date"] = response.http_response.headers.get("Date", "")

        try:
            download = self.container.get_blob_client(url.path).download_blob(raw_response_hook=hook, **options)
            data = download.readall()
        except ResourceNotFoundError as err:
            if getattr(err, "error_code", None) == "ContainerNotFound":
                raise ConfigError(f"container {self.location.bucket!r} does not exist in storage account "
                                  f"{self.service.account_name}: fix `terraform.plan_location`") from None
            return None
        check = DriftCheck.from_json(data, str(url))
        if check.stack != ref.label:
            raise DriftRecordError(f"{url} records a check of {check.stack}, not of {ref.label}: run terraform_drift "
                                   f"for {ref.label} again to overwrite it")
        now = now or datetime.now(UTC)
        ages = [(now - check.checked_at).total_seconds()]
        modified = download.properties.last_modified
        if seen.get("date") and modified is not None:
            ages.append((email.utils.parsedate_to_datetime(seen["date"]) - modified).total_seconds())
        return StoredDriftCheck(check, url, max(ages))


def check_and_record_drift(ref: StackRef, settings: TerraformSettings, run_id: str, *,
                           records: DriftRecords | None = None, on_runner: OnRunner | None = None
                           ) -> tuple[DriftRecord, StorageUrl]:
    """Plan `ref` for drift (provision.check_drift) and record what it found; a plan that fails is recorded as
    "failed" and its error raised. Returns check_drift's DriftRecord and the record's URL."""
    records = records or DriftRecords.for_settings(settings)
    try:
        result = check_drift(ref, settings, on_runner=on_runner)
    except Exception as err:
        try:
            records.write(DriftCheck.of_failure(ref, err, run_id))
        except Exception as write_err:   # the plan's error is the one to raise; this one is said once, here
            log.warning("the failed drift check of %s could not be recorded (the failover may read an older "
                        "record): %s", ref.label, write_err)
        raise
    url = records.write(DriftCheck.of_result(ref, result.drifted, result.summary.by_type, result.summary.one_line(),
                                             run_id))
    log.info("recorded the drift check of %s (%s) at %s", ref.label, "drifted" if result.drifted else "in sync", url)
    return result, url
