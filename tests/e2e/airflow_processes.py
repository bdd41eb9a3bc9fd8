"""The lab's Airflow as real processes, for fault tests that kill or restart parts of it (FAULTS.md F20, F21).

- `LabAirflow` runs either `airflow standalone` or the four components it runs (api-server, scheduler,
  dag-processor, triggerer) as separate processes, so that one of them can be stopped and started again.
  Tasks run the way a LocalExecutor runs them: a worker process forks a supervisor's task runner, in a
  process group of its own, and mysqldump is a child of the task runner. `stop()` ends every process of this
  Airflow home (`processes_with_home`), task runners and their children included (they are not in the
  components' process groups), so a failed test leaves nothing behind.
- `SlowLink`: a loopback TCP forwarder that slows the server-to-client direction, put between mysqldump and
  the lab's MariaDB so that a dump of a few MB lasts long enough to be killed or disturbed while it runs.
- `DumpWatch`: samples /proc for the mysqldump processes of one database.
- `fault_topology()` / `retry_delay_policy()`: the topology file and cluster policy the tests' Airflow reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import yaml

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.lab import sample_data
from multicloud_dr.lab.airflow_run import free_port, sigint_not_ignored
from multicloud_dr.sql import quote_identifier

from .conftest import QUIET_DAG_PROCESSOR, ROOT, AirflowApi, _wait_healthy

COMPONENTS = ("api-server", "dag-processor", "triggerer", "scheduler")
# A test's Airflow has nothing left to finish when it is stopped; after a task was SIGKILLed, standalone's
# scheduler was seen not to exit on Ctrl-C within 30 s.
STOP_GRACE_SECONDS = 15
DUMP_TOOLS = {"mysqldump", "mariadb-dump"}


# -- /proc ------------------------------------------------------------------------------------------------------
def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Running (a zombie is dead: only its parent has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def describe(pid: int) -> str:
    """`pid state argv` of a process, for messages."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return f"{pid} gone"
    return f"{pid} {state} {' '.join(_cmdline(pid))[:200]}"


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def processes_with_home(home: Path) -> list[int]:
    """Live processes of the Airflow in `home`: components, workers, task runners, dumps. Known by their
    environment (AIRFLOW_HOME=`home`) or, where setproctitle has written a title over the memory the
    environment was read from (task runners, "airflow worker -- <try id>"), by their working directory."""
    marker = f"AIRFLOW_HOME={home}".encode()
    root = home.resolve()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                ours = marker in handle.read().split(b"\0")
            if not ours:
                cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
                ours = cwd == root or root in cwd.parents
        except OSError:
            continue
        if ours and alive(int(entry)):
            found.append(int(entry))
    return found


