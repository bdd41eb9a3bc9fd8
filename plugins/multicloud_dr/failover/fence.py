"""Fencing the old primary database: after it, the application can no longer write to it.

Fault ids cited here (the full list is /work/shared/FAULTS.md; what each means is said here too):

- F23, fencing the old primary: after fencing, writes to it fail as the app's user, and fencing twice is a no-op.
- F30, the primary partitioned rather than dead: it cannot be reached, so the failover records fencing as
  *pending* and fences it as soon as it is seen again, before it takes a write through the app.

What a fence does, in this order (each step only when what was read shows it is not yet done):

1. Lock the application's accounts (MariaDB/MySQL `ALTER USER ... ACCOUNT LOCK`, MariaDB 10.4+; PostgreSQL
   `ALTER ROLE ... NOLOGIN`): no new session of the app can start.
2. End the app's open sessions (`KILL CONNECTION`; `pg_terminate_backend`). `read_only` alone does not stop a
   session whose user has SUPER (or READ_ONLY ADMIN), nor a PostgreSQL session that says `BEGIN READ WRITE`; a
   killed session's open transaction is rolled back. (On MariaDB 10.11 a transaction opened before read_only
   cannot commit after it either: the COMMIT fails with error 1290, checked on the lab.)
3. Make the server read-only: MariaDB/MySQL `read_only = ON`, and `super_read_only = ON` where the server has
   it (MySQL 5.7.8+; MariaDB has none); PostgreSQL `ALTER SYSTEM SET default_transaction_read_only = on` and a
   reload. Sessions are ended before this, so no app session holding a table lock can make it wait.
4. Verify by reading everything back; what remains is done again (a session that connected just before its
   account was locked) until nothing remains or the timeout passes.

Which of these to do is `plan_fence`, a pure function of what was read (`Observed`): fencing a fenced server
plans nothing, so a second fence changes nothing and says `already_fenced`. `unfence_*` reverses the fence (for
failback, and for tests) by the same read-plan-apply-verify path with `plan_unfence`.

Replication: on MariaDB/MySQL the account changes are made with `sql_log_bin = 0`, so they stay on the fenced
server: a lock replicated to the DR replica would lock the app out of the new primary once it is promoted.
PostgreSQL has no such switch: a physical standby of the fenced server receives `NOLOGIN` too, which the result
warns about (run `unfence_postgres` on the standby after promoting it). `default_transaction_read_only` set by
`ALTER SYSTEM` lives in the fenced server's postgresql.auto.conf and does not replicate.

Managed servers (RDS, Azure Flexible Server, Cloud SQL) may refuse `SET GLOBAL read_only` and `sql_log_bin` to
their admin user: the error says so, and the read-only flag must then come from the provider's parameter group.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.exceptions import DrError

log = logging.getLogger(__name__)

FENCE_SECONDS = 30.0     # the whole fence: statements, the ends of killed sessions, the reload
CONNECT_SECONDS = 5.0    # a primary that does not answer within this is unreachable: fencing stays pending
_ROUND_PAUSE = 0.1       # between a round of actions and the next read, while something remains
_DEFAULT_PORTS = {"mysql": 3306, "postgres": 5432}

# What an action does.
LOCK_ACCOUNT = "lock_account"
UNLOCK_ACCOUNT = "unlock_account"
KILL_SESSION = "kill_session"
READ_ONLY_ON = "read_only_on"
READ_ONLY_OFF = "read_only_off"
SUPER_READ_ONLY_ON = "super_read_only_on"
SUPER_READ_ONLY_OFF = "super_read_only_off"


class FenceError(DrError):
    """The server was reached but could not be fenced (or unfenced) and verified: the failover must not go on as
    if it were. The message says what is left and what to check; fencing again is safe (it is idempotent)."""


@dataclass(frozen=True)
class Account:
    """One database account of the application: MySQL `'user'@'host'` (one per host), or a PostgreSQL role."""

    user: str
    host: str | None = None     # None for PostgreSQL roles
    locked: bool = False

    def label(self) -> str:
        return f"'{self.user}'@'{self.host}'" if self.host is not None else self.user


@dataclass(frozen=True)
class Session:
    """An open session of one of the application's accounts (a MySQL thread id, a PostgreSQL backend pid)."""

    id: int
    user: str


