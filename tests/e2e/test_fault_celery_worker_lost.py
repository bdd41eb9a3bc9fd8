"""F35 (FAULTS.md), "a distributed worker lost mid-task (CeleryExecutor)": one of two Celery workers is SIGKILLed
while it runs a backup's dump. What must happen: the task is retried on the other worker, no process of the lost
worker is left (its pool process, the task runner, the dump), and exactly one verified backup of the run results.

Real parts throughout: Airflow with the CeleryExecutor (lab/scaleout.py: a PostgreSQL metadata database and a
Redis broker of its own, scheduler, dag-processor, triggerer, api-server, two workers each in its own directory),
the lab's MariaDB and Azurite, the shipped `mysql_backup` DAG. Only what makes the fault observable in minutes is
changed, as in the F20 test (test_fault_worker_kill.py):
- the DAG backs up a ~20 MB scratch database through a loopback link slowed to 2 MB/s (the dump lasts ~10 s),
  and the link holds the server's replies back from just before the kill until the orphan check is done, so no
  broken pipe can end an orphaned task runner or dump: only the parent-death chain can (Celery ties its pool
  process to the worker, the project's listener the task runner to its supervisor, the backup the dump to the
  task runner: multicloud_dr/task_guard.py);
- the scheduler declares a silent task instance lost after 20 s without a heartbeat (shipped default: 300 s);
  the backup's lease is 15 s and a cluster policy sets the dump's retry delay to 20 s, longer than the lease the
  killed try could not release.
Killed is the worker's main process alone, with SIGKILL, as when its machine's agent or the OOM killer ends it.

Run it alone with `pytest -m scaleout`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from multicloud_dr.connections import get_endpoint
from multicloud_dr.lab.scaleout import WORKERS, CeleryCluster

from .airflow_processes import (
    BACKUP_DAG_ID,
    SLOW_CONN,
    DumpWatch,
    SlowLink,
    alive,
    assert_one_verified_backup,
    backup_prefix,
    describe,
    dump_processes,
    fault_topology,
    parent_of,
    retry_delay_policy,
    run_state,
    scratch_database,
    start_run,
    task_states,
    task_tries,
    wait_for,
    wait_until_parsed,
)
from .conftest import AirflowApi

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(900)]

DAG_ID = BACKUP_DAG_ID
LEASE_SECONDS = 15
RETRY_DELAY_SECONDS = 20
HEARTBEAT_TIMEOUT_SECONDS = 20
DATABASE_MB = 20
LINK_BYTES_PER_SECOND = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def scratch_db(lab):
    with scratch_database("f35", DATABASE_MB) as db:
        yield db


@pytest.fixture(scope="module")
def backup_store(lab, delete_blob_prefix):
    with backup_prefix("f35", delete_blob_prefix) as prefix:
        yield prefix


@pytest.fixture(scope="module")
def cluster(lab, scratch_db, backup_store, tmp_path_factory):
    home = tmp_path_factory.mktemp("celery-f35")
    link = SlowLink(get_endpoint("mysql_primary").port, LINK_BYTES_PER_SECOND)
    env = {
        "MULTICLOUD_DR_TOPOLOGY": str(fault_topology(home / "topology.yaml", scratch_db[0], SLOW_CONN,
                                                     str(backup_store[0]), LEASE_SECONDS)),
        f"AIRFLOW_CONN_{SLOW_CONN.upper()}": link.connection_uri(os.environ["AIRFLOW_CONN_MYSQL_PRIMARY"]),
        "PYTHONPATH": os.pathsep.join(filter(None, [
            str(retry_delay_policy(home / "policy", DAG_ID, RETRY_DELAY_SECONDS)), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    celery = CeleryCluster(lab.settings, extra_env=env)
    try:
        with celery:
            api = AirflowApi(celery.url, celery.token())
            wait_until_parsed(api, DAG_ID, f"{scratch_db[0]}.dump_and_upload")
            yield celery, api, link
            left = celery.stop()
            assert not left, f"the cluster's own shutdown left {left}"
    except BaseException:
        print("\n".join(celery.log_tail(name) for name in (*WORKERS, "scheduler")))
        raise
    finally:
        link.close()


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (parent := parent_of(int(entry))) is not None:
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _worker_of(cluster: CeleryCluster, pid: int) -> str:
    """The worker whose main process `pid` descends from."""
    mains = {proc.pid: name for name, proc in cluster.procs.items() if name in WORKERS}
    while pid and pid not in mains:
        pid = parent_of(pid) or 0
    assert pid, "the dump does not run under a Celery worker"
    return mains[pid]


def test_f35_a_lost_celery_worker_leaves_no_orphan_and_the_retry_on_the_other_backs_up_once(
        cluster, scratch_db, backup_store):
    cluster, api, link = cluster
    database, counts = scratch_db
    root, store = backup_store
    dump_task = f"{database}.dump_and_upload"
    before = {str(r.url) for r in store.list_manifests(root, database)}

    with DumpWatch(database) as watch:
        run_id = start_run(api, DAG_ID)
        dump_pid = wait_for(lambda: dump_processes(database), 180, f"mysqldump of {database} to start")[0]
        time.sleep(2)   # mid-dump: 20 MB over the slow link takes ~10 s
        assert dump_processes(database) == [dump_pid], "the dump ended before it could be killed: slow the link"
        lost = _worker_of(cluster, dump_pid)
        main = cluster.procs[lost].pid
        victims = _descendants(main)     # its pool processes, the task's supervisor and runner, the dump
        assert dump_pid in victims and len(victims) >= 3, [describe(p) for p in victims]
        link.stall()                     # the server stops answering: no broken pipe will end anything
        try:
            time.sleep(1)
            cluster.kill_worker(lost)
            killed_at = time.monotonic()
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not [p for p in victims if alive(p)], 10, "the lost worker's processes to end")
            orphan_seconds = time.monotonic() - killed_at
            left = {pid: describe(pid) for pid in victims if alive(pid)}
            assert not left, f"SIGKILLed {lost} (pid {main}); still running 10 s later: {left}"
        finally:
            link.resume()

        state = wait_for(lambda: (s := run_state(api, DAG_ID, run_id)) in ("success", "failed") and s,
                         HEARTBEAT_TIMEOUT_SECONDS + RETRY_DELAY_SECONDS + 240, f"run {run_id} to finish", 2)
        finished_seconds = time.monotonic() - killed_at

    tries = task_tries(api, DAG_ID, run_id, dump_task)
    assert state == "success", f"run {run_id}: {task_states(api, DAG_ID, run_id)}; tries {tries}"
    # The lost try is failed (its heartbeat stopped) and the retry ran on the worker that is left.
    (other,) = set(WORKERS) - {lost}
    assert [(t["state"], t["hostname"]) for t in tries] in (
        [("up_for_retry", lost), ("success", other)], [("failed", lost), ("success", other)]), tries
    assert task_states(api, DAG_ID, run_id) == {
        f"{database}.preflight": "success", dump_task: "success", f"{database}.verify": "success",
        f"{database}.copy": "skipped", f"{database}.retention": "success", f"{database}.publish": "success"}

    # Never two dumps at once; the retry's dump was a new process.
    assert watch.most_at_once == 1
    assert len(watch.all_pids) == 2 and dump_pid in watch.all_pids

    # Exactly one committed backup for the run, whole and matching its manifest and the source's rows.
    assert_one_verified_backup(store, root, database, api, DAG_ID, run_id, before, counts)
    print(f"F35: {lost} SIGKILLed mid-dump; its {len(victims)} processes gone {orphan_seconds:.1f} s later; the run "
          f"finished {finished_seconds:.0f} s after the kill, tries {[(t['state'], t['hostname']) for t in tries]}")


GUARD_PROBE = """
import os, sys, time
from multicloud_dr.task_guard import die_with_supervisor
read, write = os.pipe()
if os.fork() == 0:                       # the task runner, forked by its supervisor (this process)
    guarded = sys.argv[1] == "guard" and die_with_supervisor()
    os.write(write, f"{os.getpid()} {guarded}".encode())
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1), os.dup2(quiet, 2)   # the test reads the probe's output to its end: not this child's
    time.sleep(60)
    os._exit(0)
print(os.read(read, 100).decode(), flush=True)
os._exit(0)                              # the supervisor dies without signalling or reaping its child
"""


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "unguarded"])
def test_f35_the_task_guard_ends_a_task_runner_with_its_supervisor(guard):
    """The guard's mechanism on this kernel: a forked task runner with the guard is SIGKILLed when its supervisor
    exits; one without it lives on, reparented (what made the lost worker's dump an orphan before)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", GUARD_PROBE, "guard" if guard else "none"], capture_output=True,
                            text=True, timeout=30, check=True)
    pid, guarded = result.stdout.split()
    pid = int(pid)
    try:
        assert guarded == str(guard)
        if guard:
            wait_for(lambda: not alive(pid), 5, "the guarded task runner to die with its supervisor")
        else:
            time.sleep(1)
            assert alive(pid), "an unguarded child died with its parent: the guard would prove nothing"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
