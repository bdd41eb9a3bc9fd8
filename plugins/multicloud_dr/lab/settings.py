"""Where the lab lives, which ports it uses, and the passwords it generated for itself.

Ports are fixed per service so that connection settings stay the same from one `up` to the next;
each can be moved with an environment variable (the error for a taken port names it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multicloud_dr.lab.tls import LabTls

# service name -> (environment variable that moves it, default port)
PORT_SETTINGS: dict[str, tuple[str, int]] = {
    "mysql-primary": ("DRLAB_MYSQL_PRIMARY_PORT", 13306),
    "mysql-replica": ("DRLAB_MYSQL_REPLICA_PORT", 13307),
    "mysql-dr": ("DRLAB_MYSQL_DR_PORT", 13308),
    "pg-primary": ("DRLAB_PG_PRIMARY_PORT", 15432),
    "pg-standby": ("DRLAB_PG_STANDBY_PORT", 15433),
    "azurite": ("DRLAB_AZURITE_PORT", 10010),
    "moto": ("DRLAB_MOTO_PORT", 15000),
    "gcs": ("DRLAB_GCS_PORT", 19023),
    "airflow": ("DRLAB_AIRFLOW_PORT", 18080),
    "app-primary": ("DRLAB_APP_PRIMARY_PORT", 18081),
    "app-dr": ("DRLAB_APP_DR_PORT", 18082),
    "kube-api": ("DRLAB_KUBE_API_PORT", 16443),
    "cloudflare-api": ("DRLAB_CLOUDFLARE_API_PORT", 18443),
    # `make scaleout-demo` only (lab/scaleout.py): Airflow's own metadata database and its Celery broker.
    "airflow-db": ("DRLAB_AIRFLOW_DB_PORT", 15434),
    "redis": ("DRLAB_REDIS_PORT", 16379),
}

# Names the seed data and the default topology agree on.
SAMPLE_DATABASE = "petclinic"
AZURE_CONTAINER = "dr-backups"
GCS_BUCKET = "petclinic-dr-backups"
DB_ADMIN_USER = "dr_admin"
APP_USER = "petclinic_app"
MYSQL_REPL_USER = "repl"
PG_REPL_USER = "replicator"

# The application at each site, as the fake Kubernetes API and the traffic layers know it (include/topology.yaml
# names the same clusters' connections, namespace, deployment and targets).
APP_SITES = ("primary", "dr")
KUBE_CLUSTERS = {"primary": "eks-primary", "dr": "aks-dr"}
APP_NAMESPACE = "petclinic"
APP_DEPLOYMENT = "petclinic-web"
APP_CONFIG_MAP = "petclinic-db"
APP_HOSTS = {"primary": "app-primary.lab.localhost", "dr": "app-dr.lab.localhost"}

# Azurite's development account: a public, documented constant of the emulator (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


# Where PostgreSQL's data goes when the postgres user cannot reach the lab's home (see postgres_home).
OUTSIDE_HOME = Path("/var/lib/multicloud-dr-lab")


def _nearest_existing(path: Path) -> str:
    while not path.exists() and path != path.parent:
        path = path.parent
    return str(path)


@functools.lru_cache(maxsize=16)
def _searchable_by(user: str, path: str) -> bool:
    """Can `user` reach `path` (every directory on the way searchable)?"""
    return subprocess.run(["runuser", "-u", user, "--", "test", "-x", path], capture_output=True,
                          check=False).returncode == 0


def project_root() -> Path:
    """The checkout this package was installed from (editable install), else the current directory."""
    here = Path(__file__).resolve().parents[3]
    if (here / "dags").is_dir() and (here / "pyproject.toml").is_file():
        return here
    return Path.cwd()


@dataclass(frozen=True)
class LabSettings:
    home: Path
    root: Path

    @classmethod
    def from_env(cls) -> LabSettings:
        root = project_root()
        home = Path(os.environ.get("DRLAB_HOME", root / ".lab")).resolve()
        return cls(home=home, root=root)

    def port(self, service: str) -> int:
        setting, default = PORT_SETTINGS[service]
        value = os.environ.get(setting)
        return int(value) if value else default

    @staticmethod
    def port_setting(service: str) -> str:
        return PORT_SETTINGS[service][0]

    def service_dir(self, service: str) -> Path:
        return self.home / service

    @property
    def postgres_home(self) -> Path:
        """Where the PostgreSQL services keep their data: the lab's home, unless the lab runs as root from a
        place the postgres user cannot search (a checkout under /root, or in a `mktemp -d` folder, mode
        0700). PostgreSQL refuses to run as root, so its data then lives under /var/lib/multicloud-dr-lab/,
        in a folder named after the lab's home (so every `drctl lab` command of this checkout finds it)."""
        if os.geteuid() != 0 or _searchable_by("postgres", _nearest_existing(self.home)):
            return self.home
        return OUTSIDE_HOME / hashlib.sha256(str(self.home).encode()).hexdigest()[:12]

    @property
    def tls(self) -> LabTls:
        """The lab's CA and server certificate (under the lab's home, `tls/`)."""
        from multicloud_dr.lab.tls import LabTls

        return LabTls(self.home / "tls")

    @property
    def tools_dir(self) -> Path:
        return self.root / ".tools"

    @property
    def env_file(self) -> Path:
        return self.home / "env"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def seed_megabytes(self) -> float:
        return float(os.environ.get("DRLAB_SEED_MB", "5"))

    def secrets(self) -> LabSecrets:
        return LabSecrets.load_or_create(self.home / "secrets.json")

    def child_env(self) -> dict[str, str]:
        """The environment of a lab process that reads the lab's settings itself (kube-api, which starts the
        apps): this home and every port as resolved here, so it finds the same lab as its parent."""
        env = {**os.environ, "DRLAB_HOME": str(self.home)}
        env.update({setting: str(self.port(service)) for service, (setting, _) in PORT_SETTINGS.items()})
        return env