@dataclass(frozen=True)
class Observed:
    """What was read from the server: the input of `plan_fence` and `plan_unfence`."""

    read_only: bool                       # MySQL read_only; PostgreSQL default_transaction_read_only
    super_read_only: bool | None = None   # None: the server has no such flag (MariaDB, PostgreSQL)
    accounts: tuple[Account, ...] = ()
    sessions: tuple[Session, ...] = ()    # the app's open sessions, killed ones excluded


@dataclass(frozen=True)
class Action:
    kind: str
    account: Account | None = None
    session: Session | None = None

    def describe(self) -> str:
        if self.account is not None:
            return f"{'lock' if self.kind == LOCK_ACCOUNT else 'unlock'} account {self.account.label()}"
        if self.session is not None:
            return f"end session {self.session.id} of {self.session.user}"
        return {READ_ONLY_ON: "read_only ON", READ_ONLY_OFF: "read_only OFF",
                SUPER_READ_ONLY_ON: "super_read_only ON", SUPER_READ_ONLY_OFF: "super_read_only OFF"}[self.kind]


def plan_fence(observed: Observed) -> list[Action]:
    """What is left to do to fence a server in the state `observed`; empty when it is fenced.

    Accounts first (no new session), then sessions (none left to write or to hold a lock that read_only would
    wait for), then the flags. Under MySQL's super_read_only even the admin cannot lock an account, so a
    fenced-but-for-one-account server gets super_read_only lifted around the locks (read_only stays ON)."""
    to_lock = [Action(LOCK_ACCOUNT, account=a) for a in observed.accounts if not a.locked]
    lifted = bool(to_lock) and observed.super_read_only is True
    plan: list[Action] = [Action(SUPER_READ_ONLY_OFF)] if lifted else []
    plan += to_lock
    plan += [Action(KILL_SESSION, session=s) for s in observed.sessions]
    if not observed.read_only:
        plan.append(Action(READ_ONLY_ON))
    if observed.super_read_only is False or lifted:
        plan.append(Action(SUPER_READ_ONLY_ON))
    return plan


def plan_unfence(observed: Observed) -> list[Action]:
    """What is left to do to lift a fence; empty when the server takes writes and the accounts can log in.
    super_read_only goes first: under it nobody may unlock an account, and read_only cannot go OFF."""
    plan: list[Action] = []
    if observed.super_read_only:
        plan.append(Action(SUPER_READ_ONLY_OFF))
    if observed.read_only:
        plan.append(Action(READ_ONLY_OFF))
    plan += [Action(UNLOCK_ACCOUNT, account=a) for a in observed.accounts if a.locked]
    return plan


@dataclass
class FenceResult:
    engine: str                      # "mysql" or "postgres"
    target: str                      # the connection id, or the endpoint's secret-free description
    operation: str = "fence"         # or "unfence"
    reachable: bool = True
    reason: str | None = None        # why it was not reachable
    already_fenced: bool = False     # it was fully fenced when the call began (so a fence did nothing)
    in_recovery: bool = False        # a PostgreSQL standby: it takes no writes, fenced by being one (standby_ok)
    verified: bool = False           # read back after the actions: fenced (unfenced for an unfence)
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pending(self) -> bool:
        """A fence that could not be done now (the server unreachable): the failover records it as pending."""
        return self.operation == "fence" and not self.reachable

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"pending": self.pending}


def _endpoint(ref: str | Endpoint) -> tuple[Endpoint, str]:
    """The endpoint and its name in results and logs: the connection id, else the secret-free description (a URI
    holds the password)."""
    endpoint = ref if isinstance(ref, Endpoint) else get_endpoint(ref)
    return endpoint, ref if isinstance(ref, str) and "://" not in ref else endpoint.describe()


def probe_reachable(endpoint: str | Endpoint, timeout: float = CONNECT_SECONDS) -> tuple[bool, str]:
    """(True, "...") when a TCP connection to the database's port opens within `timeout` seconds; otherwise
    (False, why: refused, timed out, no route, unknown host). Never raises for an unreachable server: for a
    failover an unreachable old primary is a fact to record (fencing pending), not an error."""
    endpoint = get_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    host, port = endpoint.host or "127.0.0.1", endpoint.port or _DEFAULT_PORTS.get(endpoint.conn_type, 0)
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"{where} accepts connections"
    except ConnectionRefusedError:
        return False, f"{where} refused the connection (nothing listens there: the server is down)"
    except TimeoutError:
        return False, f"{where} did not answer within {timeout:g} s (down, or the network is partitioned)"
    except socket.gaierror as err:
        return False, f"host {host!r} does not resolve ({err.strerror})"
    except OSError as err:
        return False, f"{where} cannot be reached ({err.strerror or err})"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at


