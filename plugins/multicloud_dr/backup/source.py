"""The source database: preflight checks, and the mysqldump child process.

Credentials reach mysqldump through an option file held only in memory (see `option_file`), passed
as `--defaults-file` so that no other option file (a ~/.my.cnf with another password) can override
it, and so that no password is ever in a process's argv (F15) or in a file left behind (F29).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.mysql import MySqlConnection
from multicloud_dr.exceptions import InputError


class SourceError(InputError):
    """The source database cannot be backed up as asked (unknown database, access denied, ...)."""


class ServerUnreachableError(SourceError):
    """The server did not answer: drctl says so like bad input, Airflow retries it."""

    retry_may_help = True


@dataclass(frozen=True)
class Preflight:
    server: str           # host:port, no credentials
    version: str
    flavor: str           # "mariadb" or "mysql"
    log_bin: bool
    gtid: str | None
    tables: list[str]     # base tables
    non_innodb: list[str]
    estimated_bytes: int  # information_schema's estimate, for progress ETA only
    schema: str = ""      # schema_fingerprint() at preflight
    server_time: object = None
    warnings: list[str] = field(default_factory=list)


def connect(endpoint: Endpoint, database: str | None = None, connect_timeout: int = 10,
            factory=pymysql.connect, **kwargs) -> pymysql.connections.Connection:
    """A connection (autocommit, utf8mb4, the connection's TLS); `factory`: a pymysql Connection subclass to
    make instead. A TLS failure is a TlsError that says what to fix."""
    try:
        return MySqlConnection(endpoint).connect(factory, database=database, charset="utf8mb4",
                                                 connect_timeout=connect_timeout, autocommit=True, **kwargs)
    except pymysql.err.OperationalError as err:
        code = err.args[0]
        if code == 1049:
            raise SourceError(f"database {database!r} does not exist on {endpoint.describe()}: "
                              f"check --database (or the DAG's configuration)") from None
        if code in (1045, 1044):
            raise SourceError(f"access denied for {endpoint.login!r} on {endpoint.describe()}: "
                              f"check the connection's login and password") from None
        if code in (3118, 4151):   # MySQL's and MariaDB's "this account is locked" (a fenced server, say)
            raise SourceError(f"account {endpoint.login!r} is locked on {endpoint.describe()} (a fenced server "
                              f"locks the app's accounts): use the server that is active now, or unlock it") from None
        raise ServerUnreachableError(f"cannot reach MySQL at {endpoint.describe()}: {err.args[-1]}; check the "
                                     f"host/port and that the server is up") from None


def server_now(endpoint: Endpoint):
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        return cur.fetchone()[0]


def preflight(endpoint: Endpoint, database: str) -> Preflight:
    with contextlib.closing(connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@log_bin, UTC_TIMESTAMP(6)")
        version, log_bin, now = cur.fetchone()
        flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
        gtid = None
        with contextlib.suppress(pymysql.MySQLError):
            cur.execute("SELECT @@gtid_binlog_pos" if flavor == "mariadb" else "SELECT @@gtid_executed")
            gtid = cur.fetchone()[0] or None
        cur.execute(
            "SELECT table_name, engine, COALESCE(data_length, 0) + COALESCE(index_length, 0) "
            "FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY table_name", (database,))
        rows = cur.fetchall()
    tables = [r[0] for r in rows]
    non_innodb = [r[0] for r in rows if (r[1] or "").lower() not in ("innodb", "")]
    warnings = []
    if non_innodb:
        warnings.append(
            f"non-InnoDB tables are not consistent under --single-transaction (writes during the dump may "
            f"be half-seen): {', '.join(non_innodb)}; convert them to InnoDB (ALTER TABLE ... ENGINE=InnoDB)")
    if not log_bin:
        warnings.append("binary logging is off on the source: the backup records no binlog position or GTID, "
                        "so point-in-time recovery from it is not possible")
    return Preflight(server=f"{endpoint.host}:{endpoint.port or 3306}", version=version, flavor=flavor,
                     log_bin=bool(log_bin), gtid=gtid, tables=tables, non_innodb=non_innodb,
                     estimated_bytes=int(sum(r[2] for r in rows)), schema=schema_fingerprint(endpoint, database),
                     server_time=now, warnings=warnings)


def schema_fingerprint(endpoint: Endpoint, database: str) -> str:
    """A hash of the database's tables, columns and indexes. Taken before and after the dump: if it
    differs, DDL ran meanwhile and the dump may mix definitions from after its snapshot with data from
    before it (an instant ADD COLUMN does not make mysqldump fail), so the backup is refused (F16)."""
    import hashlib

    queries = (
        "SELECT table_name, table_type, engine, create_time FROM information_schema.tables "
        "WHERE table_schema = %s ORDER BY table_name",
        "SELECT table_name, column_name, ordinal_position, column_type, is_nullable, column_default, extra "
        "FROM information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position",
        "SELECT table_name, index_name, seq_in_index, column_name FROM information_schema.statistics "
        "WHERE table_schema = %s ORDER BY table_name, index_name, seq_in_index",
    )
    digest = hashlib.sha256()
    with contextlib.closing(connect(endpoint, database)) as conn, conn.cursor() as cur:
        for query in queries:
            cur.execute(query, (database,))
            digest.update(repr(cur.fetchall()).encode())
    return digest.hexdigest()


def dump_binary() -> tuple[str, str]:
    """(path, version line) of the dump tool: mysqldump, else mariadb-dump."""
    for name in ("mysqldump", "mariadb-dump"):
        path = shutil.which(name)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout.strip()
            return path, out
    raise SourceError("mysqldump is not installed: apt-get install mariadb-client (or mysql-client)")


@functools.cache
def client_flavor() -> str:
    """Whose command-line clients run here, "mariadb" or "mysql" (Oracle's): they spell TLS options apart."""
    try:
        return "mariadb" if "mariadb" in dump_binary()[1].lower() else "mysql"
    except SourceError:   # no dump tool: the option file is for the mysql client alone, say MariaDB's
        return "mariadb"


@contextlib.contextmanager
def option_file(endpoint: Endpoint) -> Iterator[Path]:
    """A [client] option file that exists only in memory, for as long as this process holds it open.

    It is a memfd (mode 0600), named to child processes as `/proc/<our pid>/fd/<n>`: a child of the same
    user opens that path like any file (no descriptor needs passing, so shell pipelines work too), and
    nothing else can. No file is ever on disk: when this process ends, however it ends (SIGKILL, OOM),
    the kernel drops it with the descriptor (F29). It carries the connection's TLS (ssl-ca, ...)."""
    lines = MySqlConnection(endpoint).option_file_lines(client_flavor())
    fd = os.memfd_create("mcdr-client-cnf", os.MFD_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)   # MySQL clients ignore a world-writable option file
        os.write(fd, ("\n".join(lines) + "\n").encode())
        yield Path(f"/proc/{os.getpid()}/fd/{fd}")
    finally:
        os.close(fd)


def dump_command(binary: str, defaults_file: Path, database: str, tables: list[str] | tuple[str, ...] = (),
                 options: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The dump tool's argv, one shape for every dump of ours (the backup's, and the restore's re-read for
    verification, whose rows must read byte for byte the same): `--defaults-file` first (the tool reads it
    only there), the options that decide how rows are written, `options`, then `--` and the names. "--" ends
    the options: mysqldump permutes argv, so a name like "-r/x" or "--result-file=/x" would otherwise be an
    option wherever it stands (F26)."""
    return [binary, f"--defaults-file={defaults_file}",  # must come first
            "--single-transaction", "--quick", "--hex-blob", "--default-character-set=utf8mb4",
            "--max-allowed-packet=1G", *options, "--", database, *tables]


def dump_argv(binary: str, version_line: str, defaults_file: Path, database: str, preflight: Preflight) -> list[str]:
    """The backup's dump: the whole database with its routines, triggers and events, and the binlog
    coordinates (as comments) where the server writes a binlog. No --databases: the dump restores into a
    database of any name."""
    options = ["--routines", "--triggers", "--events"]
    mariadb_tool = "mariadb" in version_line.lower()
    if preflight.log_bin:
        if mariadb_tool:
            options += ["--master-data=2", "--gtid"]
        else:
            options += ["--source-data=2", "--set-gtid-purged=COMMENTED"]
    return dump_command(binary, defaults_file, database, options=options)


def start_dump(argv: list[str], stderr) -> subprocess.Popen:
    """Run a dump_command() (the backup's, and the restore's re-read); its rows come on the process's stdout.

    - Through `setpriv --pdeathsig KILL` (util-linux) where there is one: if this process is killed outright
      (SIGKILL, the OOM killer), the kernel kills the dump too. A dump whose reader is gone writes nothing
      while the server is slow to answer, so no broken pipe ends it, and it keeps its connection and
      snapshot open (F20: no orphan mysqldump). The signal follows the thread that started the dump, which
      waits for it before it returns. Not preexec_fn: other threads (the lease renewer) already run.
    - stdin is /dev/null: under Airflow this process's stdin is the supervisor's request socket, and a dump
      holding it delays the supervisor's view of a killed task.
    - Through a 4 MiB stdio buffer (stdbuf, coreutils) where there is one: mysqldump writes its output in
      small pieces and each write to a pipe wakes the reader, and the buffer cuts ~40,000 wake-ups per
      250 MB to ~250 (measured 1.6 s -> 1.3 s just to read a 1.2 s dump). The dump's own exit status still
      comes through both wrappers (each execs the next)."""
    setpriv, stdbuf = shutil.which("setpriv"), shutil.which("stdbuf")
    wrappers = [*([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []), *([stdbuf, "-o4M"] if stdbuf else [])]
    return subprocess.Popen([*wrappers, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                            bufsize=0)
