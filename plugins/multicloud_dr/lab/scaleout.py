"""A distributed Airflow next to the lab: what `make scaleout-demo` runs, and the F35 test (a worker lost).

`CeleryCluster` starts, on this machine, what a team runs on several:
- `airflow-db`: a PostgreSQL instance of its own (data directory and port; not the application's servers) as
  Airflow's metadata database, reached over TLS verified with the lab's CA;
- `redis`: a `redis-server` of its own as the Celery broker, password (requirepass) and TLS only;
- Airflow with the CeleryExecutor: api-server, scheduler, dag-processor and triggerer in one home (the "control
  plane"), and two Celery workers, each with a home, working directory and TMPDIR of its own, so that nothing
  can pass between tasks through local files; a task instance's `hostname` is the worker's name
  (`[core] hostname_callable`), which is how the demo counts the tasks each worker ran. Task logs go to Blob
  Storage (Azurite, container `airflow-logs`) as each try ends, and the api-server reads them there: the
  workers serve none (`--skip-serve-logs`), as pods of the KubernetesExecutor keep none.

Secrets (the broker's and the database's passwords, the JWT and API secrets, the Fernet key) reach the
processes through their environment only, never argv; the broker's password sits in a 0600 config file.
Every process started here has its working directory under the cluster's home, which is how `stop()` (and
`drctl lab down`, after a killed demo) finds whatever is left, task runners and dumps included.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path
from urllib.parse import quote, urlencode

from multicloud_dr.exceptions import LabError, ServiceFailedError
from multicloud_dr.lab import process
from multicloud_dr.lab.airflow_run import airflow_token, free_port, read_env_file, sigint_not_ignored
from multicloud_dr.lab.services import PostgresService, Service, find_binary
from multicloud_dr.lab.settings import LabSettings

WORKERS = ("worker-1", "worker-2")
CONTROL_PLANE = ("api-server", "scheduler", "dag-processor", "triggerer")
AIRFLOW_DB_USER = "airflow"
AIRFLOW_DB_NAME = "airflow"
WORKER_NAME_VARIABLE = "DRLAB_WORKER_NAME"
LOG_CONN_ID = "azure_blob_dr"
LOG_CONTAINER = "airflow-logs"
LOG_PREFIX = "scaleout"
STOP_GRACE_SECONDS = 20.0


def worker_hostname() -> str:
    """`[core] hostname_callable` of the scale-out workers: the worker's name (both run on this host, whose name
    would not tell them apart); elsewhere the host's name, as Airflow's default gives it."""
    import socket

    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


class AirflowDbService(PostgresService):
    """Airflow's metadata database: a PostgreSQL cluster of its own, one role and one database."""

    name = "airflow-db"
    plays = "Airflow metadata DB (scale-out)"

    def prepare(self) -> None:
        self.initdb("shared_buffers = '128MB'\nmax_connections = 200\n")

    def bootstrap(self) -> None:
        password = self.secrets.airflow_db
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AIRFLOW_DB_USER,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(f"{verb} ROLE {AIRFLOW_DB_USER} WITH LOGIN PASSWORD %s", (password,))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (AIRFLOW_DB_NAME,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {AIRFLOW_DB_NAME} OWNER {AIRFLOW_DB_USER}")

    def uri(self) -> str:
        query = urlencode({"sslmode": "verify-full", "sslrootcert": str(self.settings.tls.ca)})
        return (f"postgresql://{AIRFLOW_DB_USER}:{quote(self.secrets.airflow_db, safe='')}@127.0.0.1:{self.port}/"
                f"{AIRFLOW_DB_NAME}?{query}")

    def sqlalchemy_uri(self) -> str:
        return self.uri().replace("postgresql://", "postgresql+psycopg2://", 1)



class RedisService(Service):
    """The Celery broker: redis-server on 127.0.0.1, TLS only (the lab's certificate), a password, nothing on disk."""

    name = "redis"
    plays = "Celery broker (scale-out)"

    @property
    def config_file(self) -> Path:
        return self.dir / "redis.conf"

    def launch(self) -> None:
        tls = self.settings.tls
        tls.ensure()
        lines = ["bind 127.0.0.1", "port 0", f"tls-port {self.port}", f"tls-cert-file {tls.cert}",
                 f"tls-key-file {tls.key}", f"tls-ca-cert-file {tls.ca}", "tls-auth-clients no",
                 f"requirepass {self.secrets.redis}", f"dir {self.dir}", 'save ""', "appendonly no",
                 f"pidfile {self.dir / 'redis.pid'}", "daemonize no", "protected-mode yes"]
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        binary = find_binary("redis-server", "apt-get install redis-server (or run make install)")
        process.spawn([binary, str(self.config_file)], cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)
        self.mark_tls()

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.secrets.redis, ssl=True,
                           ssl_ca_certs=str(self.settings.tls.ca), ssl_cert_reqs="required", socket_timeout=3)

    def healthy(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError):
            return False

    def outdated(self) -> bool:
        return not self.serves_current_certificate()

    def broker_url(self) -> str:
        """Kombu's URL for it: `rediss://` with the CA, the certificate required (host name checked)."""
        query = urlencode({"ssl_cert_reqs": "required", "ssl_ca_certs": str(self.settings.tls.ca)})
        return f"rediss://:{quote(self.secrets.redis, safe='')}@127.0.0.1:{self.port}/0?{query}"

    def describe(self) -> str:
        info = self.client().info("server")
        return f"Redis {info.get('redis_version')}, tls only"