class _Unreachable(Exception):
    """The TCP port answered but the database did not (a half-open partition, a server still starting)."""


class StandbyError(FenceError):
    """The PostgreSQL server is a standby (in recovery): it takes no writes, so there is nothing to fence on it."""


def _names(names: Iterable[str], what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(names))
    if not names or not all(isinstance(n, str) and n for n in names):
        raise FenceError(f"no {what} to fence: give the application's database account names (the topology's "
                         f"app users), never the admin account")
    return names


# -- MariaDB / MySQL ---------------------------------------------------------------------------------------


class _MySqlServer:
    """One admin session on a MariaDB/MySQL server: reads its fence state, applies actions."""

    engine = "mysql"

    def __init__(self, endpoint: Endpoint, users: tuple[str, ...], deadline: _Deadline,
                 connect_timeout: float) -> None:
        import pymysql

        from multicloud_dr.backup import source

        self.endpoint, self.users, self.deadline, self.warnings = endpoint, users, deadline, []
        if endpoint.login in users:
            raise FenceError(f"the admin connection's login {endpoint.login!r} is one of the app users to lock: "
                             f"fence through an admin account the application does not use")
        try:
            # read_timeout: no statement may hang the fence past its deadline (lock_wait_timeout ends it first).
            self.conn = source.connect(endpoint, connect_timeout=max(1, math.ceil(connect_timeout)),
                                       read_timeout=deadline.seconds + 5)
        except source.ServerUnreachableError as err:
            raise _Unreachable(str(err)) from None
        self.pymysql = pymysql
        self.driver_errors = (pymysql.MySQLError,)
        try:
            self._prepare_session()
        except BaseException:
            self.conn.close()
            raise

    def _prepare_session(self) -> None:
        pymysql, deadline = self.pymysql, self.deadline
        with self.conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
            self.flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
            cur.execute("SET SESSION lock_wait_timeout = %s", (max(1, math.ceil(deadline.remaining())),))
            try:
                cur.execute("SET SESSION sql_log_bin = 0")
            except pymysql.MySQLError as err:
                self.warnings.append(f"account locks are written to the binlog (SET sql_log_bin = 0 refused: "
                                     f"{err.args[-1]}): a replica of this server gets them too; unlock the app's "
                                     f"accounts on it (unfence_mysql) after promoting it")

    def close(self) -> None:
        self.conn.close()

    def observe(self) -> Observed:
        in_list = ", ".join(["%s"] * len(self.users))
        with self.conn.cursor() as cur:
            cur.execute("SELECT @@global.read_only")
            read_only = bool(cur.fetchone()[0])
            super_read_only = None
            if self.flavor == "mysql":
                try:
                    cur.execute("SELECT @@global.super_read_only")
                    super_read_only = bool(cur.fetchone()[0])
                except self.pymysql.MySQLError:   # MySQL before 5.7.8
                    pass
            if self.flavor == "mariadb":
                query = (f"SELECT User, Host, COALESCE(JSON_VALUE(Priv, '$.account_locked'), 'false') "
                         f"FROM mysql.global_priv WHERE User IN ({in_list}) ORDER BY User, Host")
            else:
                query = f"SELECT User, Host, account_locked FROM mysql.user WHERE User IN ({in_list}) ORDER BY 1, 2"
            try:
                cur.execute(query, self.users)
            except self.pymysql.err.ProgrammingError as err:   # MariaDB before 10.4: no global_priv, no locks
                raise FenceError(f"{self.endpoint.describe()} cannot lock accounts ({err.args[-1]}): MariaDB "
                                 f"10.4+ or MySQL 5.7.6+ is needed; meanwhile revoke the app's grants by hand"
                                 ) from None
            accounts = tuple(Account(user, host, str(flag).lower() in ("1", "true", "y"))
                             for user, host, flag in cur.fetchall())
            missing = sorted(set(self.users) - {a.user for a in accounts})
            if missing:
                raise FenceError(f"no account {', '.join(map(repr, missing))} on {self.endpoint.describe()}: check "
                                 f"the app users given for fencing (the application's database login)")
            # A killed thread still rolling back shows as 'Killed': it can commit nothing, so it needs no more.
            cur.execute(f"SELECT ID, USER FROM information_schema.PROCESSLIST WHERE USER IN ({in_list}) "
                        f"AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed' ORDER BY ID", self.users)
            sessions = tuple(Session(int(i), user) for i, user in cur.fetchall())
        return Observed(read_only, super_read_only, accounts, sessions)

    def apply(self, action: Action) -> None:
        with self.conn.cursor() as cur:
            try:
                if action.kind in (LOCK_ACCOUNT, UNLOCK_ACCOUNT):
                    verb = "LOCK" if action.kind == LOCK_ACCOUNT else "UNLOCK"
                    cur.execute(f"ALTER USER %s@%s ACCOUNT {verb}", (action.account.user, action.account.host))
                elif action.kind == KILL_SESSION:
                    try:
                        cur.execute("KILL CONNECTION %s", (action.session.id,))
                    except self.pymysql.MySQLError as err:
                        if not err.args or err.args[0] != 1094:   # unknown thread id: it ended by itself meanwhile
                            raise
                else:
                    flag = "super_read_only" if action.kind.startswith("super") else "read_only"
                    cur.execute(f"SET GLOBAL {flag} = {'ON' if action.kind.endswith('_on') else 'OFF'}")
            except self.pymysql.MySQLError as err:
                code = err.args[0] if err.args else None
                hint = {1205: "a session holds a table lock (LOCK TABLES, FLUSH TABLES WITH READ LOCK): find it in "
                              "SHOW PROCESSLIST and end it",
                        1227: "the admin connection lacks the privilege (on RDS/Azure/Cloud SQL set read_only in "
                              "the server's parameter group)"}.get(code, "check the server's error log")
                raise FenceError(f"{action.describe()} failed on {self.endpoint.describe()} ({err.args[-1]}): {hint}; "
                                 f"then fence again (it is idempotent)") from None


