"""Which terraform root, backend and settings a (cloud, environment, stack) means.

    <root>/<cloud>/<environment>/                    one root per cloud and environment (12)
    <root>/<cloud>/<environment>/backend-<stack>.hcl the state key of the always-on or failover stack
    -var=stack=<stack>                               which half of the pilot-light split the root builds
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import DEFAULT_TOPOLOGY, TerraformConfig, Topology, load_topology
from multicloud_dr.exceptions import ConfigError

CLOUDS = ("aws", "azure", "gcp")
ENVIRONMENTS = ("dev", "staging", "production", "dr")
STACKS = ("always-on", "failover")
ACTIONS = ("plan", "apply", "destroy")
PROJECT_ROOT = DEFAULT_TOPOLOGY.parents[1]


@dataclass(frozen=True)
class StackRef:
    cloud: str
    environment: str
    stack: str

    def __post_init__(self) -> None:
        for what, value, allowed in (("cloud", self.cloud, CLOUDS), ("environment", self.environment, ENVIRONMENTS),
                                     ("stack", self.stack, STACKS)):
            if value not in allowed:
                raise ConfigError(f"{what} {value!r} is not one of {', '.join(allowed)}")

    @property
    def label(self) -> str:
        return f"{self.cloud}/{self.environment}/{self.stack}"

    @property
    def backend_config(self) -> str:
        return f"backend-{self.stack}.hcl"

    @property
    def variables(self) -> dict[str, str]:
        return {"stack": self.stack}

    def to_dict(self) -> dict[str, str]:
        return {"cloud": self.cloud, "environment": self.environment, "stack": self.stack}


def all_stacks() -> list[StackRef]:
    return [StackRef(c, e, s) for c in CLOUDS for e in ENVIRONMENTS for s in STACKS]


def run_key(run_id: str) -> str:
    """A run id as one path segment of a blob name (manual__2026-11-22T05:00:00+00:00 -> manual__2026-...)."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not key:
        raise ConfigError(f"run id {run_id!r} gives an empty storage name")
    return key[:200]


@dataclass(frozen=True)
class TerraformSettings:
    binary: str
    root: Path
    plan_location: StorageUrl
    storage_conn_id: str
    credentials: dict[str, str | None]
    approval_environments: tuple[str, ...]
    confirm_destroy: bool
    lock_timeout_seconds: int
    interrupt_grace_seconds: int
    drift_targets: tuple[StackRef, ...]

    @classmethod
    def from_config(cls, config: TerraformConfig) -> TerraformSettings:
        root = Path(config.root)
        targets = (tuple(StackRef(t.cloud, t.environment, t.stack) for t in config.drift_targets)
                   if config.drift_targets is not None else tuple(all_stacks()))
        return cls(binary=config.binary, root=root if root.is_absolute() else PROJECT_ROOT / root,
                   plan_location=StorageUrl.parse(config.plan_location), storage_conn_id=config.storage_conn_id,
                   credentials=config.credentials.model_dump(),
                   approval_environments=tuple(config.approval_environments), confirm_destroy=config.confirm_destroy,
                   lock_timeout_seconds=config.lock_timeout_seconds,
                   interrupt_grace_seconds=config.interrupt_grace_seconds, drift_targets=targets)

    @classmethod
    def load(cls, topology: Topology | None = None) -> TerraformSettings:
        return cls.from_config((topology or load_topology()).terraform)

    def root_dir(self, ref: StackRef) -> Path:
        """The root of `ref`, checked: it exists and has the stack's backend file."""
        path = self.root / ref.cloud / ref.environment
        if not path.is_dir():
            raise ConfigError(f"no terraform root for {ref.cloud}/{ref.environment} at {path}: check "
                              f"`terraform.root` in the topology (now {self.root})")
        if not (path / ref.backend_config).is_file():
            raise ConfigError(f"{path / ref.backend_config} does not exist: each root has backend-always-on.hcl and "
                              f"backend-failover.hcl with the state key of each stack")
        return path

    def approval_required(self, environment: str, action: str) -> bool:
        return environment in self.approval_environments or (action == "destroy" and self.confirm_destroy)
