"""The declarative DR topology (include/topology.yaml): typed, validated, with messages that say
what to fix. Read from a local file, so DAG files may load it at parse time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    # Compared chunk by chunk, primary against replica (MySQL; a PostgreSQL streaming standby is a
    # physical copy, so it is checked by its lag alone).
    consistency_tables: list[str] = []

    @field_validator("name")
    @classmethod
    def _not_an_option(cls, value: str) -> str:
        # As layout.validate_database_name: dump and client tools would read "-r/x" as an option.
        if value.startswith("-"):
            raise ValueError(f"database name {value!r} starts with '-', which dump and client tools read as an "
                             f"option: rename the database so that it starts with a letter, digit, _ or $")
        return value


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


class ReplicationThresholds(Strict):
    """The most each check may measure before it is a breach (seconds; backup age in seconds too)."""

    mysql_replica_lag_seconds: float = Field(30, gt=0)
    postgres_standby_lag_seconds: float = Field(5, gt=0)
    dms_latency_seconds: float = Field(60, gt=0)
    backup_age_seconds: float = Field(26 * 3600, gt=0)   # a nightly backup, plus two hours of slack


class DmsTaskConfig(Strict):
    task_id: str = Field(min_length=1)          # the ReplicationTaskIdentifier
    instance_id: str = Field(min_length=1)      # the ReplicationInstanceIdentifier (CloudWatch dimension)
    conn_id: str = "aws_primary"
    # DescribeTableStatistics' validation state; only meaningful when the task has validation enabled.
    validation: bool = True


class ConsistencyConfig(Strict):
    chunk_rows: int = Field(10_000, ge=10)
    rechecks: int = Field(3, ge=1)              # a differing chunk is re-read this often before it counts


class NotifyConfig(Strict):
    """Where a breach (replication, drift) is announced. Each channel is used only when its connection id is set."""

    smtp_conn_id: str | None = None
    email_to: list[str] = []
    email_from: str = "multicloud-dr@localhost"
    slack_webhook_conn_id: str | None = None

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _smtp_needs_recipients(self) -> NotifyConfig:
        if self.smtp_conn_id and not self.email_to:
            raise ValueError("smtp_conn_id is set but email_to is empty: name who gets the e-mail")
        return self


class ReplicationConfig(Strict):
    thresholds: ReplicationThresholds = ReplicationThresholds()
    dms: list[DmsTaskConfig] = []
    consistency: ConsistencyConfig = ConsistencyConfig()


Cloud = Literal["aws", "azure", "gcp"]
TerraformEnvironment = Literal["dev", "staging", "production", "dr"]
TerraformStack = Literal["always-on", "failover"]


class TerraformCredentials(Strict):
    """The Airflow connection each cloud's providers and state backend authenticate with (handed to
    terraform as environment variables); null: the worker's own identity (instance role, workload identity)."""

    aws: str | None = "aws_primary"
    azure: str | None = "azure_terraform"
    gcp: str | None = "gcp_terraform"


class TerraformTarget(Strict):
    cloud: Cloud
    environment: TerraformEnvironment
    stack: TerraformStack


class TerraformConfig(Strict):
    binary: str = "terraform"                 # or "tofu", or a path to either
    root: str = "include/terraform/environments"   # <root>/<cloud>/<environment>/; relative: to the project
    plan_location: str = "wasb://dr-backups/terraform"
    storage_conn_id: str = "azure_blob_dr"
    credentials: TerraformCredentials = TerraformCredentials()
    approval_environments: list[TerraformEnvironment] = ["production", "dr"]
    confirm_destroy: bool = True              # a destroy always needs an approver who types the environment
    lock_timeout_seconds: int = Field(300, ge=0)
    interrupt_grace_seconds: int = Field(60, ge=1)
    drift_schedule: str = "30 4 * * *"
    drift_targets: list[TerraformTarget] | None = None   # null: every cloud x environment x stack

    @field_validator("binary")
    @classmethod
    def _terraform_or_tofu(cls, value: str) -> str:
        if Path(value).name not in ("terraform", "tofu"):
            raise ValueError("binary is terraform or tofu (a name found on PATH, or a path to one)")
        return value

    @field_validator("plan_location")
    @classmethod
    def _plans_in_wasb(cls, value: str) -> str:
        if not value.startswith(("wasb://", "wasbs://")):
            raise ValueError("saved plans go to private Azure Blob storage: wasb://CONTAINER/PREFIX")
        return value


class Targets(Strict):
    rpo_seconds: int = Field(gt=0)
    rto_seconds: int = Field(gt=0)


class Topology(Strict):
    environment: str
    databases: list[DatabaseConfig]
    backup: BackupConfig
    targets: Targets
    replication: ReplicationConfig = ReplicationConfig()
    notify: NotifyConfig = NotifyConfig()
    terraform: TerraformConfig = TerraformConfig()

    def mysql_databases(self) -> list[DatabaseConfig]:
        return [d for d in self.databases if d.engine == "mysql"]


def topology_path() -> Path:
    return Path(os.environ.get("MULTICLOUD_DR_TOPOLOGY", DEFAULT_TOPOLOGY))


def load_topology(path: Path | None = None) -> Topology:
    path = path or topology_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"topology file {path} does not exist: set MULTICLOUD_DR_TOPOLOGY or create it "
                          f"(see include/topology.yaml)") from None
    except OSError as err:  # a directory, no permission, an I/O error
        raise ConfigError(f"topology file {path} cannot be read ({err.strerror or err}): point "
                          f"MULTICLOUD_DR_TOPOLOGY at a readable YAML file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"topology file {path} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    except yaml.YAMLError as err:  # its message spans lines (with a caret under the problem): one line here
        raise ConfigError(f"topology file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    try:
        return Topology.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"topology file {path}: {where}: {first['msg']}") from None
