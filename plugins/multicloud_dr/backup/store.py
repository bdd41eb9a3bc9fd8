"""Backups in Azure Blob: manifests (read, create once, update conditionally), listing, server time."""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from multicloud_dr.backup.layout import MANIFEST, BackupLayout, StorageUrl, validate_database_name
from multicloud_dr.backup.manifest import Manifest, ManifestError
from multicloud_dr.exceptions import ConfigError, DrError

log = logging.getLogger(__name__)


class ConcurrentUpdateError(DrError):
    """Someone else changed the manifest between our read and our write."""


@dataclass(frozen=True)
class ManifestRecord:
    url: StorageUrl
    manifest: Manifest
    etag: str
    created: datetime   # storage server's time the manifest was written (F25)


class BackupStore:
    def __init__(self, service: BlobServiceClient, container: str) -> None:
        self.service = service
        self.container_name = container
        self.container: ContainerClient = service.get_container_client(container)

    def check_container(self) -> None:
        try:
            self.container.get_container_properties()
        except ResourceNotFoundError:
            raise ConfigError(f"container {self.container_name!r} does not exist in storage account "
                              f"{self.service.account_name}: create it (az storage container create -n "
                              f"{self.container_name}) or fix --to") from None

    def blob(self, url: StorageUrl):
        self._same_container(url)
        return self.container.get_blob_client(url.path)

    def _same_container(self, url: StorageUrl) -> None:
        if url.scheme != "wasb" or url.bucket != self.container_name:
            raise ConfigError(f"{url} is not in container {self.container_name}")

    def read_manifest(self, url: StorageUrl) -> ManifestRecord | None:
        try:
            download = self.blob(url).download_blob()
            data = download.readall()
        except ResourceNotFoundError:
            return None
        props = download.properties
        return ManifestRecord(url, Manifest.parse(data, str(url)), props.etag,
                              props.creation_time or props.last_modified)

    def create_manifest(self, url: StorageUrl, manifest: Manifest) -> bool:
        """Write a new manifest; False if one exists already (never overwritten)."""
        try:
            self.blob(url).upload_blob(manifest.dump(), overwrite=False,
                                       content_settings=ContentSettings(content_type="application/json"))
            return True
        except ResourceExistsError:
            return False

    def replace_manifest(self, record: ManifestRecord, manifest: Manifest) -> None:
        """Update a manifest only if nobody changed it since `record` was read (ETag compare-and-set)."""
        try:
            self.blob(record.url).upload_blob(manifest.dump(), overwrite=True, etag=record.etag,
                                              match_condition=MatchConditions.IfNotModified,
                                              content_settings=ContentSettings(content_type="application/json"))
        except ResourceModifiedError:
            raise ConcurrentUpdateError(f"{record.url} changed while it was being updated; run again") from None

    def list_manifests(self, root: StorageUrl, database: str | None = None) -> list[ManifestRecord]:
        """Every backup under root (for one database or all), oldest first. Only a manifest at exactly
        `<root>/<database>/<YYYYMMDDTHHMMSSZ>/manifest.json` that names that database and stamp counts: anything
        else (nested deeper, another database's, malformed) is skipped with a warning, since retention, restore
        and the failover gate act on this list as the backups of `database`."""
        self._same_container(root)
        prefix = "/".join(p for p in (root.path, database) if p)
        records = []
        for item in self.container.list_blobs(name_starts_with=f"{prefix}/" if prefix else None):
            if not item.name.endswith("/" + MANIFEST):
                continue
            url = StorageUrl("wasb", self.container_name, item.name)
            try:
                record = self._backup_record(url, root, database)
            except (ManifestError, ConfigError) as err:
                log.warning("skipping %s: not a backup of %s under %s: %s", url, database or "any database", root,
                            err)
                continue
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda r: (r.manifest.logical_date, r.created))

    def _backup_record(self, url: StorageUrl, root: StorageUrl, database: str | None) -> ManifestRecord | None:
        """The manifest at `url` if it is where and what a backup of `database` under `root` must be; None when
        it was deleted since the listing."""
        layout = BackupLayout.from_manifest_url(url)
        if layout.root.path != root.path:
            raise ConfigError(f"it is not at <root>/<database>/<YYYYMMDDTHHMMSSZ>/{MANIFEST}")
        validate_database_name(layout.database)
        if database is not None and layout.database != database:
            raise ConfigError(f"its path names database {layout.database!r}")
        record = self.read_manifest(url)
        if record is None:
            return None
        manifest = record.manifest
        expected_id = f"{layout.database}/{layout.stamp}"
        if manifest.database != layout.database or manifest.backup_id != expected_id:
            raise ManifestError(f"it holds backup {manifest.backup_id!r} of database {manifest.database!r}, "
                                f"not {expected_id!r}")
        return record

    def server_now(self) -> datetime:
        """The storage service's clock (its Date header), not this worker's (F25)."""
        seen: dict[str, str] = {}

        def hook(response) -> None:
            seen["date"] = response.http_response.headers.get("Date", "")

        self.container.get_container_properties(raw_response_hook=hook)
        if not seen.get("date"):
            raise DrError("the storage service sent no Date header; cannot tell its time")
        return email.utils.parsedate_to_datetime(seen["date"])
