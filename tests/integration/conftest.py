"""Fixtures for backup tests on the lab's real MariaDB and Azurite, and a TCP proxy for faults."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import pymysql
import pytest

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.connections import Endpoint, get_endpoint
from multicloud_dr.connections.wasb import blob_service_client

CONTAINER = "dr-backups"


@dataclass
class ProxyPlan:
    """What the proxy does to Azure requests (matched on the request line, e.g. b"comp=blocklist")."""

    drop_reply_once: bytes | None = None     # forward the request, swallow its reply, close (F6)
    reset_first: int = 0                     # reset this many matching requests mid-upload (F7)
    reset_match: bytes = b"comp=block&"
    forbid_after: int | None = None          # answer 403 to matching requests after this many (F3)
    bytes_per_second: float | None = None    # throttle the client->server direction
    seen: dict = field(default_factory=lambda: {"matching": 0, "dropped": 0, "resets": 0, "forbidden": 0})


def _hang_up(*socks: socket.socket) -> None:
    # shutdown() first: close() alone does not end a connection another thread is blocked reading.
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


class TcpProxy:
    """A loopback proxy in front of Azurite that can drop replies, reset connections and throttle.
    HTTP/1.1 without pipelining: the bytes that follow a forwarded request are its reply. In front of any other
    server (a database) it forwards bytes as they are, and `cut()` / `heal()` partition the link: cut, every
    open connection is hung up and new ones are closed as soon as they are accepted."""

    def __init__(self, upstream_port: int, plan: ProxyPlan) -> None:
        self.upstream_port = upstream_port
        self.plan = plan
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.closed = False
        self.is_cut = False
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.is_cut = True
        with self.lock:
            _hang_up(*self.open)
            self.open.clear()

    def heal(self) -> None:
        self.is_cut = False

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.is_cut:
                _hang_up(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                self.open += [client, upstream]
            state = {"drop_reply": False}
            threading.Thread(target=self._client_to_server, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(upstream, client, state), daemon=True).start()

    def _client_to_server(self, client, upstream, state) -> None:
        plan = self.plan
        try:
            while data := client.recv(65536):
                if data[:4] in (b"PUT ", b"GET ", b"POST", b"HEAD", b"DELE"):
                    line = data.split(b"\r\n", 1)[0]
                    with self.lock:
                        if plan.drop_reply_once and plan.drop_reply_once in line and not plan.seen["dropped"]:
                            plan.seen["dropped"] += 1
                            state["drop_reply"] = True
                        if plan.reset_match in line:
                            plan.seen["matching"] += 1
                            n = plan.seen["matching"]
                            if plan.forbid_after is not None and n > plan.forbid_after:
                                plan.seen["forbidden"] += 1
                                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                               b"Connection: close\r\n\r\n")
                                raise ConnectionAbortedError
                            if plan.seen["resets"] < plan.reset_first:
                                plan.seen["resets"] += 1
                                upstream.sendall(data[: len(data) // 2])
                                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, bytes([1, 0, 0, 0, 0, 0, 0, 0]))
                                raise ConnectionResetError
                if plan.bytes_per_second:
                    time.sleep(len(data) / plan.bytes_per_second)
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _hang_up(client, upstream)

    def _server_to_client(self, upstream, client, state) -> None:
        try:
            while data := upstream.recv(65536):
                if state["drop_reply"]:
                    # The server has done the work (its reply is here); the client never hears of it.
                    state["drop_reply"] = False
                    raise ConnectionAbortedError
                client.sendall(data)
        except OSError:
            pass
        finally:
            _hang_up(client, upstream)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@pytest.fixture
def azure_proxy(lab):
    """Factory: a proxy with a plan, and an Endpoint for a wasb connection going through it."""
    proxies = []

    def make(**plan) -> tuple[TcpProxy, Endpoint]:
        proxy = TcpProxy(lab.azurite.port, ProxyPlan(**plan))
        proxies.append(proxy)
        conn_str = lab.azurite.connection_string().replace(f":{lab.azurite.port}/", f":{proxy.port}/")
        return proxy, Endpoint(conn_type="wasb", extra={"connection_string": conn_str})

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture(scope="session")
def blob_service(lab):
    return blob_service_client(get_endpoint("azure_blob_dr"))


@pytest.fixture
def backup_root(blob_service, delete_blob_prefix):
    """A fresh wasb:// prefix for one test, emptied afterwards."""
    root = StorageUrl("wasb", CONTAINER, f"test-{uuid.uuid4().hex[:10]}")
    yield root
    delete_blob_prefix(blob_service, root)


