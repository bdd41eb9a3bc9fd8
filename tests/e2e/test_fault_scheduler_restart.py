"""F21 (FAULTS.md), "scheduler restarted mid-run": the scheduler stops (a crash, or a restart for a deploy) and
starts again while a backup task runs. What must happen: the backup is never executed twice at the same time,
and the run ends in a consistent state: success, with exactly one complete backup.

Run under real Airflow processes on the lab: api-server, dag-processor, triggerer and scheduler (LocalExecutor)
started one by one, as `airflow standalone` starts them, so that the scheduler alone can be stopped and started.
The project's `mysql_backup` DAG runs as shipped, pointed (MULTICLOUD_DR_TOPOLOGY) at a scratch database of
~10 MB behind a loopback link slowed to 256 KB/s, so the dump lasts ~40 s. While it runs:
- crash: the scheduler's main process is SIGKILLed and a new one started at once. Its LocalExecutor worker and
  the task live on; the new scheduler finds the dead one's running task and, since a LocalExecutor cannot adopt
  it, resets it and runs it again: a second execution while the first may still be alive. The scheduler is
  told to notice a dead scheduler after 10 s (scheduler_health_check_threshold, default 30 s) and to look
  every 5 s (orphaned_tasks_check_interval, default 300 s), so this happens during the dump, not after it.
- graceful: the scheduler gets SIGTERM (what `systemctl restart` or a pod rollout sends first), which makes a
  LocalExecutor wait for its running tasks; it is started again once it has exited.
A cluster policy sets the retry delay to 10 s (shipped: 2 min), and the backup's lease is 15 s (shipped: 60 s), so
a try that ends on the lease the other one held is retried, and takes the lease over, within the test.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from .airflow_processes import (
    BACKUP_DAG_ID,
    DumpWatch,
    assert_one_verified_backup,
    backup_dag_under_airflow,
    backup_prefix,
    dump_processes,
    run_state,
    scratch_database,
    start_run,
    task_log,
    task_runners,
    task_states,
    task_tries,
    wait_for,
)

DAG_ID = BACKUP_DAG_ID
DATABASE_MB = 10
LINK_BYTES_PER_SECOND = 256 * 1024
RETRY_DELAY_SECONDS = 10

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def scratch_db(lab):
    with scratch_database("f21", DATABASE_MB) as db:
        yield db


@pytest.fixture(scope="module")
def backup_store(lab, delete_blob_prefix):
    with backup_prefix("f21", delete_blob_prefix) as prefix:
        yield prefix


@pytest.fixture(scope="module")
def airflow(lab, scratch_db, backup_store, tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-f21")
    with backup_dag_under_airflow(home, scratch_db[0], backup_store[0], LINK_BYTES_PER_SECOND, RETRY_DELAY_SECONDS,
                                  extra_env={"AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
                                             "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5"},
                                  separate=True, lease_seconds=15) as (airflow, api, _link):
        yield airflow, api


class TaskRunnerWatch:
    """Samples the pids of one Airflow home's task runners (titled "airflow worker -- <try id>") every 0.1 s."""

    def __init__(self, home) -> None:
        self.home = home
        self.samples: list[set[int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(set(task_runners(self.home)))
            self._stop.wait(0.1)

    def __enter__(self) -> TaskRunnerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def most_at_once(self, pids: set[int]) -> int:
        return max((len(sample & pids) for sample in self.samples), default=0)


@pytest.mark.parametrize("how", ["crash", "graceful"])
def test_f21_scheduler_restarted_mid_backup_runs_it_once_at_a_time_and_ends_consistent(
        airflow, scratch_db, backup_store, how):
    airflow, api = airflow
    database, counts = scratch_db
    root, store = backup_store
    dump_task = f"{database}.dump_and_upload"
    before = {str(r.url) for r in store.list_manifests(root, database)}

    with DumpWatch(database) as dumps, TaskRunnerWatch(airflow.home) as runners:
        run_id = start_run(api, DAG_ID)
        first_dump = wait_for(lambda: dump_processes(database), 180, f"mysqldump of {database} to start")[0]
        time.sleep(2)
        assert dump_processes(database) == [first_dump], "the dump ended before the restart: slow the link"
        restarted_at = time.monotonic()
        if how == "crash":
            airflow.stop_component("scheduler", signal.SIGKILL)
        else:
            airflow.stop_component("scheduler", signal.SIGTERM, timeout=240)
        stopped_seconds = time.monotonic() - restarted_at
        airflow.start_component("scheduler")
        state = wait_for(lambda: (s := run_state(api, DAG_ID, run_id)) in ("success", "failed") and s, 360,
                         f"run {run_id} to finish", interval=2)

    tries = task_tries(api, DAG_ID, run_id, dump_task)
    states = task_states(api, DAG_ID, run_id)
    detail = f"run {run_id} {state}: {states}; dump tries {[(t['try_number'], t['state']) for t in tries]}"
    assert state == "success", f"{detail}\n{airflow.log_tail()}"
    assert states == {
        f"{database}.preflight": "success", dump_task: "success", f"{database}.verify": "success",
        f"{database}.copy": "skipped", f"{database}.retention": "success", f"{database}.publish": "success"}, detail

    # Never two dumps of the database at once (the backup's lease), whatever Airflow did with its tries.
    assert dumps.most_at_once == 1, dumps.samples
    # Exactly one committed backup for the run, whole and matching its manifest.
    assert_one_verified_backup(store, root, database, api, DAG_ID, run_id, before, counts)

    # Each try that did not make the backup failed without writing (the blobs above are one backup's): it found
    # the lease held by the other try, or Airflow stopped it once the new scheduler had reset it. Its log says
    # which when Airflow kept it (a try stopped from outside may end with no more than "Task failed").
    # One dump per try at most.
    for t in tries[:-1]:
        assert t["state"] == "failed", (t, task_log(api, DAG_ID, run_id, dump_task, t["try_number"])[-3000:])
    assert len(dumps.all_pids) <= len(tries)
    overlap = runners.most_at_once({t["pid"] for t in tries if t.get("pid")})
    print(f"F21 ({how}): scheduler stopped in {stopped_seconds:.1f} s; {detail}; dumps {dumps.all_pids}; "
          f"tries of the dump task running at once (Airflow's view): {overlap}")
    if how == "crash":
        # The new scheduler reset the dead one's running try (a LocalExecutor cannot adopt it) and ran it again.
        assert len(tries) >= 2, detail
    else:
        # A LocalExecutor scheduler waits for its running task before it exits: the dump ran once, to the end.
        assert len(tries) == 1 and len(dumps.all_pids) == 1, detail
