"""The lab's servers: each knows how to prepare its data directory, start, check and stop itself.

Real servers on 127.0.0.1, each under `.lab/<service>/` with its data, log and pid file:
MariaDB (primary, replica, dr), PostgreSQL (primary, standby), Azurite, moto, gcp-storage-emulator;
the application at each site (app-primary, app-dr: the project's own pet clinic service, on its
site's database); and the fakes of what cannot run here, at their HTTP boundary: the AKS/EKS API
servers (kube-api, in which each site's deployment *is* that site's app process) and Cloudflare's
API (cloudflare-api, whose pools' monitors probe the apps' /health).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg2
import pymysql

from multicloud_dr.connections import Endpoint, parse_uri
from multicloud_dr.connections.mysql import MySqlConnection
from multicloud_dr.connections.mysql import session_tls as mysql_session_tls
from multicloud_dr.connections.postgres import PostgresConnection
from multicloud_dr.connections.postgres import session_tls as pg_session_tls
from multicloud_dr.exceptions import LabError, MissingBinaryError, ServiceFailedError
from multicloud_dr.lab import process
from multicloud_dr.lab.settings import (
    APP_DEPLOYMENT,
    APP_NAMESPACE,
    APP_USER,
    AZURITE_ACCOUNT,
    DB_ADMIN_USER,
    KUBE_CLUSTERS,
    MYSQL_REPL_USER,
    PG_REPL_USER,
    SAMPLE_DATABASE,
    LabSecrets,
    LabSettings,
)

START_TIMEOUT = 90.0
log = logging.getLogger(__name__)
IS_ROOT = os.geteuid() == 0


def find_binary(name: str, install_hint: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin")) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra_dirs if (Path(d) / name).is_file()), None
    )
    if not found:
        raise MissingBinaryError(f"{name} is not installed: {install_hint}")
    return found


# States a service may be in. "idle": an application whose deployment is scaled to 0, so stopped on purpose
# (pilot light): as it should be, like "up".
UP, DOWN, UNHEALTHY, IDLE = "up", "down", "unhealthy", "idle"
AS_EXPECTED = (UP, IDLE)


@dataclass(frozen=True)
class ServiceState:
    name: str
    plays: str
    port: int
    state: str  # UP, DOWN, UNHEALTHY or IDLE
    pid: int | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Running as it should (or stopped because it was scaled to 0): `drctl lab status` exits 0."""
        return self.state in AS_EXPECTED