@pytest.fixture
def store(blob_service) -> BackupStore:
    return BackupStore(blob_service, CONTAINER)


@pytest.fixture(scope="session")
def primary(lab) -> Endpoint:
    return get_endpoint("mysql_primary")


def mysql_connect(endpoint: Endpoint, database: str | None = None) -> pymysql.connections.Connection:
    """A test's own connection, with the endpoint's TLS (the lab's: verified with its CA), as the library's."""
    return source.connect(endpoint, database)


def make_sample_database(endpoint: Endpoint, name: str, megabytes: float) -> dict[str, int]:
    from multicloud_dr.lab import sample_data

    with contextlib.closing(mysql_connect(endpoint)) as conn:
        return sample_data.create_database(conn, name, megabytes)


def drop_database(endpoint: Endpoint, name: str) -> None:
    with contextlib.closing(mysql_connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture(scope="session")
def dr(lab) -> Endpoint:
    """The lab's DR server (TLS required), where restores go."""
    return get_endpoint("mysql_dr")


@pytest.fixture
def restore_target(dr):
    """restore_target(prefix, yesterday=False) -> a new database name on the DR server for a restore to
    target; yesterday=True creates it holding the day before's data (table `yesterday`, one row). At the end
    the target and the restore's scratch databases are dropped."""
    from multicloud_dr.restore.mysql_restore import scratch_name

    names = []

    def make(prefix: str, yesterday: bool = False) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:6]}"
        names.append(name)
        if yesterday:
            with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}`")
                cur.execute(f"CREATE TABLE `{name}`.yesterday (id INT PRIMARY KEY)")
                cur.execute(f"INSERT INTO `{name}`.yesterday VALUES (1)")
        return name

    yield make
    with contextlib.closing(mysql_connect(dr)) as conn, conn.cursor() as cur:
        for name in names:
            for each in (name, scratch_name(name, "restore"), scratch_name(name, "old")):
                cur.execute(f"DROP DATABASE IF EXISTS `{each}`")


@pytest.fixture(scope="session")
def small_db(primary):
    """A sample database of ~2 MB (routines, triggers, views, events, JSON, BLOBs, no-PK table, ...)."""
    name = f"t_small_{uuid.uuid4().hex[:6]}"
    counts = make_sample_database(primary, name, 2)
    yield name, counts
    drop_database(primary, name)


@pytest.fixture(scope="session")
def big_db(primary):
    """~25 MB of rows: long enough a dump to kill or disturb while it runs (with a throttled upload)."""
    name = f"t_big_{uuid.uuid4().hex[:6]}"
    counts = make_sample_database(primary, name, 25)
    yield name, counts
    drop_database(primary, name)


@pytest.fixture
def scratch_database(primary):
    """Factory: a sample database of N MB on the primary, dropped after the test."""
    made = []

    def make(megabytes: float) -> str:
        name = f"t_scratch_{uuid.uuid4().hex[:6]}"
        made.append(name)
        make_sample_database(primary, name, megabytes)
        return name

    yield make
    for name in made:
        drop_database(primary, name)


def _snapshot(endpoint, database) -> dict:
    """Everything a user would call 'the database': rows of every table and every schema object."""
    state: dict = {}
    with contextlib.closing(mysql_connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s AND "
                    "table_type='BASE TABLE' ORDER BY 1", (database,))
        for (table,) in cur.fetchall():
            cur.execute("SELECT column_name, column_type FROM information_schema.columns WHERE table_schema=%s AND "
                        "table_name=%s ORDER BY ordinal_position", (database, table))
            columns = cur.fetchall()
            order = ", ".join(f"`{c}`" for c, _ in columns)
            cur.execute(f"SELECT * FROM `{table}` ORDER BY {order}")
            state[f"table {table}"] = {"columns": columns, "rows": cur.fetchall()}
        queries = {
            # Indexes and foreign keys: a restore that builds them after the rows must end with the same ones.
            "indexes": "SELECT table_name, index_name, seq_in_index, column_name, non_unique, index_type, sub_part "
                       "FROM information_schema.statistics WHERE table_schema=%s ORDER BY 1, 2, 3",
            "foreign keys": "SELECT r.table_name, r.constraint_name, r.referenced_table_name, r.update_rule, "
                            "r.delete_rule, k.column_name, k.referenced_column_name, k.ordinal_position "
                            "FROM information_schema.referential_constraints r JOIN "
                            "information_schema.key_column_usage k ON k.constraint_schema = r.constraint_schema "
                            "AND k.constraint_name = r.constraint_name AND k.table_name = r.table_name "
                            "WHERE r.constraint_schema=%s ORDER BY 1, 2, 8",
            "routines": "SELECT routine_name, routine_type, routine_definition, dtd_identifier, security_type "
                        "FROM information_schema.routines WHERE routine_schema=%s ORDER BY 1",
            "triggers": "SELECT trigger_name, event_manipulation, event_object_table, action_timing, "
                        "action_statement FROM information_schema.triggers WHERE trigger_schema=%s ORDER BY 1",
            "views": "SELECT table_name, view_definition, security_type FROM information_schema.views "
                     "WHERE table_schema=%s ORDER BY 1",
            "events": "SELECT event_name, event_definition, interval_value, interval_field, status "
                      "FROM information_schema.events WHERE event_schema=%s ORDER BY 1",
        }
        for name, query in queries.items():
            cur.execute(query, (database,))
            # View definitions name their schema; the restored copy lives under another name.
            state[name] = [tuple(str(v).replace(f"`{database}`.", "`DB`.") if isinstance(v, str) else v for v in row)
                           for row in cur.fetchall()]
    return state


@pytest.fixture(scope="session")
def snapshot():
    """snapshot(endpoint, database): every table's rows and every view, trigger, routine and event."""
    return _snapshot


def seed_backup(store: BackupStore, root: StorageUrl, database: str, days_old: float, status: str,
                now: datetime):
    """One backup as run_backup leaves it (data blob, .lease blob, manifest written last), stored `days_old`
    days before `now`, with verification `status`. Returns its BackupLayout."""
    import hashlib
    from datetime import timedelta

    from multicloud_dr.backup.layout import BackupLayout, stamp
    from multicloud_dr.backup.manifest import Manifest, StoredObject, TableEntry, Verification

    stored_at = (now - timedelta(days=days_old)).replace(microsecond=0)
    logical = stored_at - timedelta(minutes=10)
    layout = BackupLayout(root, database, stamp(logical))
    data = f"-- dump of {database} at {layout.stamp}\n".encode() * 64
    store.blob(layout.data).upload_blob(data)
    store.blob(layout.lease).upload_blob(b"")
    manifest = Manifest(
        backup_id=f"{database}/{layout.stamp}", database=database, logical_date=logical,
        source={"server": "127.0.0.1:13306", "version": "10.11", "flavor": "mariadb"},
        started_at=logical, finished_at=logical + timedelta(minutes=5), stored_at=stored_at,
        tools={"dump": "test"}, codec="zstd",
        objects=[StoredObject(name=str(layout.data), bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
                              raw_bytes=len(data))],
        tables={"owners": TableEntry(rows=10, crc32="0badf00d")},
        verification=Verification(status=status, at=stored_at + timedelta(hours=1) if status != "unverified"
                                  else None),
    )
    assert store.create_manifest(layout.manifest, manifest)
    return layout


# -- the lab's replication put back after a test promoted it ----------------------------------------------------------


@pytest.fixture
def replica_put_back(lab):
    """After the test: the MariaDB replica read-only and replicating from the primary again, caught up."""
    yield
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = ON")
    lab.mysql_replica.bootstrap()          # replicate from the primary again, from its GTID position
    lab.mysql_replica.wait_caught_up()


@pytest.fixture
def standby_rebuilt(lab):
    """After the test: the PostgreSQL standby rebuilt from a fresh base backup of the primary."""
    yield
    lab.pg_standby.stop()
    shutil.rmtree(lab.pg_standby.data)
    lab.pg_standby.start()                 # pg_basebackup -R from the primary again


def app_can_write(lab, conn_id: str = "mysql_primary") -> bool:
    """Whether the app's own account can write to the sample database through `conn_id`'s server."""
    from multicloud_dr.lab.settings import APP_USER, SAMPLE_DATABASE

    app = dataclasses.replace(get_endpoint(conn_id), login=APP_USER, password=lab.settings.secrets().mysql_app)
    try:
        with contextlib.closing(source.connect(app, SAMPLE_DATABASE, connect_timeout=3)) as conn, \
                conn.cursor() as cur:
            cur.execute("UPDATE owners SET city = city WHERE id = 1")
        return True
    except (pymysql.err.MySQLError, source.SourceError):
        return False


def postgres_takes_writes(conn_id: str) -> bool:
    """Out of recovery and writable: what a promoted standby must be (a temporary table, so nothing is left)."""
    from multicloud_dr.connections.postgres import PostgresConnection

    conn = PostgresConnection(get_endpoint(conn_id)).connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            if cur.fetchone() != (False,):
                return False
            cur.execute("CREATE TEMPORARY TABLE promoted_probe (x int)")
            return True
    finally:
        conn.close()
