"""The backup manifest: written last, its presence means "this backup exists".

Decompressing `objects` in order and piping the result to the `mysql` client restores the database
with standard tools alone; everything else here is what restore, verification, retention and the
failover gate need to decide without reading the dump.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from multicloud_dr.exceptions import InputError

FORMAT = "multicloud-dr/mysql-backup/v1"


class ManifestError(InputError):
    """A manifest is missing, malformed, or not ours."""


class Segment(BaseModel):
    """One independently decompressible zstd frame of an object: the dump's header, or one table's
    section (structure, rows, triggers). A restore reads segments with ranged reads, several at once."""

    model_config = ConfigDict(extra="forbid")
    offset: int = Field(ge=0)    # where the frame starts in the stored object
    bytes: int = Field(ge=0)
    raw_bytes: int = Field(ge=0)


class StoredObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str                    # wasb://container/path, in restore order
    bytes: int = Field(ge=0)     # stored (compressed) size
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    raw_bytes: int = Field(ge=0)  # the SQL it decompresses to
    segments: list[Segment] = []  # empty: one frame (gzip, or a backup adopted without them)

    @model_validator(mode="after")
    def _segments_tile_the_object(self) -> StoredObject:
        if self.segments:
            offset = 0
            for segment in self.segments:
                if segment.offset != offset:
                    raise ValueError(f"segment at {segment.offset} should start at {offset}")
                offset += segment.bytes
            if offset != self.bytes or sum(s.raw_bytes for s in self.segments) != self.raw_bytes:
                raise ValueError("segments do not add up to the object's size")
        return self


class TableEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = Field(ge=0)
    crc32: str = Field(pattern=r"^[0-9a-f]{8}$")  # CRC-32 of the table's data section in the dump


class Verification(BaseModel):
    status: Literal["unverified", "verified", "failed"] = "unverified"
    at: datetime | None = None   # storage server's time
    detail: str = ""


class Copy(BaseModel):
    url: str
    bytes: int
    sha256: str
    verified_at: datetime | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["multicloud-dr/mysql-backup/v1"] = FORMAT
    backup_id: str               # <database>/<stamp>
    database: str
    logical_date: datetime
    source: dict                 # server (host:port, no credentials), version, flavor
    started_at: datetime         # database server's clock (F25: never the worker's)
    finished_at: datetime
    stored_at: datetime          # storage server's clock when the dump was committed (retention's age, F25)
    binlog_file: str | None = None
    binlog_position: int | None = None
    gtid: str | None = None
    tools: dict[str, str]
    codec: Literal["zstd", "gzip"]
    objects: list[StoredObject]
    tables: dict[str, TableEntry]
    non_innodb_tables: list[str] = []
    warnings: list[str] = []
    verification: Verification = Verification()
    copies: list[Copy] = []

    @classmethod
    def parse(cls, data: bytes | str, where: str) -> Manifest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as err:
            first = err.errors()[0]
            raise ManifestError(f"{where} is not a valid backup manifest ({'.'.join(map(str, first['loc']))}: "
                                f"{first['msg']}); it was not written by this tool or is damaged") from None

    def dump(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    @property
    def bytes_stored(self) -> int:
        return sum(o.bytes for o in self.objects)

    @property
    def bytes_raw(self) -> int:
        return sum(o.raw_bytes for o in self.objects)