class Service:
    """One lab server. Subclasses say how to prepare, start and check it."""

    name: str = ""
    plays: str = ""

    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings

    @property
    def secrets(self) -> LabSecrets:
        return self.settings.secrets()

    # -- layout ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.settings.port(self.name)

    @property
    def setting(self) -> str:
        return self.settings.port_setting(self.name)

    @property
    def dir(self) -> Path:
        return self.settings.service_dir(self.name)

    @property
    def log_file(self) -> Path:
        return self.dir / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    # -- lifecycle ------------------------------------------------------------------------------
    def pid(self) -> int | None:
        pid = process.read_pid(self.pid_file)
        return pid if pid is not None and process.pid_is_ours(pid, self.dir) else None

    def healthy(self) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Create the data directory on first use; a no-op afterwards."""

    def launch(self) -> None:
        raise NotImplementedError

    def bootstrap(self) -> None:
        """Idempotent setup once healthy: users, replication, buckets."""

    def outdated(self) -> bool:
        """A running server started with other settings than `launch` gives today (no TLS, an older
        certificate): `start` starts it again."""
        return False

    def start(self) -> str:
        """Start unless already running; return "reused", "restarted" (see `outdated`) or "started"."""
        restarted = False
        if self.pid() is not None and self.healthy():
            if not self.outdated():
                self.bootstrap()
                return "reused"
            log.info("%s runs with outdated settings (TLS): restarting it", self.name)
            self.stop()
            restarted = True
        if self.pid() is None:
            process.ensure_port_free(self.port, self.name, self.setting)
            self.dir.mkdir(parents=True, exist_ok=True)
            self.prepare()
            self.launch()
        # Stop waiting as soon as the server is healthy or has exited (no point waiting for a corpse).
        process.wait_until(lambda: self.pid() is None or self.healthy(), START_TIMEOUT)
        if self.pid() is None or not self.healthy():
            state = "exited" if self.pid() is None else f"not healthy after {START_TIMEOUT:.0f} s"
            raise ServiceFailedError(
                f"lab service {self.name} (port {self.port}) {state}; last lines of {self.log_file}:\n"
                f"{process.excerpt(self.log_file)}"
            )
        self.bootstrap()
        return "restarted" if restarted else "started"

    def stop(self) -> bool:
        pid = self.pid()
        return process.stop_pid(pid, self.dir) if pid is not None else False

    def state(self) -> ServiceState:
        pid = self.pid()
        if pid is None:
            return ServiceState(self.name, self.plays, self.port, DOWN, None)
        try:
            ok, detail = self.healthy(), self.describe()
        except Exception as err:  # status must report, not crash, whatever a server answers
            ok, detail = False, str(err).splitlines()[0]
        return ServiceState(self.name, self.plays, self.port, UP if ok else UNHEALTHY, pid, detail)

    def describe(self) -> str:
        return ""

    # -- TLS ------------------------------------------------------------------------------------
    @property
    def tls_marker(self) -> Path:
        """The fingerprint of the certificate the running server was started with."""
        return self.dir / "tls.sha256"

    def mark_tls(self) -> None:
        self.tls_marker.write_text(self.settings.tls.fingerprint() + "\n")

    def serves_current_certificate(self) -> bool:
        try:
            return self.tls_marker.read_text().strip() == self.settings.tls.fingerprint()
        except OSError:
            return False


# ---------------------------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------------------------
class MariaDBService(Service):
    server_id = 0
    read_only = False
    require_tls = False   # require_secure_transport: TCP clients must use TLS (the unix socket still works)

    @property
    def socket(self) -> Path:
        return self.dir / "mysqld.sock"

    def admin(self, database: str | None = None) -> pymysql.connections.Connection:
        """root over the unix socket: the lab's own back door, not what DAGs use."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", database=database,
                               autocommit=True, connect_timeout=3, charset="utf8mb4")

    def healthy(self) -> bool:
        try:
            with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return True
        except pymysql.MySQLError:
            return False

    @property
    def tmpdir(self) -> Path:
        return self.dir / "tmp"

    def prepare(self) -> None:
        data = self.dir / "data"
        if (data / "mysql").is_dir():
            return
        install_db = find_binary("mariadb-install-db", "apt-get install mariadb-server (or run make install)")
        # --no-defaults first: the system server's my.cnf (its datadir, user, log) must not leak in.
        # Its own temp directory (install-db passes --tmpdir on to the bootstrap server): a temp-table file
        # of the bootstrap once went missing from the shared /tmp and the install failed.
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        argv = [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                "--skip-test-db", f"--tmpdir={self.tmpdir}"]
        if IS_ROOT:
            argv.append("--user=root")
        with open(self.log_file, "ab") as log:
            result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise ServiceFailedError(f"mariadb-install-db failed for {self.name}:\n{process.excerpt(self.log_file)}")

    def launch(self) -> None:
        mariadbd = find_binary("mariadbd", "apt-get install mariadb-server (or run make install)")
        tls = self.settings.tls
        tls.ensure()   # a no-op after Lab.up made them; a service started alone makes them here
        (self.dir / "binlog").mkdir(exist_ok=True)
        argv = [
            mariadbd, "--no-defaults", f"--datadir={self.dir / 'data'}", f"--socket={self.socket}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.dir / 'mysqld.pid'}",
            f"--server-id={self.server_id}", f"--log-bin={self.dir / 'binlog' / 'mysql-bin'}",
            "--binlog-format=ROW", "--log-slave-updates=ON", "--gtid-strict-mode=ON",
            "--skip-name-resolve", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci", "--innodb-buffer-pool-size=256M",
            "--max-allowed-packet=256M", f"--read-only={'ON' if self.read_only else 'OFF'}",
            f"--tmpdir={self.tmpdir}", f"--ssl-ca={tls.ca}", f"--ssl-cert={tls.cert}", f"--ssl-key={tls.key}",
            f"--require-secure-transport={'ON' if self.require_tls else 'OFF'}",
        ]
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if IS_ROOT:
            argv.append("--user=root")
        process.spawn(argv, cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)
        self.mark_tls()

    def outdated(self) -> bool:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@have_ssl, @@require_secure_transport")
            have_ssl, required = cur.fetchone()
        return have_ssl != "YES" or bool(required) != self.require_tls or not self.serves_current_certificate()

    def create_users(self, cur: pymysql.cursors.Cursor) -> None:
        for host in ("127.0.0.1", "localhost"):
            cur.execute(f"CREATE USER IF NOT EXISTS '{DB_ADMIN_USER}'@'{host}' IDENTIFIED BY %s",
                        (self.secrets.mysql_admin,))
            cur.execute(f"ALTER USER '{DB_ADMIN_USER}'@'{host}' IDENTIFIED BY %s", (self.secrets.mysql_admin,))
            cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{DB_ADMIN_USER}'@'{host}' WITH GRANT OPTION")
            cur.execute(f"CREATE USER IF NOT EXISTS '{APP_USER}'@'{host}' IDENTIFIED BY %s",
                        (self.secrets.mysql_app,))
            cur.execute(f"ALTER USER '{APP_USER}'@'{host}' IDENTIFIED BY %s", (self.secrets.mysql_app,))
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `{SAMPLE_DATABASE}`.* "
                        f"TO '{APP_USER}'@'{host}'")
        cur.execute(f"CREATE USER IF NOT EXISTS '{MYSQL_REPL_USER}'@'127.0.0.1' IDENTIFIED BY %s",
                    (self.secrets.mysql_repl,))
        cur.execute(f"ALTER USER '{MYSQL_REPL_USER}'@'127.0.0.1' IDENTIFIED BY %s", (self.secrets.mysql_repl,))
        cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{MYSQL_REPL_USER}'@'127.0.0.1'")

    def bootstrap(self) -> None:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            self.create_users(cur)

    def describe(self) -> str:
        # Over TCP as the lab's connections go (the CA verified), so the TLS shown is what clients get.
        with contextlib.closing(MySqlConnection(parse_uri(self.uri())).connect(connect_timeout=3)) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@gtid_current_pos")
            version, gtid = cur.fetchone()
            tls = mysql_session_tls(conn)
        return f"{version}, tls {tls}, gtid {gtid or '-'}"

    def uri(self, database: str | None = None) -> str:
        """The admin account's URI, TLS verified with the lab's CA (extras as Airflow's MySQL provider reads them)."""
        query = urlencode({"ssl": json.dumps({"ca": str(self.settings.tls.ca)}), "ssl_mode": "VERIFY_IDENTITY"})
        path = f"/{database}" if database else ""
        return f"mysql://{DB_ADMIN_USER}:{self.secrets.mysql_admin}@127.0.0.1:{self.port}{path}?{query}"


