"""The declarative DR topology (include/topology.yaml): typed, validated, with messages that say
what to fix. Read from a local file, so DAG files may load it at parse time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from multicloud_dr.exceptions import ConfigError

DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "include" / "topology.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_$-]{1,64}$")
    engine: Literal["mysql", "postgres"]
    primary_conn_id: str
    replica_conn_id: str | None = None
    dr_conn_id: str | None = None


class CopyConfig(Strict):
    url: str
    conn_id: str

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("s3://", "gs://")):
            raise ValueError("a copy goes to s3://BUCKET/PREFIX or gs://BUCKET/PREFIX")
        return value


class RetentionConfig(Strict):
    keep_days: int = Field(30, ge=0)
    min_keep: int = Field(1, ge=1)
    dry_run: bool = True


class BackupConfig(Strict):
    storage_conn_id: str
    location: str
    codec: Literal["zstd", "gzip"] = "zstd"
    copies: list[CopyConfig] = []
    retention: RetentionConfig = RetentionConfig()

    @field_validator("location")
    @classmethod
    def _wasb(cls, value: str) -> str:
        if not value.startswith(("wasb://", "wasbs://")):
            raise ValueError("backups are written to Azure Blob: wasb://CONTAINER/PREFIX")
        return value


class Targets(Strict):
    rpo_seconds: int = Field(gt=0)
    rto_seconds: int = Field(gt=0)


class Topology(Strict):
    environment: str
    databases: list[DatabaseConfig]
    backup: BackupConfig
    targets: Targets

    def mysql_databases(self) -> list[DatabaseConfig]:
        return [d for d in self.databases if d.engine == "mysql"]


def topology_path() -> Path:
    return Path(os.environ.get("MULTICLOUD_DR_TOPOLOGY", DEFAULT_TOPOLOGY))


def load_topology(path: Path | None = None) -> Topology:
    path = path or topology_path()
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"topology file {path} does not exist: set MULTICLOUD_DR_TOPOLOGY or create it "
                          f"(see include/topology.yaml)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"topology file {path} is not valid YAML: {err}") from None
    try:
        return Topology.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"topology file {path}: {where}: {first['msg']}") from None
