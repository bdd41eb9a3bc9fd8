"""Run one of the project's DAGs to completion in this process, with Airflow's own `dag.test()`,
against the lab's Airflow home (SQLite metadata DB, migrated on first use). Used by `drctl demo`.

Airflow reads its settings when first imported, so `use_lab_environment()` must run before any
`airflow` import in the process.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from multicloud_dr.exceptions import LabError
from multicloud_dr.lab.settings import LabSettings


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        raise LabError(f"{path} does not exist: run `drctl lab up` (or `make lab-up`) first")
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, rest = line[len("export "):].partition("=")
            values[key] = shlex.split(rest)[0] if rest else ""
    return values


def use_lab_environment(settings: LabSettings | None = None) -> dict[str, str]:
    settings = settings or LabSettings.from_env()
    values = read_env_file(settings.env_file)
    os.environ.update(values)
    return values


def migrate_metadata_db() -> None:
    """`airflow db migrate` (idempotent; seconds when already current), in a child so this process's
    Airflow import stays clean."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise LabError(f"airflow db migrate failed (AIRFLOW_HOME={home}):\n{result.stderr[-2000:]}")


@contextlib.contextmanager
def output_to(log_path: Path):
    """Send everything written to fds 1 and 2 (Airflow's task logs included) to a file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(dag_id: str, dags_folder: Path, conf: dict[str, Any] | None = None, **test_kwargs: Any):
    """Parse `dags/<dag_id>.py` and run it with `dag.test()`; returns the finished DagRun."""
    from airflow.dag_processing.dagbag import DagBag

    # DagBag(include_examples=...) raises TypeError on 3.3.x (apache/airflow#70283).
    bag = DagBag(dag_folder=str(dags_folder / f"{dag_id}.py"))
    if bag.import_errors:
        raise LabError(f"{dag_id} does not import: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise LabError(f"no DAG {dag_id!r} in {dags_folder}")
    return without_deadlines(dag).test(run_conf=conf, **test_kwargs)


def without_deadlines(dag):
    """`dag` with its DeadlineAlerts dropped, for `dag.test()`: on Airflow 3.3.2 a successful dag.test() run of
    a DAG with a deadline fails at its end (DagRun.update_state looks each alert up by the UUID the DAG
    processor gives it when it stores the DAG, and dag.test() hands it the alert itself: "'dict' object has
    no attribute 'hex'"). Nothing is lost: deadlines are checked by the scheduler's loop, which dag.test() does
    not run; a real scheduler keeps them (tests/e2e/test_alerts.py)."""
    dag.deadline = None
    return dag


def task_results(dag_run) -> dict[str, Any]:
    """task_id -> (state, return value) for every task instance of a finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        values = {
            x.task_id: XComModel.deserialize_value(x)
            for x in session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id,
                                                        key="return_value"))
        }
        return {ti.task_id: (str(ti.state), values.get(ti.task_id)) for ti in tis}


# -- `drctl lab airflow` (what `make airflow` runs) --------------------------------------------------
# `airflow standalone` stops its scheduler, dag-processor, triggerer and api-server only on Ctrl-C
# (KeyboardInterrupt); a SIGTERM ends it alone and leaves them running. So it runs here in a process
# group of its own, a SIGTERM or SIGINT becomes one SIGINT to that group, and whatever is left of the
# group after a grace period (a task process, a stuck component) is killed. `drctl lab down` does the
# same through the pid file.
STANDALONE_GRACE_SECONDS = 30.0


@contextlib.contextmanager
def sigint_not_ignored():
    """For starting `airflow standalone`: it stops only on Ctrl-C, as Python's KeyboardInterrupt, and a Python
    started with SIGINT ignored (inherited from a shell's background job, `cmd &` or nohup, as on a CI runner)
    never raises one, so every stop waited out its whole grace period. A child inherits an ignored SIGINT but
    not a handler (reset to the default on exec): while the child starts, this process has a handler."""
    import signal
    import threading

    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if not ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def standalone_pid_file(settings: LabSettings) -> Path:
    return settings.airflow_home / "standalone.pid"


def _group_members(pgid: int, home: Path) -> list[int]:
    """Processes of group `pgid` that run inside `home` (a reused pid elsewhere is not ours)."""
    from multicloud_dr.lab.process import pid_is_ours

    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid and pid_is_ours(int(entry), home):
                    members.append(int(entry))
    return members