class MySQLPrimary(MariaDBService):
    name = "mysql-primary"
    plays = "RDS MySQL primary"
    server_id = 1


class MySQLDR(MariaDBService):
    name = "mysql-dr"
    plays = "Azure MySQL Flexible (DR)"
    server_id = 3
    require_tls = True   # as Azure MySQL Flexible Server does by default


class MySQLReplica(MariaDBService):
    name = "mysql-replica"
    plays = "MySQL read replica"
    server_id = 2
    read_only = True

    def __init__(self, settings: LabSettings, primary: MySQLPrimary) -> None:
        super().__init__(settings)
        self.primary = primary

    def bootstrap(self) -> None:
        # Users arrive through replication from the primary; creating them here as well would put
        # local transactions into the replica's binlog and break GTID strict mode on failover.
        with contextlib.closing(self.admin()) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            status = cur.fetchone()
            if status is None:
                cur.execute(
                    "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER=%s, "
                    "MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
                    (self.primary.port, MYSQL_REPL_USER, self.secrets.mysql_repl),
                )
                cur.execute("START SLAVE")
            elif status["Master_Port"] != self.primary.port:
                raise LabError(
                    f"{self.name} replicates from port {status['Master_Port']} but the primary is on "
                    f"{self.primary.port}; run `drctl lab down --wipe` and `drctl lab up` to rebuild the lab"
                )
            elif status["Slave_SQL_Running"] != "Yes" or status["Slave_IO_Running"] != "Yes":
                cur.execute("START SLAVE")

    def wait_caught_up(self, timeout: float = 60.0) -> None:
        with contextlib.closing(self.primary.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@gtid_binlog_pos")
            (pos,) = cur.fetchone()
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
            (result,) = cur.fetchone()
        if result != 0:
            raise ServiceFailedError(
                f"{self.name} did not catch up with the primary (GTID {pos}) within {timeout:.0f} s; "
                f"see SHOW SLAVE STATUS on port {self.port} and {self.log_file}"
            )

    def describe(self) -> str:
        with contextlib.closing(self.admin()) as conn, conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            status = cur.fetchone() or {}
        lag = status.get("Seconds_Behind_Master")
        return (f"{super().describe()}, io={status.get('Slave_IO_Running', '-')} "
                f"sql={status.get('Slave_SQL_Running', '-')} lag={'NULL' if lag is None else lag}s")


# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
def pg_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if candidates:
        return candidates[-1]
    return find_binary(name, "apt-get install postgresql (or run make install)")


def as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *argv] if IS_ROOT else argv


