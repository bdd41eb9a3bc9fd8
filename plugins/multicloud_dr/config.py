"""The declarative DR topology (include/topology.yaml): typed, validated, with messages that say
what to fix. Read from a local file, so DAG files may load it at parse time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

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
    # The application's database accounts (MySQL users / PostgreSQL roles): fencing locks them and ends their
    # sessions, so that an old primary takes no write through the app.
    app_users: list[str] = []
    # How a failover brings this database up at the DR site: promote `replica_conn_id` (the replica the DR
    # site runs), restore the newest verified backup into `dr_conn_id`, or auto: promote when the replica's
    # lag is within the RPO target (always in a planned failover), else restore.
    failover_method: Literal["auto", "promote", "restore"] = "auto"

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


class BinlogArchiveConfig(Strict):
    """The primary's binlogs archived next to the backups (mysql_binlog_archive, `drctl binlogs archive`)."""

    interval_seconds: int = Field(10, ge=1, le=300)   # how often a running archiver reads the primary again
    run_minutes: float = Field(14, gt=0, le=60)      # one task's run; the DAG starts the next (every 15 min)
    max_piece_mb: int = Field(64, ge=1, le=1024)     # a piece is cut at the next transaction past this size


class BackupConfig(Strict):
    storage_conn_id: str
    location: str
    codec: Literal["zstd", "gzip"] = "zstd"
    copies: list[CopyConfig] = []
    retention: RetentionConfig = RetentionConfig()
    # The lease a backup holds on its `.lease` blob while it writes (Azure allows 15 to 60 s; renewed every third
    # of it). A killed backup's lease frees itself this long after its last renewal, and only then can its retry
    # take over: a shorter lease lets a retry start sooner, a longer one rides out longer storage hiccups.
    lease_seconds: int = Field(60, ge=15, le=60)
    # The nightly run must have verified its backups this long after it was queued, or the channels in `notify`
    # hear of it (a DeadlineAlert on mysql_backup): a run stuck on a lock or a slow upload, not only a failed one.
    verified_within_minutes: float = Field(180, gt=0)
    binlogs: BinlogArchiveConfig | None = None   # null: no binlog archive (point-in-time recovery off)

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
    binlog_archive_age_seconds: float = Field(120, gt=0)  # the newest archived point (backup.binlogs set)


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
    """Where a failed DR job, a breach, a missed deadline or a waiting approval is announced. Each channel is
    used only when its connection id is set."""

    smtp_conn_id: str | None = None
    email_to: list[str] = []
    email_from: str = "multicloud-dr@localhost"
    slack_webhook_conn_id: str | None = None
    # A pagerduty_events connection whose password is the service's Events API v2 integration (routing) key.
    pagerduty_conn_id: str | None = None
    pagerduty_severity: Literal["critical", "error", "warning", "info"] = "critical"
    # Airflow user name -> e-mail address: an approval waiting in HITL is mailed to its assigned users found here.
    approver_emails: dict[str, str] = {}

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @field_validator("approver_emails")
    @classmethod
    def _approver_addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for user, address in value.items():
            if "@" not in address:
                raise ValueError(f"approver {user}: {address!r} is not an e-mail address")
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
    approvers: list[str] = []                 # Airflow user names assigned to a plan's approval (none: anyone)
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


Site = Literal["primary", "dr"]
SITES: tuple[Site, ...] = ("primary", "dr")


