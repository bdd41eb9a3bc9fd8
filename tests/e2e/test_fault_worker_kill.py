"""F20 (FAULTS.md), "worker killed (OOM, SIGKILL)": the process running a backup task dies at once, in the middle
of mysqldump, with no chance to clean up. What must happen: the task goes to up_for_retry, no mysqldump is left
running without its task, and the retry makes exactly one complete backup of that run (one manifest, whose
blob is whole and whose hash matches).

Run under real Airflow processes (`airflow standalone`: scheduler with the LocalExecutor, dag-processor,
triggerer, api-server) on the lab's MariaDB and Azurite, with the project's `mysql_backup` DAG as shipped. The
test changes only what it must to see the fault in a few minutes:
- the DAG is pointed (MULTICLOUD_DR_TOPOLOGY) at a scratch database of ~20 MB reached through a loopback link
  slowed to 2 MB/s, so the dump lasts ~10 s and can be killed while it runs. The link also holds the server's
  replies back from just before the kill until the orphan check is done (a server busy on a long scan or a
  lock wait): a mysqldump whose task runner is gone then has nothing to write, so no broken pipe ends it and
  only the kernel can (the backup starts it with a parent-death signal);
- killed are either the task runner's whole process group (`kill -9 -PGID`), or the task runner alone, as the
  OOM killer picks one process;
- the backup's lease is 15 s (`backup.lease_seconds`, the shortest Azure allows; shipped: 60 s) and a cluster
  policy sets the dump's retry delay to 20 s (shipped: 2 min): still longer than the lease, which the killed try
  held and could not release; `test_f20_a_retry_waits_out_the_killed_trys_lease` checks that the shipped delay
  keeps that order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import timedelta

import pytest

from multicloud_dr.backup.mysql_backup import BackupRequest

from .airflow_processes import (
    BACKUP_DAG_ID,
    DumpWatch,
    LabAirflow,
    alive,
    assert_one_verified_backup,
    backup_dag_under_airflow,
    backup_prefix,
    describe,
    dump_processes,
    parent_of,
    run_state,
    scratch_database,
    start_run,
    task_instance,
    task_states,
    task_tries,
    wait_for,
)

DAG_ID = BACKUP_DAG_ID
LEASE_SECONDS = 15
RETRY_DELAY_SECONDS = 20
DATABASE_MB = 20
LINK_BYTES_PER_SECOND = 2 * 1024 * 1024

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def scratch_db(lab):
    """A sample database of ~20 MB on the lab's primary; its row counts."""
    with scratch_database("f20", DATABASE_MB) as db:
        yield db


@pytest.fixture(scope="module")
def backup_store(lab, delete_blob_prefix):
    with backup_prefix("f20", delete_blob_prefix) as prefix:
        yield prefix