class PostgresService(Service):
    @property
    def dir(self) -> Path:
        return self.settings.postgres_home / self.name

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    @property
    def pid_file(self) -> Path:
        return self.data / "postmaster.pid"

    def admin(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname,
                                connect_timeout=3)
        conn.autocommit = True
        return conn

    def healthy(self) -> bool:
        try:
            with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                return True
        except psycopg2.Error:
            return False

    def _own_dir(self) -> None:
        if self.settings.postgres_home != self.settings.home and not self.dir.exists():
            log.info("the postgres user cannot reach %s: %s keeps its data in %s instead", self.settings.home,
                     self.name, self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.settings.postgres_home != self.settings.home:
            self.settings.postgres_home.parent.chmod(0o755)
            self.settings.postgres_home.chmod(0o755)
        self.socket_dir.mkdir(exist_ok=True)
        if IS_ROOT:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            check = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.dir)], check=False)
            if check.returncode != 0:
                raise LabError(
                    f"the postgres user cannot reach {self.dir} (a parent directory is not searchable "
                    f"by other users); set DRLAB_HOME to a directory it can reach, e.g. /var/tmp/drlab"
                )

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    def _install_tls(self) -> None:
        """Copies of the lab's certificate and key that the postgres user owns: PostgreSQL refuses a key that
        is not its own with mode 0600 (and may not reach the lab's home at all, see postgres_home)."""
        tls = self.settings.tls
        tls.ensure()   # a no-op after Lab.up made them; a service started alone makes them here
        self.tls_dir.mkdir(exist_ok=True)
        for source, target in ((tls.cert, self.tls_dir / "server.pem"), (tls.key, self.tls_dir / "server-key.pem"),
                               (tls.ca, self.tls_dir / "ca.pem")):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(source.read_bytes())
            if IS_ROOT:
                shutil.chown(target, "postgres", "postgres")
        if IS_ROOT:
            shutil.chown(self.tls_dir, "postgres", "postgres")

    def launch(self) -> None:
        self._own_dir()
        self._install_tls()
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.socket_dir} -c ssl=on "
                   f"-c ssl_cert_file={self.tls_dir / 'server.pem'} -c ssl_key_file={self.tls_dir / 'server-key.pem'}")
        argv = as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log_file), "-o", options,
                            "-w", "-t", "60", "start"])
        result = subprocess.run(argv, cwd=self.dir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceFailedError(
                f"pg_ctl start failed for {self.name} (port {self.port}): {result.stderr.strip()}\n"
                f"{process.excerpt(self.log_file)}"
            )
        self.mark_tls()

    def outdated(self) -> bool:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SHOW ssl")
            (ssl,) = cur.fetchone()
        return ssl != "on" or not self.serves_current_certificate()

    def stop(self) -> bool:
        if self.pid() is None:
            return False
        subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30",
                                    "stop"]), capture_output=True, check=False)
        pid = self.pid()
        return process.stop_pid(pid, self.dir) if pid is not None else True

    def describe(self) -> str:
        # Over TCP as the lab's connections go (the CA verified), so the TLS shown is what clients get.
        with contextlib.closing(PostgresConnection(parse_uri(self.uri())).connect(connect_timeout=3)) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version'), pg_is_in_recovery()")
            version, recovery = cur.fetchone()
            tls = pg_session_tls(conn)
        return f"PostgreSQL {version}, tls {tls}, {'standby' if recovery else 'primary'}"

    def uri(self) -> str:
        """The admin account's URI, TLS verified with the lab's CA (libpq's own parameters, which Airflow passes on)."""
        query = urlencode({"sslmode": "verify-full", "sslrootcert": str(self.settings.tls.ca)})
        return (f"postgresql://{DB_ADMIN_USER}:{self.secrets.pg_admin}@127.0.0.1:{self.port}/{SAMPLE_DATABASE}"
                f"?{query}")


    def initdb(self, conf: str, hba: str = "") -> None:
        """A new cluster in the data directory (once: a no-op when it exists), `conf` appended to its
        postgresql.conf and `hba` to its pg_hba.conf. Local socket: trust (the lab's admin); TCP: passwords."""
        if (self.data / "PG_VERSION").exists():
            return
        self._own_dir()
        with open(self.log_file, "ab") as log:
            result = subprocess.run(
                as_postgres([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
                             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"]),
                stdout=log, stderr=subprocess.STDOUT, check=False,
            )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise ServiceFailedError(f"initdb failed for {self.name}:\n{process.excerpt(self.log_file)}")
        if IS_ROOT:  # the server appends to the same log as the postgres user
            shutil.chown(self.log_file, "postgres", "postgres")
        with open(self.data / "postgresql.conf", "a") as handle:
            handle.write(f"\n# multicloud-dr lab\n{conf}")
        if hba:
            with open(self.data / "pg_hba.conf", "a") as handle:
                handle.write(hba)

    def base_backup_from(self, source: PostgresService) -> None:
        """This server's (empty) data directory made a streaming standby of `source`: pg_basebackup -R."""
        self._own_dir()
        self._install_tls()
        # pg_basebackup -R writes these into primary_conninfo: the standby streams over verified TLS.
        env = {**os.environ, "PGPASSWORD": self.secrets.pg_repl,  # never argv
               "PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.tls_dir / "ca.pem")}
        with open(self.log_file, "ab") as log:
            result = subprocess.run(
                as_postgres([pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(source.port),
                             "-U", PG_REPL_USER, "-D", str(self.data), "-R", "-X", "stream", "-c", "fast"]),
                stdout=log, stderr=subprocess.STDOUT, env=env, check=False, cwd=self.dir,
            )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise ServiceFailedError(f"pg_basebackup failed for {self.name}:\n{process.excerpt(self.log_file)}")
        if IS_ROOT:
            shutil.chown(self.log_file, "postgres", "postgres")

    def rebuild_as_standby_of(self, source: PostgresService) -> None:
        """Stop this server, replace its data with a base backup of `source`, and start it as `source`'s standby:
        what an operator does to an old primary before failing back to it (failover/pg_failback.py)."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.base_backup_from(source)
        self.start()


class PostgresPrimary(PostgresService):
    name = "pg-primary"
    plays = "RDS PostgreSQL primary"

    def prepare(self) -> None:
        self.initdb("wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = '256MB'\nhot_standby = on\n"
                    "shared_buffers = '128MB'\ntrack_commit_timestamp = on\n",
                    f"host replication {PG_REPL_USER} 127.0.0.1/32 scram-sha-256\n")

    def bootstrap(self) -> None:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            if cur.fetchone()[0]:
                log.info("%s is a standby now (rebuilt from the DR server for a failback): its roles and "
                         "database come from there", self.name)
                return
            # A fenced primary makes new sessions read-only (default_transaction_read_only): the lab's own
            # setup still writes; it never lifts the fence itself.
            cur.execute("SET SESSION default_transaction_read_only = off")
            for role, password, attrs in ((DB_ADMIN_USER, self.secrets.pg_admin, "LOGIN SUPERUSER"),
                                          (PG_REPL_USER, self.secrets.pg_repl, "LOGIN REPLICATION")):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(f"{verb} ROLE {role} WITH {attrs} PASSWORD %s", (password,))
            # The application's role, which fencing locks (NOLOGIN): made once, never unlocked here (a lab
            # restarted while fenced stays fenced), only its password kept current.
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,))
            verb = "ALTER ROLE {} PASSWORD %s" if cur.fetchone() else "CREATE ROLE {} WITH LOGIN PASSWORD %s"
            cur.execute(verb.format(APP_USER), (self.secrets.mysql_app,))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SAMPLE_DATABASE,))
            if cur.fetchone() is None:
                cur.execute(f"CREATE DATABASE {SAMPLE_DATABASE} OWNER {DB_ADMIN_USER}")


class PostgresStandby(PostgresService):
    name = "pg-standby"
    plays = "Cloud SQL replica (standby)"

    def __init__(self, settings: LabSettings, primary: PostgresPrimary) -> None:
        super().__init__(settings)
        self.primary = primary

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.base_backup_from(self.primary)

    def describe(self) -> str:
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM pg_stat_wal_receiver")
            row = cur.fetchone()
        return f"{super().describe()}, wal receiver {row[0] if row else 'not running'}"


# ---------------------------------------------------------------------------------------------
# Cloud emulators
# ---------------------------------------------------------------------------------------------
def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL built here)
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return None


class AzuriteService(Service):
    name = "azurite"
    plays = "Azure Blob Storage"

    @property
    def binary(self) -> Path:
        return self.settings.tools_dir / "azurite" / "node_modules" / ".bin" / "azurite-blob"

    def launch(self) -> None:
        if not self.binary.exists():
            raise MissingBinaryError(f"Azurite is not installed at {self.binary}: run make install "
                                     f"(npm install --prefix .tools/azurite azurite@3.35.0)")
        find_binary("node", "apt-get install nodejs (Node 20 runs Azurite 3.35.0)")
        (self.dir / "data").mkdir(exist_ok=True)
        # The SDK sends a newer API version than 3.35 knows; --skipApiVersionCheck lets it through.
        process.spawn([str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                       "--location", str(self.dir / "data"), "--skipApiVersionCheck", "--loose",
                       "--disableTelemetry"],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)

    def healthy(self) -> bool:
        # Any HTTP answer (403 without a signature) means the server is serving.
        return http_status(f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}?comp=list") is not None

    def connection_string(self) -> str:
        from multicloud_dr.lab.settings import AZURITE_KEY

        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};")

    def describe(self) -> str:
        return f"blob endpoint http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"


class MotoService(Service):
    name = "moto"
    plays = "AWS APIs (S3, DMS, Route 53, CloudFront, ...)"

    def launch(self) -> None:
        # moto's server with the lab's one correction (see lab/moto_server.py: Route 53 change batches).
        process.spawn([sys.executable, "-m", "multicloud_dr.lab.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)

    def healthy(self) -> bool:
        return http_status(f"http://127.0.0.1:{self.port}/moto-api/") == 200

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def describe(self) -> str:
        return f"endpoint {self.endpoint()} (in memory: seeded again on every up)"


class GcsService(Service):
    name = "gcs"
    plays = "Google Cloud Storage"

    def launch(self) -> None:
        # Stored on disk under the service directory (its working directory).
        process.spawn([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                       "--port", str(self.port)],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)

    def healthy(self) -> bool:
        return http_status(f"http://127.0.0.1:{self.port}/storage/v1/b?project=lab") == 200

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def describe(self) -> str:
        return f"endpoint {self.endpoint()}"


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read (a token for a fake's own process), replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _http_json(url: str, timeout: float = 2.0) -> tuple[int | None, Any]:
    """(status, parsed JSON body or None) of a GET; (None, None) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL built here)
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    except (urllib.error.URLError, OSError):
        return None, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


# ---------------------------------------------------------------------------------------------
# The application at each site, and the fake APIs that drive and route to it
# ---------------------------------------------------------------------------------------------
class KubeApiService(Service):
    """The AKS and EKS API servers, faked at their HTTP boundary (no Kubernetes API server can run here):
    one process serving both clusters under /clusters/<cluster>. Each site's Deployment petclinic-web is
    bound to that site's app process, so scaling it is starting or stopping the app (see lab/kube_api.py)."""

    name = "kube-api"
    plays = "AKS and EKS API servers (fake)"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def token_file(self) -> Path:
        return self.dir / "token"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cluster_url(self, site: str) -> str:
        return f"{self.base_url}/clusters/{KUBE_CLUSTERS[site]}"

    def launch(self) -> None:
        _write_private(self.token_file, self.secrets.kube_token)
        # It reads the lab's settings itself (the apps it starts need their ports and passwords): same home,
        # same ports as this process.
        process.spawn([sys.executable, "-m", "multicloud_dr.lab.kube_api", "--port", str(self.port),
                       "--state", str(self.state_file), "--token-file", str(self.token_file)],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file, env=self.settings.child_env())

    def healthy(self) -> bool:
        # Any answer (401 without the token) means it serves.
        return http_status(f"{self.cluster_url('primary')}/version") is not None

    def kubeconfig(self, site: str) -> dict:
        from multicloud_dr.lab.fake_kube import kubeconfig

        return kubeconfig(self.base_url, KUBE_CLUSTERS[site], self.secrets.kube_token, APP_NAMESPACE)

    def connection(self, site: str) -> dict:
        """The site's `kubernetes` connection, in Airflow's JSON form (kube_config: the kubeconfig's text, as
        the provider's connection form stores it)."""
        return {"conn_type": "kubernetes",
                "extra": {"kube_config": json.dumps(self.kubeconfig(site)), "namespace": APP_NAMESPACE}}

    def endpoint(self, site: str) -> Endpoint:
        extra = self.connection(site)["extra"]
        return Endpoint("kubernetes", extra=extra)

    def deployment(self, site: str) -> Any:
        """The site's petclinic-web Deployment as the kubernetes client reads it."""
        from multicloud_dr.connections.kubernetes import KubernetesConnection

        apps = KubernetesConnection(self.endpoint(site)).apps_v1()
        return apps.read_namespaced_deployment(APP_DEPLOYMENT, APP_NAMESPACE, _request_timeout=5)

    def desired_replicas(self, site: str) -> int | None:
        """spec.replicas of the site's deployment; None when the API does not answer or has no such deployment."""
        from kubernetes.client.exceptions import ApiException

        if not self.healthy():   # not serving: the client would only retry and then fail
            return None
        try:
            return int(self.deployment(site).spec.replicas or 0)
        except ApiException:
            return None

    def describe(self) -> str:
        parts = []
        for site, cluster in KUBE_CLUSTERS.items():
            deployment = self.deployment(site)
            ready = deployment.status.ready_replicas or 0
            parts.append(f"{cluster} {APP_DEPLOYMENT} {ready}/{deployment.spec.replicas or 0} ready")
        return f"{self.base_url}/clusters/<cluster>: " + ", ".join(parts)


class AppService(Service):
    """The pet clinic application of one site (lab/app.py) on that site's database, as the app user.

    Also the `Workload` the fake Kubernetes API binds the site's deployment to: `scale(0)` stops the process,
    `scale(n >= 1)` starts it when it is not running; `ready()` is its /health answering 200. `scale` may be
    called by kube-api's reconcile and by `lab up` at once: a lock file makes the two one after the other."""

    def __init__(self, settings: LabSettings, site: str, database: MariaDBService,
                 kube: KubeApiService | None = None) -> None:
        super().__init__(settings)
        self.site = site
        self.name = f"app-{site}"
        self.plays = {"primary": "the application on EKS", "dr": "the application on AKS"}.get(site, site)
        self.database = database
        self.kube = kube

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def deployment_key(self) -> str:
        """Where its deployment lives in the fake Kubernetes API: cluster/namespace/deployment."""
        return f"{KUBE_CLUSTERS[self.site]}/{APP_NAMESPACE}/{APP_DEPLOYMENT}"

    def connection(self) -> dict:
        """Its `http` connection (the health check's base URL), in Airflow's JSON form."""
        return {"conn_type": "http", "host": "127.0.0.1", "port": self.port, "schema": "http"}

    # The fake Kubernetes API hands scale() the pod's environment (its ConfigMap and Secret, see fake_kube.py).
    takes_pod_env = True
    POD_ENV_KEYS = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")

    def launch(self, pod_env: dict[str, str] | None = None) -> None:
        tls = self.settings.tls
        tls.ensure()
        # The lab's own settings, then what the deployment's ConfigMap and Secret say (as a pod gets them): a
        # failover that points the DR app at another database reaches the process when it next starts. The
        # password goes through the environment, never argv.
        env = {**os.environ, "DB_HOST": "127.0.0.1", "DB_PORT": str(self.database.port), "DB_NAME": SAMPLE_DATABASE,
               "DB_USER": APP_USER, "DB_PASSWORD": self.secrets.mysql_app, "DB_SSL_CA": str(tls.ca)}
        env |= {k: v for k, v in (pod_env or {}).items() if k in self.POD_ENV_KEYS}
        process.spawn([sys.executable, "-m", "multicloud_dr.lab.app", "--port", str(self.port), "--site", self.site],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file, env=env)

    def health(self) -> tuple[int | None, dict | None]:
        """(HTTP status, JSON body) of its /health; (None, None) when it does not answer."""
        return _http_json(f"{self.url}/health", timeout=5)

    def healthy(self) -> bool:
        # Serving is enough: a 503 (its database down or read-only) is the app telling the truth about its site.
        return http_status(f"{self.url}/health", timeout=5) is not None

    def ready(self) -> bool:
        return http_status(f"{self.url}/health", timeout=5) == 200

    @contextlib.contextmanager
    def _scaling(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "scale.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def scale(self, replicas: int, env: dict[str, str] | None = None) -> None:
        """0: stop the process; >= 1: start it unless it runs (one process plays every replica), with the pod's
        environment `env`. Returns once the process is launched or stopped; `ready()` says when it serves."""
        with self._scaling():
            pid = self.pid()
            if replicas <= 0:
                if pid is not None:
                    log.info("%s: scaled to 0, stopping pid %d", self.name, pid)
                    self.stop()
                    with contextlib.suppress(ChildProcessError):   # our child when kube-api started it: reap it
                        os.waitpid(pid, os.WNOHANG)
                return
            if pid is None:
                process.ensure_port_free(self.port, self.name, self.setting)
                log.info("%s: scaled to %d, starting it on port %d", self.name, replicas, self.port)
                self.launch(env)

    def follow(self, replicas: int, was_running: bool) -> str:
        """Make the process what its deployment wants (`lab up`, after kube-api's own reconcile): "idle" for 0
        replicas, else "reused" or "started" once it serves."""
        self.scale(replicas)
        if replicas <= 0:
            return IDLE
        process.wait_until(lambda: self.pid() is None or self.healthy(), START_TIMEOUT)
        if self.pid() is None or not self.healthy():
            state = "exited" if self.pid() is None else f"did not answer /health within {START_TIMEOUT:.0f} s"
            raise ServiceFailedError(f"lab service {self.name} (port {self.port}) {state}; last lines of "
                                     f"{self.log_file}:\n{process.excerpt(self.log_file)}")
        return "reused" if was_running else "started"

    def state(self) -> ServiceState:
        if self.pid() is None and self.kube is not None and self.kube.pid() is not None \
                and self.kube.desired_replicas(self.site) == 0:
            return ServiceState(self.name, self.plays, self.port, IDLE, None,
                                f"deployment {self.deployment_key} scaled to 0")
        return super().state()

    def describe(self) -> str:
        status, body = self.health()
        if not isinstance(body, dict):
            return f"/health {status or 'no answer'}"
        database = body.get("database") or {}
        read_only = body.get("read_only")
        text = (f"/health {status} {body.get('status')}, read_only "
                f"{'-' if read_only is None else str(read_only).lower()}, "
                f"db {database.get('host')}:{database.get('port')}/{database.get('name')}")
        return f"{text}: {body['error']}" if body.get("error") else text


class CloudflareApiService(Service):
    """Cloudflare's load-balancer API, faked at its HTTP boundary (lab/fake_cloudflare.py): the topology's
    load balancer with a pool per site, whose monitors probe the apps' /health for real."""

    name = "cloudflare-api"
    plays = "Cloudflare's API (fake)"

    def __init__(self, settings: LabSettings, apps: dict[str, AppService]) -> None:
        super().__init__(settings)
        self.apps = apps

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    @property
    def token_file(self) -> Path:
        return self.dir / "token"

    def launch(self) -> None:
        from multicloud_dr.lab import seed

        _write_private(self.token_file, self.secrets.cloudflare_token)
        seed_file = self.dir / "seed.json"
        seed_file.write_text(json.dumps(seed.cloudflare_seed({site: app.port for site, app in self.apps.items()}),
                                        indent=2))
        process.spawn([sys.executable, "-m", "multicloud_dr.lab.fake_cloudflare", "--port", str(self.port),
                       "--state", str(self.dir / "state.json"), "--token-file", str(self.token_file),
                       "--seed", str(seed_file)],
                      cwd=self.dir, log_file=self.log_file, pid_file=self.pid_file)

    def healthy(self) -> bool:
        # Any answer (an authentication error without the token) means it serves.
        return http_status(f"{self.api_url}/zones") is not None

    def connection(self) -> dict:
        """Its `http` connection as the traffic layer uses it: the API's base URL and the token as a header."""
        return {"conn_type": "http", "host": self.api_url,
                "extra": {"Authorization": f"Bearer {self.secrets.cloudflare_token}"}}

    def describe(self) -> str:
        from multicloud_dr.connections.http import http_session
        from multicloud_dr.lab import seed

        layer = seed.cloudflare_layer()
        api = http_session(Endpoint(**self.connection()))
        balancers = api.request("GET", f"zones/{layer.zone_id}/load_balancers", timeout=5).json()["result"]
        found = next((lb for lb in balancers if layer.load_balancer in (lb.get("id"), lb.get("name"))), None)
        if found is None:
            return f"{self.api_url}: no load balancer {layer.load_balancer}"
        site_of = {pool: site for site, pool in layer.pools.items()}
        pools = [site_of.get(pool, pool) for pool in found.get("default_pools", [])]
        return (f"{self.api_url}: {found['name']} pools [{', '.join(pools)}], "
                f"fallback {site_of.get(found.get('fallback_pool'), found.get('fallback_pool'))}")