_TASK_RUNNER_TITLE = re.compile(r"airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def task_runners(home: Path) -> list[int]:
    """The task runners of the Airflow in `home`: forked by a supervisor, titled "airflow worker -- <try id>"
    (a LocalExecutor worker is "airflow worker -- LocalExecutor: ...")."""
    return [pid for pid in processes_with_home(home) if _TASK_RUNNER_TITLE.match(" ".join(_cmdline(pid)))]


def dump_processes(database: str) -> list[int]:
    """Live mysqldump (mariadb-dump) processes dumping `database` (its name follows the "--" that ends options)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = _cmdline(int(entry))
        if argv and os.path.basename(argv[0]) in DUMP_TOOLS and argv[-2:] == ["--", database] and alive(int(entry)):
            found.append(int(entry))
    return found


class DumpWatch:
    """Samples the dump processes of one database every `interval` s in a thread, while in a `with` block."""

    def __init__(self, database: str, interval: float = 0.1) -> None:
        self.database = database
        self.interval = interval
        self.samples: list[tuple[float, tuple[int, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dump-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), tuple(dump_processes(self.database))))
            self._stop.wait(self.interval)

    def __enter__(self) -> DumpWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def most_at_once(self) -> int:
        return max((len(pids) for _, pids in self.samples), default=0)

    @property
    def all_pids(self) -> list[int]:
        return sorted({pid for _, pids in self.samples for pid in pids})


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy; fail the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# -- a slow link to MariaDB ---------------------------------------------------------------------------------------
class SlowLink:
    """127.0.0.1:<port> -> 127.0.0.1:<upstream_port>, the reply direction limited to `bytes_per_second` per
    connection. Bytes pass unchanged (TLS included); only their pace changes. `stall()` holds every reply back
    (a server busy on a long scan or waiting for a lock) until `resume()`."""

    def __init__(self, upstream_port: int, bytes_per_second: float) -> None:
        self.upstream_port = upstream_port
        self.bytes_per_second = bytes_per_second
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self._open: list[socket.socket] = []
        self._flowing = threading.Event()
        self._flowing.set()
        threading.Thread(target=self._accept, name="slow-link", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                continue
            self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def _pump(self, source: socket.socket, sink: socket.socket, reply: bool) -> None:
        try:
            while data := source.recv(16384):
                if reply:
                    self._flowing.wait()
                sink.sendall(data)
                if reply:
                    time.sleep(len(data) / self.bytes_per_second)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def connection_uri(self, uri: str) -> str:
        """An Airflow connection URI like `uri` (a mysql:// URI of the lab) that goes through this link."""
        parts = urllib.parse.urlsplit(uri)
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{self.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()


# -- what the tests' Airflow reads ---------------------------------------------------------------------------------
def fault_topology(path: Path, database: str, source_conn_id: str, location: str,
                   lease_seconds: int | None = None) -> Path:
    """The project's topology with one MySQL database (no replica, no copies) backed up under `location`
    (`lease_seconds`: the backup's lease, else the shipped one)."""
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["databases"] = [{"name": database, "engine": "mysql", "primary_conn_id": source_conn_id}]
    data["backup"] = {**data["backup"], "location": location, "copies": []}
    if lease_seconds is not None:
        data["backup"]["lease_seconds"] = lease_seconds
    data["replication"] = {**data["replication"], "dms": []}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def retry_delay_policy(folder: Path, dag_id: str, seconds: float) -> Path:
    """An `airflow_local_settings.py` (a cluster policy, on PYTHONPATH) that sets the retry delay of `dag_id`'s
    tasks to `seconds`, constant: the DAG file stays as shipped, only the wait between tries is shorter."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "airflow_local_settings.py").write_text(
        '"""Cluster policy of a fault test: a shorter, constant retry delay."""\n'
        "from datetime import timedelta\n\n\n"
        "def task_policy(task):\n"
        f"    if task.dag_id == {dag_id!r}:\n"
        f"        task.retry_delay = timedelta(seconds={seconds!r})\n"
        "        task.retry_exponential_backoff = 0\n")
    return folder


# -- the Airflow processes -------------------------------------------------------------------------------------------
class LabAirflow:
    """Airflow on the lab's servers in its own home: `airflow standalone` (one process), or its four components
    started one by one (`separate=True`) so that a test can stop and start one of them."""

    def __init__(self, home: Path, extra_env: dict[str, str], separate: bool = False) -> None:
        self.home = home
        self.separate = separate
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__PARALLELISM": "4",     # LocalExecutor forks this many workers: 2 cores here
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            **QUIET_DAG_PROCESSOR,
            **extra_env,
        }
        self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env['PATH']}"  # standalone starts `airflow ...`
        self.procs: dict[str, subprocess.Popen] = {}
        self.api: AirflowApi | None = None

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start_component(self, name: str) -> subprocess.Popen:
        command = ["standalone"] if name == "standalone" else [name]
        with open(self.log_path(name), "ab") as out, sigint_not_ignored():
            proc = subprocess.Popen([sys.executable, "-m", "airflow", *command], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home)
        self.procs[name] = proc
        return proc

    def start(self, timeout: float = 240.0) -> AirflowApi:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.separate:
            migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=self.env,
                                     capture_output=True, text=True, check=False, cwd=self.home)
            assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stderr[-3000:]}"
            for name in COMPONENTS:
                self.start_component(name)
            first = "api-server"
        else:
            self.start_component("standalone")
            first = "standalone"
        _wait_healthy(self.url, self.procs[first], self.log_path(first), timeout=timeout)
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        request = urllib.request.Request(  # noqa: S310 (loopback URL built here)
            f"{self.url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": "admin", "password": password}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            self.api = AirflowApi(self.url, json.loads(response.read())["access_token"])
        return self.api

    def stop_component(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Signal one component's main process (only it: its workers and tasks are left to their fate) and
        wait for it to exit; SIGKILL it after `timeout`."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def component_groups(self) -> set[int]:
        return {proc.pid for proc in self.procs.values()}   # each was started in a session of its own

    def stop(self) -> list[int]:
        """Stop everything of this home; returns the pids that were still there after the components' own
        shutdown and had to be killed."""
        started = time.monotonic()
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                if proc.args[-1] == "standalone":
                    # standalone stops its components on Ctrl-C (SIGINT) only, and to it alone: a second signal
                    # to a component deadlocks the triggerer (multicloud_dr.lab.airflow_run.stop_standalone_group)
                    os.kill(proc.pid, signal.SIGINT)
                else:
                    os.killpg(proc.pid, signal.SIGTERM)   # a component stops on SIGTERM
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{proc.args[-1]} did not stop in {STOP_GRACE_SECONDS} s, killing what is left: "
                      f"{[describe(p) for p in processes_with_home(self.home)]}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        left = processes_with_home(self.home)
        print(f"Airflow in {self.home} stopped in {time.monotonic() - started:.1f} s; left over: "
              f"{[describe(p) for p in left]}")
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not processes_with_home(self.home), 10, "the last processes to exit")
        self.procs.clear()
        return left

    def log_tail(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.home.glob("*.log"))


# -- the REST API, a little more than AirflowApi has ------------------------------------------------------------------
def wait_until_parsed(api: AirflowApi, dag_id: str, task_id: str, timeout: float = 120.0) -> None:
    """Until the DAG's latest parse has `task_id` (a previous topology's version may still be served)."""
    def parsed() -> bool:
        try:
            tasks = api.call("GET", f"/dags/{dag_id}/tasks")["tasks"]
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return False
            raise
        return any(t["task_id"] == task_id for t in tasks)

    wait_for(parsed, timeout, f"{dag_id} to be parsed with task {task_id}", interval=1)


def start_run(api: AirflowApi, dag_id: str, scheduled_wait: float = 30.0) -> str:
    """A new run of `dag_id`: the one the scheduler makes when the DAG is unpaused (a daily DAG with
    catchup=False runs its latest missed tick), else a manual one. Exactly one new run either way, so the run
    a test watches never queues behind another (max_active_runs=1)."""
    runs = lambda: {r["dag_run_id"] for r in api.call("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]}  # noqa: E731
    known = runs()
    if api.call("GET", f"/dags/{dag_id}")["is_paused"]:
        api.unpause(dag_id)
        with contextlib.suppress(AssertionError):
            (made,) = wait_for(lambda: runs() - known, scheduled_wait, f"the scheduler to start a run of {dag_id}")
            return made
    return api.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}})["dag_run_id"]


def backups_of_run(store: BackupStore, root: StorageUrl, database: str, api: AirflowApi, dag_id: str, run_id: str,
                   before: set[str]) -> list:
    """The manifests under `root` that are new since `before` and name this run's date (its logical date, or
    the run_after of a manual run without one, as the backup operator does). Another run the scheduler made
    meanwhile (the daily tick passing during the test) makes backups of its own, which are not this run's."""
    from datetime import datetime

    run = api.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")
    date = datetime.fromisoformat((run.get("logical_date") or run["run_after"]).replace("Z", "+00:00"))
    return [r for r in store.list_manifests(root, database) if str(r.url) not in before
            and r.manifest.logical_date.replace(microsecond=0) == date.replace(microsecond=0)]


def run_state(api: AirflowApi, dag_id: str, run_id: str) -> str:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")["state"]


def task_instance(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> dict:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}")


def task_tries(api: AirflowApi, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/tries"
    return sorted(api.call("GET", path)["task_instances"], key=lambda t: t["try_number"])


def task_log(api: AirflowApi, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    path = (f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/logs/{try_number}"
            "?full_content=true")
    content = api.call("GET", path)["content"]
    return "\n".join(e.get("event", "") if isinstance(e, dict) else str(e) for e in content)


def task_states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    tasks = api.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances")["task_instances"]
    return {t["task_id"]: t["state"] for t in tasks}


# -- What the backup fault tests (F20, F21) share: a scratch database, a storage prefix, the DAG under Airflow --

BACKUP_DAG_ID = "mysql_backup"
SLOW_CONN = "mysql_primary_slow"


@contextlib.contextmanager
def scratch_database(tag: str, megabytes: float):
    """A sample database of about `megabytes` on the lab's primary, dropped at the end: (name, row counts)."""
    name = f"t_{tag}_{uuid.uuid4().hex[:6]}"
    primary = get_endpoint("mysql_primary")
    with contextlib.closing(source.connect(primary)) as conn:
        counts = sample_data.create_database(conn, name, megabytes)
    try:
        yield name, counts
    finally:
        with contextlib.closing(source.connect(primary)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)}")


@contextlib.contextmanager
def backup_prefix(tag: str, delete_blob_prefix, container: str = "dr-backups"):
    """A storage prefix of the test's own, emptied at the end: (root, store)."""
    root = StorageUrl("wasb", container, f"test-{tag}-{uuid.uuid4().hex[:8]}")
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    try:
        yield root, BackupStore(service, container)
    finally:
        delete_blob_prefix(service, root)


@contextlib.contextmanager
def backup_dag_under_airflow(home: Path, database: str, root: StorageUrl, link_bytes_per_second: int,
                             retry_delay_seconds: float, extra_env: dict[str, str] | None = None,
                             separate: bool = False, lease_seconds: int | None = None):
    """The shipped mysql_backup DAG under real Airflow processes in a fresh home, pointed at `database`
    through a SlowLink, with the dump's retry delay set to `retry_delay_seconds`: (airflow, api, link)."""
    link = SlowLink(get_endpoint("mysql_primary").port, link_bytes_per_second)
    env = {
        "MULTICLOUD_DR_TOPOLOGY": str(fault_topology(home / "topology.yaml", database, SLOW_CONN, str(root),
                                                     lease_seconds)),
        f"AIRFLOW_CONN_{SLOW_CONN.upper()}": link.connection_uri(os.environ["AIRFLOW_CONN_MYSQL_PRIMARY"]),
        "PYTHONPATH": os.pathsep.join(filter(None, [
            str(retry_delay_policy(home / "policy", BACKUP_DAG_ID, retry_delay_seconds)),
            os.environ.get("PYTHONPATH")])),
        **(extra_env or {}),
    }
    airflow = LabAirflow(home / "home", env, separate=separate)
    try:
        api = airflow.start()
        wait_until_parsed(api, BACKUP_DAG_ID, f"{database}.dump_and_upload")
        yield airflow, api, link
    except BaseException:
        print(airflow.log_tail())
        raise
    finally:
        airflow.stop()
        link.close()


def assert_one_verified_backup(store: BackupStore, root: StorageUrl, database: str, api: AirflowApi, dag_id: str,
                               run_id: str, before: set[str], counts: dict[str, int]):
    """Exactly one committed backup of the run under `root` (none of `before`): verified, its rows `counts`, its data
    blob whole, and nothing else under its folder but the lease blob. Returns its record."""
    from multicloud_dr.backup.verify import verify_backup

    new = backups_of_run(store, root, database, api, dag_id, run_id, before)
    assert len(new) == 1, [str(r.url) for r in new]
    record = new[0]
    assert record.manifest.verification.status == "verified"
    assert verify_backup(store, record.url).status == "verified"
    assert {name: entry.rows for name, entry in record.manifest.tables.items()} == counts
    (data,) = record.manifest.objects
    base = record.url.path.rsplit("/", 1)[0]
    blobs = {b.name: b.size for b in store.container.list_blobs(name_starts_with=base + "/")}
    assert blobs[StorageUrl.parse(data.name).path] == data.bytes
    assert set(blobs) == {StorageUrl.parse(data.name).path, record.url.path, f"{base}/.lease"}, blobs
    return record