class AppConfig(Strict):
    """The application at one site: where its health answers, and the Kubernetes deployments that run it."""

    health_conn_id: str                        # an http connection: the app's base URL (its load balancer)
    health_path: str = "/health"
    kubernetes_conn_id: str | None = None      # a kubernetes connection: the site's cluster (EKS, AKS, GKE)
    namespace: str | None = None               # default: the connection's namespace
    deployments: list[str] = []
    replicas: int = Field(2, ge=1)             # replicas when the site is live (pilot light: 0 otherwise)
    config_map: str | None = None              # holds what points the app at its database
    config: dict[str, str] = {}                # written to config_map when the site takes over
    secret: str | None = None                  # the database credentials the app uses
    secret_from_conn_id: str | None = None     # a database connection: DB_USER / DB_PASSWORD into `secret`
    health_timeout_seconds: int = Field(300, ge=1)
    rollout_timeout_seconds: int = Field(600, ge=1)

    @model_validator(mode="after")
    def _cluster_for_deployments(self) -> AppConfig:
        if (self.deployments or self.config_map or self.secret) and not self.kubernetes_conn_id:
            raise ValueError("deployments, config_map and secret need kubernetes_conn_id (the site's cluster)")
        if self.secret_from_conn_id and not self.secret:
            raise ValueError("secret_from_conn_id is set but secret is not: name the Secret to write")
        return self


class SiteConfig(Strict):
    cloud: Cloud
    description: str = ""
    app: AppConfig | None = None


def _per_site(value: dict[str, str], what: str) -> dict[str, str]:
    missing = [site for site in SITES if not value.get(site)]
    extra = sorted(set(value) - set(SITES))
    if missing or extra:
        raise ValueError(f"{what} names each site once, primary and dr (missing: {', '.join(missing) or '-'}; "
                         f"unknown: {', '.join(extra) or '-'})")
    if value["primary"] == value["dr"]:
        raise ValueError(f"{what}: primary and dr are both {value['primary']!r}: they must differ")
    return value


class Route53Layer(Strict):
    """A DNS record in a Route 53 hosted zone. Simple: its value is the live site's target. Weighted
    (set_identifiers given): one record set per site, and the live site gets the weight."""

    provider: Literal["route53"]
    conn_id: str = "aws_primary"
    zone: str                                   # the hosted zone's name (example.com) or its id (Z...)
    record: str                                 # the record's name, e.g. app.example.com
    type: Literal["CNAME", "A", "AAAA"] = "CNAME"
    targets: dict[str, str]                     # site -> the record's value for that site
    set_identifiers: dict[str, str] | None = None
    active_weight: int = Field(100, ge=1, le=255)
    ttl: int = Field(60, ge=0)
    timeout_seconds: int = Field(300, ge=1)     # wait for INSYNC

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        return _per_site(value, "targets")

    @field_validator("set_identifiers")
    @classmethod
    def _set_ids(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _per_site(value, "set_identifiers")


class CloudFrontLayer(Strict):
    """A CloudFront distribution whose default cache behaviour (or its origin group's primary member)
    is the live site's origin."""

    provider: Literal["cloudfront"]
    conn_id: str = "aws_primary"
    distribution_id: str | None = None
    alias: str | None = None                    # or find the distribution by one of its alternate domain names
    origins: dict[str, str]                     # site -> origin id in the distribution
    timeout_seconds: int = Field(1200, ge=1)    # wait for Deployed (AWS: typically 2-10 min)

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: dict[str, str]) -> dict[str, str]:
        return _per_site(value, "origins")

    @model_validator(mode="after")
    def _one_way_to_find_it(self) -> CloudFrontLayer:
        if bool(self.distribution_id) == bool(self.alias):
            raise ValueError("give exactly one of distribution_id and alias")
        return self


class CloudflareLayer(Strict):
    """A Cloudflare load balancer: the live site's pool is enabled and first in default_pools, and is the fallback."""

    provider: Literal["cloudflare"]
    conn_id: str = "cloudflare"                 # an http connection: https://api.cloudflare.com/client/v4 + token
    account_id: str                             # pools belong to the account
    zone_id: str                                # the load balancer belongs to the zone
    load_balancer: str                          # its id or its hostname
    pools: dict[str, str]                       # site -> pool id
    timeout_seconds: int = Field(300, ge=1)     # wait for the new pool to report healthy

    @field_validator("pools")
    @classmethod
    def _pools(cls, value: dict[str, str]) -> dict[str, str]:
        return _per_site(value, "pools")