# -- PostgreSQL --------------------------------------------------------------------------------------------

_PG_AUTH_WORDS = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "not permitted")


class _PostgresServer:
    """One admin session on a PostgreSQL primary: reads its fence state, applies actions."""

    engine = "postgres"

    def __init__(self, endpoint: Endpoint, roles: tuple[str, ...], deadline: _Deadline,
                 connect_timeout: float) -> None:
        import psycopg2

        self.endpoint, self.roles, self.deadline, self.warnings = endpoint, roles, deadline, []
        self.psycopg2 = psycopg2
        self.driver_errors = (psycopg2.Error,)
        self.connect_timeout = max(2, math.ceil(connect_timeout))   # libpq: whole seconds, 2 at least
        if endpoint.login in roles:
            raise FenceError(f"the admin connection's login {endpoint.login!r} is one of the app roles to lock: "
                             f"fence through an admin role the application does not use")
        # This session must write (ALTER ROLE) on a server it makes read-only by default.
        self.conn = self._connect("-c default_transaction_read_only=off "
                                  f"-c lock_timeout={max(1, math.ceil(deadline.remaining()))}s")
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery(), current_setting('server_version_num')::int, "
                        "(SELECT count(*) FROM pg_stat_replication)")
            in_recovery, self.version, self.standbys = cur.fetchone()
        if in_recovery:
            self.close()
            raise StandbyError(f"{endpoint.describe()} is a standby (in recovery): it takes no writes to fence; fence "
                             f"its primary, or promote it first")

    def _connect(self, options: str | None = None):
        from multicloud_dr.connections.postgres import PostgresConnection

        kwargs = {"connect_timeout": self.connect_timeout, "application_name": "multicloud-dr fence"}
        if options:
            kwargs["options"] = options
        try:
            conn = PostgresConnection(self.endpoint).connect(**kwargs)
        except self.psycopg2.OperationalError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "no answer"
            if any(word in first for word in _PG_AUTH_WORDS):
                raise FenceError(f"{self.endpoint.describe()} refused the admin connection ({first}): check the "
                                 f"connection's login, password and database") from None
            raise _Unreachable(f"cannot reach PostgreSQL at {self.endpoint.describe()}: {first}") from None
        conn.autocommit = True
        return conn

    def close(self) -> None:
        self.conn.close()

    def _new_sessions_read_only(self) -> bool:
        """default_transaction_read_only as a new session gets it (this session overrides it for itself)."""
        with contextlib.closing(self._connect()) as conn, conn.cursor() as cur:
            cur.execute("SHOW default_transaction_read_only")
            return cur.fetchone()[0] == "on"

    def observe(self) -> Observed:
        with self.conn.cursor() as cur:
            cur.execute("SELECT rolname, NOT rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
                        (list(self.roles),))
            accounts = tuple(Account(name, None, locked) for name, locked in cur.fetchall())
            missing = sorted(set(self.roles) - {a.user for a in accounts})
            if missing:
                raise FenceError(f"no role {', '.join(map(repr, missing))} on {self.endpoint.describe()}: check the "
                                 f"app roles given for fencing (the application's database login)")
            cur.execute("SELECT pid, usename FROM pg_stat_activity WHERE usename = ANY(%s) "
                        "AND pid <> pg_backend_pid() ORDER BY pid", (list(self.roles),))
            sessions = tuple(Session(int(pid), user) for pid, user in cur.fetchall())
        return Observed(self._new_sessions_read_only(), None, accounts, sessions)

    def apply(self, action: Action) -> None:
        from psycopg2 import sql
        try:
            with self.conn.cursor() as cur:
                if action.kind in (LOCK_ACCOUNT, UNLOCK_ACCOUNT):
                    login = "NOLOGIN" if action.kind == LOCK_ACCOUNT else "LOGIN"
                    cur.execute(sql.SQL("ALTER ROLE {} " + login).format(sql.Identifier(action.account.user)))
                    if action.kind == LOCK_ACCOUNT and self.standbys:
                        warning = (f"NOLOGIN of {action.account.user} reaches this server's {self.standbys} "
                                   f"streaming standby(s): after promoting one, unfence_postgres it")
                        if warning not in self.warnings:
                            self.warnings.append(warning)
                elif action.kind == KILL_SESSION:
                    wait_ms = max(1, int(self.deadline.remaining() * 1000))
                    if self.version >= 140000:   # waits until the backend has gone
                        cur.execute("SELECT pg_terminate_backend(%s, %s)", (action.session.id, wait_ms))
                    else:
                        cur.execute("SELECT pg_terminate_backend(%s)", (action.session.id,))
                else:
                    on = action.kind == READ_ONLY_ON
                    cur.execute("ALTER SYSTEM SET default_transaction_read_only = on" if on else
                                "ALTER SYSTEM RESET default_transaction_read_only")
                    cur.execute("SELECT pg_reload_conf()")
                    self._wait_for_reload(on)
        except self.psycopg2.Error as err:
            first = (str(err).strip().splitlines() or ["no message"])[0]
            raise FenceError(f"{action.describe()} failed on {self.endpoint.describe()} ({first}): check that the "
                             f"admin connection is a superuser, then fence again (it is idempotent)") from None

    def _wait_for_reload(self, on: bool) -> None:
        # pg_reload_conf() only signals the postmaster: new sessions get the value once it has re-read the files.
        while self._new_sessions_read_only() != on:
            if self.deadline.passed():
                raise FenceError(f"new sessions on {self.endpoint.describe()} still get default_transaction_read_only"
                                 f" = {'off' if on else 'on'} {self.deadline.seconds:g} s after the reload: check "
                                 f"postgresql.conf and the server log (a setting there may override ALTER SYSTEM)")
            time.sleep(_ROUND_PAUSE)