class CeleryCluster:
    """Airflow with the CeleryExecutor on the lab (see the module's docstring). Use as a context manager: started
    on entry (every component healthy, both workers ready), stopped whole on the way out."""

    def __init__(self, settings: LabSettings | None = None, *, extra_env: dict[str, str] | None = None,
                 users: tuple[str, ...] = ("admin",), concurrency: int = 2) -> None:
        self.settings = settings or LabSettings.from_env()
        self.home = self.settings.home / "scaleout"
        self.db = AirflowDbService(self.settings)
        self.redis = RedisService(self.settings)
        self.extra_env = extra_env or {}
        self.users = users
        self.concurrency = concurrency
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.passwords: dict[str, str] = {}
        # Made once per cluster: every component must get the same ones (the scheduler signs the task tokens the
        # api-server checks, every process decrypts with the one Fernet key).
        self._secrets = {"AIRFLOW__CORE__FERNET_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                         "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                         "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32)}

    # -- layout ---------------------------------------------------------------------------------------------
    @property
    def control_home(self) -> Path:
        return self.home / "control-plane"

    def worker_home(self, name: str) -> Path:
        return self.home / name

    def log_path(self, name: str) -> Path:
        return (self.worker_home(name) if name in WORKERS else self.control_home) / f"{name}.log"

    # -- environment ----------------------------------------------------------------------------------------
    def _common_env(self) -> dict[str, str]:
        root = self.settings.root
        env = {
            **os.environ, **read_env_file(self.settings.env_file),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db.sqlalchemy_uri(),
            "AIRFLOW__CELERY__BROKER_URL": self.redis.broker_url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.db.sqlalchemy_uri()}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:admin" for u in self.users),
            **self._secrets,
            "AIRFLOW__API__PORT": str(self.port), "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "multicloud_dr.lab.scaleout.worker_hostname",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Task logs go to Blob Storage (Azurite) when a try ends, and the api-server reads them there: a
            # worker's own disk is gone with it, and the workers serve no logs of their own (--skip-serve-logs).
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
            "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": LOG_CONN_ID,
            "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"wasb://{LOG_PREFIX}",
            "AIRFLOW__AZURE_REMOTE_LOGGING__REMOTE_WASB_LOG_CONTAINER": LOG_CONTAINER,
            **self.extra_env,
        }
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        env.pop(WORKER_NAME_VARIABLE, None)
        return env

    def _worker_env(self, env: dict[str, str], name: str) -> dict[str, str]:
        home = self.worker_home(name)
        return {**env, "AIRFLOW_HOME": str(home), "TMPDIR": str(home / "tmp"), WORKER_NAME_VARIABLE: name,
                # A Celery worker forks a helper that removes stale versions of versioned DAG bundles (git); the
                # dags-folder bundle has none, and the helper, tied to nothing, outlives a SIGKILLed worker (F35).
                "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL": "0"}

    def _log_container(self, env: dict[str, str]) -> None:
        """The remote logs' container, made if missing (the task handler writes into it, it does not create it)."""
        from azure.core.exceptions import ResourceExistsError

        from multicloud_dr.connections import get_endpoint
        from multicloud_dr.connections.wasb import blob_service_client
        from multicloud_dr.lab.failover_demo import _environ

        with _environ(env), contextlib.suppress(ResourceExistsError):
            blob_service_client(get_endpoint(LOG_CONN_ID)).create_container(LOG_CONTAINER)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> CeleryCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 300.0) -> None:
        stop_leftovers(self.settings)       # a previous cluster whose demo was killed
        shutil.rmtree(self.home, ignore_errors=True)
        for directory in (self.control_home, *(self.worker_home(w) / "tmp" for w in WORKERS)):
            directory.mkdir(parents=True, exist_ok=True)
        self.db.start()
        self.redis.start()
        self.redis.client().flushdb()       # no message of an earlier cluster is delivered to this one
        env = {**self._common_env(), "AIRFLOW_HOME": str(self.control_home)}
        self._reset_metadata_db(env)
        self._log_container(env)
        for name in CONTROL_PLANE:
            self._spawn(name, self.argv(name), env, self.control_home)
        for name in WORKERS:
            self._spawn(name, self.argv(name), self._worker_env(env, name), self.worker_home(name))
        self._wait_ready(timeout)
        self.passwords = json.loads((self.control_home / "simple_auth_manager_passwords.json.generated").read_text())

    def argv(self, name: str) -> list[str]:
        """The `airflow ...` arguments of a component (no setting, let alone a secret: those are in its environment)."""
        if name in WORKERS:
            return ["celery", "worker", "-H", f"{name}@%h", "-c", str(self.concurrency), "--without-mingle",
                    "--without-gossip", "--skip-serve-logs"]
        return [name]

    def _reset_metadata_db(self, env: dict[str, str]) -> None:
        """`airflow db reset` then migrate: each cluster starts from an empty metadata database."""
        for argv in (["db", "reset", "--yes", "--skip-init"], ["db", "migrate"]):
            result = subprocess.run([sys.executable, "-m", "airflow", *argv], env=env, cwd=self.control_home,
                                    capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise LabError(f"airflow {' '.join(argv)} failed on {self.db.name}:\n{result.stderr[-3000:]}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        with open(self.log_path(name), "ab") as out, sigint_not_ignored():
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "airflow", *argv], env=env, cwd=cwd,
                                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        (cwd / f"{name}.pid").write_text(f"{self.procs[name].pid}\n")

    def _wait_ready(self, timeout: float) -> None:
        from multicloud_dr.lab.airflow_run import _healthy

        deadline = time.monotonic() + timeout
        while not (_healthy(self.url) and all(self.worker_ready(w) for w in WORKERS)):
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ServiceFailedError(f"airflow {name} exited ({proc.returncode}):\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise ServiceFailedError(f"the Celery cluster was not ready after {timeout:.0f} s:\n"
                                         + "\n".join(self.log_tail(n) for n in self.procs))
            time.sleep(0.5)

    def worker_ready(self, name: str) -> bool:
        """Celery logs `<name>@<host> ready.` once it consumes from the broker."""
        try:
            return f"{name}@" in (text := self.log_path(name).read_text(errors="replace")) and " ready." in text
        except FileNotFoundError:
            return False

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return f"--- {name}\n{self.log_path(name).read_text(errors='replace')[-chars:]}"
        except FileNotFoundError:
            return f"--- {name}: no log"

    def kill_worker(self, name: str) -> int:
        """SIGKILL the worker's main process (what a lost machine or an OOM kill of it does); returns its pid."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return proc.pid

    def stop(self) -> list[int]:
        """Every component SIGTERMed (a Celery worker finishes nothing more: warm shutdown), then whatever is left
        under the cluster's home killed; the broker and the metadata database stopped. Returns the pids that had
        to be killed."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        left = stop_leftovers(self.settings, stop_services=False)
        self.procs.clear()
        self.redis.stop()
        self.db.stop()
        return left

    # -- the REST API ---------------------------------------------------------------------------------------
    def token(self, user: str = "admin") -> str:
        return airflow_token(self.url, user, self.passwords[user])


def processes_under(home: Path) -> list[int]:
    """Live processes whose working directory lies under `home` (every process of a cluster runs there)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and process.pid_is_ours(int(entry), home):
            pids.append(int(entry))
    return pids


def stop_leftovers(settings: LabSettings, *, stop_services: bool = True) -> list[int]:
    """Kill whatever of a scale-out cluster still runs (SIGTERM, SIGKILL 5 s later) and, with `stop_services`, stop
    its broker and metadata database: for `drctl lab down` and a new cluster after a killed one."""
    home = settings.home / "scaleout"
    left = processes_under(home) if home.exists() else []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_under(home) if home.exists() else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if process.wait_until(lambda: not processes_under(home), 5.0):
            break
    if stop_services:
        RedisService(settings).stop()
        AirflowDbService(settings).stop()
    return left