TrafficLayer = Annotated[Route53Layer | CloudFrontLayer | CloudflareLayer, Field(discriminator="provider")]


class TrafficConfig(Strict):
    layers: list[TrafficLayer] = []
    check_health: bool = True                   # the target site's app must be healthy before a switch


class FrontendCopy(Strict):
    url: str                                    # wasb://CONTAINER/PREFIX or gs://BUCKET/PREFIX
    conn_id: str

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("wasb://", "wasbs://", "gs://")):
            raise ValueError("a frontend copy goes to wasb://CONTAINER/PREFIX or gs://BUCKET/PREFIX")
        return value


class FrontendConfig(Strict):
    """A static frontend served from S3 at the primary, copied to the DR site's bucket(s)."""

    source: str                                 # s3://BUCKET/PREFIX
    source_conn_id: str = "aws_primary"
    copies: list[FrontendCopy]
    schedule: str = "15 2 * * *"                # UTC
    delete_removed: bool = False                # also delete copies of objects the source no longer has

    @field_validator("source")
    @classmethod
    def _s3(cls, value: str) -> str:
        if not value.startswith("s3://"):
            raise ValueError("the frontend's source is s3://BUCKET/PREFIX")
        return value

    @field_validator("copies")
    @classmethod
    def _some(cls, value: list[FrontendCopy]) -> list[FrontendCopy]:
        if not value:
            raise ValueError("name at least one copy (wasb:// or gs://)")
        return value


class DrStackConfig(Strict):
    """The Terraform stack a failover brings up at the DR site when its state has no outputs (`terraform output`,
    read by the dr_stack step itself; the evidence shows the outputs environment_provision published)."""

    cloud: Cloud
    environment: TerraformEnvironment = "dr"
    stack: TerraformStack = "failover"


class DrillConfig(Strict):
    """Where a drill runs: scratch targets, never the live ones."""

    database_suffix: str = Field("_drill", pattern=r"^[A-Za-z0-9_$]{1,20}$")   # <database><this> on the DR server

    record_prefix: str = Field("drill.", pattern=r"^[a-z0-9-]{1,30}\.$")     # drill.<live record>: Route 53 only
    namespace_suffix: str = Field("-drill", pattern=r"^-[a-z0-9-]{1,20}$")    # the app copied into <ns><this>
    drill_replicas: int = Field(1, ge=1)       # replicas of each deployment copy while the drill runs


class FailoverConfig(Strict):
    """The dr_failover / dr_failback DAGs and `drctl failover|failback`."""

    approvers: list[str] = []                  # Airflow user names who may approve (the approval's assigned users)
    four_eyes_environments: list[str] = ["production", "dr"]   # the trigger may not approve here (F31)
    dr_stack: DrStackConfig | None = None      # null: the DR stack is always on (nothing to apply)
    drill: DrillConfig = DrillConfig()
    health_timeout_seconds: int = Field(300, ge=1)
    fence_timeout_seconds: int = Field(60, ge=1)


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
    sites: dict[str, SiteConfig] = {}
    traffic: TrafficConfig = TrafficConfig()
    frontend: FrontendConfig | None = None
    failover: FailoverConfig = FailoverConfig()

    @field_validator("sites")
    @classmethod
    def _site_names(cls, value: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        if value and sorted(value) != sorted(SITES):
            raise ValueError(f"sites are primary and dr, got {', '.join(sorted(value))}")
        return value

    @model_validator(mode="after")
    def _traffic_needs_sites(self) -> Topology:
        if self.traffic.layers and not self.sites:
            raise ValueError("traffic layers need a sites section (primary and dr)")
        return self

    def site(self, name: str) -> SiteConfig:
        if name not in self.sites:
            known = ", ".join(self.sites) or "not configured"
            raise ConfigError(f"the topology has no site {name!r}: sites are {known} (add a sites section to the "
                              f"topology)")
        return self.sites[name]

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