# -- The read-plan-apply-verify loop -------------------------------------------------------------------------


def _run(server_type: type, operation: str, ref: str | Endpoint, names: Iterable[str], what: str,
         timeout: float, connect_timeout: float, standby_ok: bool = False) -> FenceResult:
    t0 = time.monotonic()
    endpoint, target = _endpoint(ref)
    names = _names(names, what)
    result = FenceResult(server_type.engine, target, operation)
    planner: Callable[[Observed], list[Action]] = plan_fence if operation == "fence" else plan_unfence
    reachable, reason = probe_reachable(endpoint, connect_timeout)
    server = None
    if reachable:
        try:
            server = server_type(endpoint, names, _Deadline(timeout), connect_timeout)
        except _Unreachable as err:
            reachable, reason = False, str(err)
        except StandbyError:
            if not (standby_ok and operation == "fence"):
                raise
            # A standby in recovery refuses every write, the app's included: fenced by being one, nothing to do.
            result.in_recovery = result.already_fenced = result.verified = True
            result.warnings.append(f"{target} is a standby (in recovery): it takes no writes, nothing to fence")
            result.seconds = time.monotonic() - t0
            log.info("fence of %s: a standby in recovery, nothing to do", target)
            return result
    if server is None:
        result.reachable, result.reason = False, reason
        result.seconds = time.monotonic() - t0
        log.warning("%s of %s not done: %s", operation, target, reason)
        return result
    with contextlib.closing(server):
        try:
            _converge(server, result, planner, operation, target, timeout)
        except (*server.driver_errors, _Unreachable) as err:   # the server went away mid-fence
            first = (str(err).strip().splitlines() or ["no message"])[0]
            raise FenceError(f"{operation} of {target} interrupted ({first}): nothing is known to be complete; "
                             f"run it again (it is idempotent), or record it as pending if the server is gone"
                             ) from None
    result.seconds = time.monotonic() - t0
    log.info("%s of %s: %s (%.2f s)", operation, target, "; ".join(result.actions) or "nothing to do",
             result.seconds)
    return result