@pytest.fixture(scope="module")
def airflow(lab, scratch_db, backup_store, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-f20")
    with backup_dag_under_airflow(home, scratch_db[0], backup_store[0], LINK_BYTES_PER_SECOND,
                                  RETRY_DELAY_SECONDS, lease_seconds=LEASE_SECONDS) as (airflow, api, link):
        yield airflow, api, link


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
    return members


def _kill_mid_dump(airflow: LabAirflow, database: str, whole_group: bool, before_kill) -> tuple[int, list[int]]:
    """Wait until the task's mysqldump has run a while, then SIGKILL its task runner (or the runner's whole
    process group). Returns the dump's pid and the pids that were killed."""
    dump_pid = wait_for(lambda: dump_processes(database), 180, f"mysqldump of {database} to start")[0]
    time.sleep(2)   # mid-dump: a 20 MB dump over the slow link takes ~10 s
    assert dump_processes(database) == [dump_pid], "the dump ended before it could be killed: slow the link"
    runner = parent_of(dump_pid)
    assert runner is not None
    pgid = os.getpgid(runner)
    # The supervisor puts each task runner in a process group of its own: never the components' group.
    assert pgid == runner and pgid not in airflow.component_groups() and pgid != os.getpgid(0)
    before_kill()
    time.sleep(1)   # what the link let through before is read by now: the dump waits on the server
    if whole_group:
        victims = _group_members(pgid)
        assert dump_pid in victims
        os.killpg(pgid, signal.SIGKILL)
    else:
        victims = [runner]   # the OOM killer picks one process: the task runner, not its child
        os.kill(runner, signal.SIGKILL)
    return dump_pid, victims


def _run_until_done(api, run_id: str, timeout: float) -> str:
    return wait_for(lambda: (s := run_state(api, DAG_ID, run_id)) in ("success", "failed") and s, timeout,
                    f"run {run_id} to finish", interval=2)


@pytest.mark.parametrize("whole_group", [True, False], ids=["task-process-group", "task-runner-only"])
def test_f20_killed_worker_goes_to_retry_leaves_no_orphan_dump_and_the_retry_backs_up_once(
        airflow, scratch_db, backup_store, whole_group):
    airflow, api, link = airflow
    database, counts = scratch_db
    root, store = backup_store
    dump_task = f"{database}.dump_and_upload"
    before = {str(r.url) for r in store.list_manifests(root, database)}

    with DumpWatch(database) as watch:
        run_id = start_run(api, DAG_ID)
        # The server stops answering just as the worker dies (a long scan, a lock wait): a dump whose parent
        # is gone then writes nothing, so no broken pipe can end it.
        try:
            dump_pid, victims = _kill_mid_dump(airflow, database, whole_group, before_kill=link.stall)
            killed_at = time.monotonic()

            # No orphan: the dump and every killed process are gone within seconds.
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not dump_processes(database) and not [p for p in victims if alive(p)], 10,
                         "no process of the killed task to be left")
            orphan_seconds = time.monotonic() - killed_at
            left = {pid: describe(pid) for pid in {*victims, *dump_processes(database)} if alive(pid)}
            assert not left, f"killed {victims} (dump {dump_pid}); still running 10 s later: {left}"
        finally:
            link.resume()

        # The try is recorded as failed with retries left: up_for_retry, not failed, not "running" forever.
        ti = wait_for(lambda: (t := task_instance(api, DAG_ID, run_id, dump_task))["state"] != "running" and t, 120,
                      f"{dump_task} to leave running after the kill", interval=0.5)
        assert (ti["state"], ti["try_number"]) == ("up_for_retry", 1), ti
        detected_seconds = time.monotonic() - killed_at

        state = _run_until_done(api, run_id, RETRY_DELAY_SECONDS + 180)

    tries = task_tries(api, DAG_ID, run_id, dump_task)
    assert state == "success", f"run {run_id}: {task_states(api, DAG_ID, run_id)}; tries {tries}\n{airflow.log_tail()}"
    assert [t["state"] for t in tries] in (["up_for_retry", "success"], ["failed", "success"]), tries
    assert task_states(api, DAG_ID, run_id) == {
        f"{database}.preflight": "success", dump_task: "success", f"{database}.verify": "success",
        f"{database}.copy": "skipped", f"{database}.retention": "success", f"{database}.publish": "success"}

    # Never two dumps of this database at once, and the retry's dump was another process.
    assert watch.most_at_once == 1
    assert len(watch.all_pids) == 2 and dump_pid in watch.all_pids

    # Exactly one committed backup for the run, whole and matching its manifest.
    assert_one_verified_backup(store, root, database, api, DAG_ID, run_id, before, counts)
    print(f"F20 ({'group' if whole_group else 'runner only'}): orphan dump gone {orphan_seconds:.1f} s after the "
          f"kill, up_for_retry after {detected_seconds:.1f} s; tries {[t['state'] for t in tries]}")


def test_f20_a_retry_waits_out_the_killed_trys_lease(airflow_db):
    """The shipped DAG's first retry of a dump comes after the lease a killed try could not release has run out:
    an earlier retry would find it held and fail without writing (F8), burning a try."""
    from airflow.dag_processing.dagbag import DagBag

    from .conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{DAG_ID}.py"))
    assert not bag.import_errors
    dag = bag.get_dag(DAG_ID)
    dumps = [t for t in dag.tasks if t.task_id.endswith(".dump_and_upload")]
    assert dumps
    for task in dumps:
        assert task.retries >= 1
        assert task.lease_seconds == BackupRequest.lease_seconds == 60   # the shipped lease, the longest Azure allows
        assert task.retry_delay >= timedelta(seconds=task.lease_seconds), task.task_id