def stop_standalone_group(pgid: int, home: Path, grace: float = STANDALONE_GRACE_SECONDS) -> bool:
    """SIGINT the group (standalone's own shutdown); once its components are gone (or after `grace`) SIGTERM what
    is left, SIGKILL 5 s later. True if anything was running."""
    import signal

    from multicloud_dr.lab.process import wait_until

    members = _group_members(pgid, home)
    if not members:
        return False
    # The SIGINT goes to standalone alone, which then SIGTERMs each component once. A SIGINT to the whole group
    # gave each component a second signal milliseconds after the first, and the triggerer, interrupted inside its
    # own signal handler's log call, deadlocked on the logger's lock (py-spy: TriggererJobRunner._exit_gracefully
    # twice on its stack, in structlog's WriteLogger.msg): it never exited, standalone waited for it, and every
    # stop took the whole grace period plus the SIGTERM/SIGKILL rounds. Only when the leader is gone already
    # (its components living on) does the group get the SIGINT.
    with contextlib.suppress(ProcessLookupError):
        if pgid in members:
            os.kill(pgid, signal.SIGINT)
        else:
            os.killpg(pgid, signal.SIGINT)
    # Its components exit within seconds of the SIGINT, then standalone itself. Once nothing but the leader is
    # left, it has nothing more to stop: it gets the SIGTERM at once.
    wait_until(lambda: set(_group_members(pgid, home)) <= {pgid}, grace)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _group_members(pgid, home):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        if wait_until(lambda: not _group_members(pgid, home), wait):
            break
    return True


def stop_standalone(settings: LabSettings) -> bool:
    """Stop the lab's `airflow standalone` and every process it started, if it runs (its leader may be gone
    already while its components live on in its group)."""
    from multicloud_dr.lab.process import read_pid

    pid_file = standalone_pid_file(settings)
    pgid = read_pid(pid_file)
    stopped = pgid is not None and stop_standalone_group(pgid, settings.airflow_home)
    pid_file.unlink(missing_ok=True)
    return stopped


def run_standalone(settings: LabSettings | None = None) -> int:
    """`airflow standalone` on the lab's settings, in the foreground, until it ends or we are signalled."""
    import signal

    settings = settings or LabSettings.from_env()
    env = {**os.environ, **read_env_file(settings.env_file)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # standalone starts `airflow ...`
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    stop_standalone(settings)   # a previous one whose supervisor was killed
    with sigint_not_ignored():
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, cwd=settings.airflow_home,
                                start_new_session=True)
    standalone_pid_file(settings).write_text(f"{proc.pid}\n")
    stopping: list[int] = []

    def stop(signum, frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        while proc.poll() is None and not stopping:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
    finally:
        stop_standalone_group(proc.pid, settings.airflow_home)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        standalone_pid_file(settings).unlink(missing_ok=True)
    return 0 if stopping else (proc.returncode or 0)


# -- an `airflow standalone` of its own (make failover-demo, the e2e tests) -----------------------------------------
# Each gets a fresh home, a free port on 127.0.0.1, the repository's dags and plugins folders, and stops whole at
# the end (stop_standalone_group). Its workers inherit `env`, which is how a caller hands them the lab's
# connections and a topology of its own.

HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standalone_environment(home: Path, root: Path, port: int, base: dict[str, str],
                           extra: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (the caller's environment), then what makes this standalone its own, then `extra` over both."""
    url = f"http://127.0.0.1:{port}"
    env = {**base, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__BASE_URL": url,
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
           **(extra or {})}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"   # standalone starts `airflow ...`
    return env


def _healthy(url: str) -> bool:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:  # noqa: S310 loopback
            health = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return all(health.get(c, {}).get("status") == "healthy" for c in HEALTH_COMPONENTS)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Until the API at `url` says every component is healthy; LabError (with the log's tail) if `proc` exits
    first or `timeout` passes."""
    import time

    deadline = time.monotonic() + timeout
    while not _healthy(url):
        if proc.poll() is not None:
            raise LabError(f"airflow standalone exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise LabError(f"airflow standalone not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)   # a health request on loopback costs next to nothing; each start waits less for it


def airflow_token(url: str, user: str, password: str) -> str:
    """A JWT for the REST API from the simple auth manager's /auth/token."""
    import json
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (loopback URL of our own standalone)
        f"{url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": user, "password": password}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["access_token"]


@contextlib.contextmanager
def own_standalone(home: Path, root: Path, base: dict[str, str], extra: dict[str, str] | None = None, *,
                   timeout: float = 180.0, grace: float = 20.0):
    """`airflow standalone` in `home` until every component is healthy; yields (url, passwords, log path),
    the passwords being the simple auth manager's generated ones by user name. Stopped whole on the way out."""
    import json

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = standalone_environment(home, root, port, base, extra)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "standalone.log"
    with open(log, "wb") as out, sigint_not_ignored():
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=home)
    try:
        wait_healthy(url, proc, log, timeout)
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        yield url, passwords, log
    finally:
        stop_standalone_group(proc.pid, home, grace=grace)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