@dataclass(frozen=True)
class LabSecrets:
    """Passwords and API tokens the lab made up for its own servers, kept in a 0600 file under .lab/
    (git-ignored). A file written by an older lab lacks the newer fields: they are made up and the file is
    rewritten (0600), so the passwords the running servers know stay as they are."""

    mysql_admin: str
    mysql_app: str
    mysql_repl: str
    pg_admin: str
    pg_repl: str
    kube_token: str         # bearer token of the fake Kubernetes API (kube-api)
    cloudflare_token: str   # bearer token of the fake Cloudflare API (cloudflare-api)
    airflow_db: str         # the `airflow` role of the scale-out Airflow's metadata database (airflow-db)
    redis: str              # the scale-out Airflow's Celery broker (redis, requirepass)

    @classmethod
    def load_or_create(cls, path: Path) -> LabSecrets:
        known = list(cls.__dataclass_fields__)
        if path.exists():
            stored = json.loads(path.read_text())
            missing = [name for name in known if not stored.get(name)]
            if not missing:
                return cls(**{name: stored[name] for name in known})
            made = cls(**{name: stored.get(name) or _new_secret() for name in known})
            _write_private(path, made.__dict__, replace=True)
            return made
        path.parent.mkdir(parents=True, exist_ok=True)
        made = cls(**{name: _new_secret() for name in known})
        _write_private(path, made.__dict__, replace=False)
        return made


def _new_secret() -> str:
    # URL-safe so the passwords can sit in connection URIs unescaped.
    return secrets.token_urlsafe(18)


def _write_private(path: Path, data: dict, *, replace: bool) -> None:
    """Write JSON readable by the owner only: a new file exclusively (two first `up`s cannot both win), an
    existing one through a 0600 temporary file renamed over it (never a moment with the secrets world-readable)."""
    if not replace:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
