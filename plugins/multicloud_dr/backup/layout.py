"""Where a backup's objects live. Names derive from the run's logical date, so a retry of the same
run writes the same names (idempotent), and a listing of `<prefix>/<database>/` finds every backup.

    wasb://<container>/<prefix>/<database>/<YYYYMMDDTHHMMSSZ>/<database>.sql.zst   the dump
    wasb://<container>/<prefix>/<database>/<YYYYMMDDTHHMMSSZ>/manifest.json        written last
    wasb://<container>/<prefix>/<database>/<YYYYMMDDTHHMMSSZ>/.lease               lease target
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from multicloud_dr.exceptions import ConfigError

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
CODEC_SUFFIX = {"zstd": ".sql.zst", "gzip": ".sql.gz"}
MANIFEST = "manifest.json"
LEASE = ".lease"
IN_USE = ".inuse-"


@dataclass(frozen=True)
class StorageUrl:
    """`wasb://container/path`, `s3://bucket/path` or `gs://bucket/path`."""

    scheme: str
    bucket: str
    path: str

    @classmethod
    def parse(cls, url: str) -> StorageUrl:
        match = re.match(r"^(wasb|wasbs|s3|gs)://([^/]+)/?(.*)$", url)
        if not match:
            raise ConfigError(f"{url!r} is not a storage URL: expected wasb://CONTAINER/PREFIX "
                              f"(or s3://BUCKET/PREFIX, gs://BUCKET/PREFIX)")
        scheme = "wasb" if match.group(1) == "wasbs" else match.group(1)
        return cls(scheme, match.group(2), match.group(3).strip("/"))

    def join(self, *parts: str) -> StorageUrl:
        path = "/".join(p.strip("/") for p in (self.path, *parts) if p and p.strip("/"))
        return StorageUrl(self.scheme, self.bucket, path)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.path}"


def stamp(logical_date: datetime) -> str:
    if logical_date.tzinfo is None:
        raise ConfigError("the logical date must carry a time zone (UTC)")
    return logical_date.astimezone(UTC).strftime(STAMP_FORMAT)


def validate_database_name(database: str) -> str:
    # Used in object names and in SQL identifiers: be strict rather than escape.
    if not re.fullmatch(r"[A-Za-z0-9_$-]{1,64}", database):
        raise ConfigError(f"database name {database!r} is not supported: use letters, digits, _ $ -")
    if database.startswith("-"):
        # A client tool would read it as an option (mysqldump -r/x writes a file): never a name here.
        raise ConfigError(f"database name {database!r} starts with '-', which dump and client tools read as an "
                          f"option: rename the database (or back up a copy) so that it starts with a letter, "
                          f"digit, _ or $")
    return database


@dataclass(frozen=True)
class BackupLayout:
    root: StorageUrl        # wasb://container/prefix
    database: str
    stamp: str
    codec: str = "zstd"

    @property
    def base(self) -> StorageUrl:
        return self.root.join(self.database, self.stamp)

    @property
    def data(self) -> StorageUrl:
        return self.base.join(self.database + CODEC_SUFFIX[self.codec])

    @property
    def manifest(self) -> StorageUrl:
        return self.base.join(MANIFEST)

    @property
    def lease(self) -> StorageUrl:
        return self.base.join(LEASE)

    def in_use(self, holder: str) -> StorageUrl:
        """A reader's own lease target (one per restore target), so that readers do not block each other
        while retention still sees the backup as in use."""
        return self.base.join(f"{IN_USE}{holder}")

    @classmethod
    def from_manifest_url(cls, url: StorageUrl, codec: str = "zstd") -> BackupLayout:
        parts = url.path.split("/")
        if len(parts) < 3 or parts[-1] != MANIFEST or not _STAMP.match(parts[-2]):
            raise ConfigError(f"{url} is not a backup manifest URL: expected "
                              f"<scheme>://<container>/<prefix>/<database>/<YYYYMMDDTHHMMSSZ>/manifest.json")
        root = StorageUrl(url.scheme, url.bucket, "/".join(parts[:-3]))
        return cls(root, parts[-3], parts[-2], codec)