def _converge(server: Any, result: FenceResult, planner: Callable[[Observed], list[Action]], operation: str,
              target: str, timeout: float) -> None:
    """Read, plan, apply, until what is read leaves nothing to do (verified) or the deadline passes."""
    observed = server.observe()
    result.already_fenced = not plan_fence(observed)
    plan = planner(observed)
    while plan:
        for action in plan:
            server.apply(action)
            result.actions.append(action.describe())
        observed = server.observe()
        plan = planner(observed)
        if plan and server.deadline.passed():
            raise FenceError(f"{operation} of {target} not verified within {timeout:g} s: still to do "
                             f"{'; '.join(a.describe() for a in plan)} (something keeps undoing it, or a session "
                             f"reconnects: check SHOW PROCESSLIST / pg_stat_activity); then run it again")
        if plan:
            time.sleep(_ROUND_PAUSE)   # e.g. a session that connected just before its account was locked
    result.verified = True
    result.warnings = server.warnings


def fence_mysql(target: str | Endpoint, app_users: Iterable[str], *, timeout: float = FENCE_SECONDS,
                connect_timeout: float = CONNECT_SECONDS) -> FenceResult:
    """Fence a MariaDB/MySQL primary through its admin connection (`target`: a connection id, a URI or an
    Endpoint): lock every `'user'@'host'` of `app_users`, end their sessions, read_only (and super_read_only)
    ON, verified by reading back. Unreachable within `connect_timeout`: a result with reachable False (pending).
    Raises FenceError when the server was reached but the fence could not be completed within `timeout`."""
    return _run(_MySqlServer, "fence", target, app_users, "app users", timeout, connect_timeout)


def unfence_mysql(target: str | Endpoint, app_users: Iterable[str], *, timeout: float = FENCE_SECONDS,
                  connect_timeout: float = CONNECT_SECONDS) -> FenceResult:
    """Lift a fence_mysql: read_only OFF, the app's accounts unlocked (for failback, once this server holds the
    data again, and for tests). Idempotent."""
    return _run(_MySqlServer, "unfence", target, app_users, "app users", timeout, connect_timeout)


def fence_postgres(target: str | Endpoint, app_roles: Iterable[str], *, timeout: float = FENCE_SECONDS,
                   connect_timeout: float = CONNECT_SECONDS, standby_ok: bool = False) -> FenceResult:
    """Fence a PostgreSQL primary through a superuser connection: `app_roles` NOLOGIN, their backends terminated,
    default_transaction_read_only on for new sessions (ALTER SYSTEM + reload), verified by reading back. A standby
    (in recovery) raises StandbyError, unless `standby_ok`: then it counts as fenced (`in_recovery`), untouched:
    a failback finds the old primary rebuilt as a standby of DR, and nothing may be written to it."""
    return _run(_PostgresServer, "fence", target, app_roles, "app roles", timeout, connect_timeout, standby_ok)


def unfence_postgres(target: str | Endpoint, app_roles: Iterable[str], *, timeout: float = FENCE_SECONDS,
                     connect_timeout: float = CONNECT_SECONDS) -> FenceResult:
    """Lift a fence_postgres: ALTER SYSTEM RESET default_transaction_read_only + reload, `app_roles` LOGIN."""
    return _run(_PostgresServer, "unfence", target, app_roles, "app roles", timeout, connect_timeout)
