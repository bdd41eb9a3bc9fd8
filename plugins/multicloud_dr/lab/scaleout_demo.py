"""`make scaleout-demo`: the DAGs, as shipped, on a distributed Airflow (CeleryExecutor, PostgreSQL, Redis).

1. the lab up, its DR state for the demo's environment removed;
2. `CeleryCluster` (lab/scaleout.py): a metadata PostgreSQL and a Redis broker of its own, the scheduler,
   dag-processor, triggerer, api-server and two Celery workers, each worker in a directory of its own;
3. `mysql_backup`, then `dr_restore_drill` (which restores that backup into a scratch database), then
   `dr_failover` in drill mode, triggered by `admin` and approved by `approver` through the HITL REST API (the
   demo's environment is a four-eyes one: the trigger cannot approve its own run);
4. everything it started stopped; the last line printed is one JSON object: executor, metadata database, broker,
   each run's final state and the number of task instances each worker ran (a task instance's `hostname` is
   its worker's name). Exit 0 only when every run succeeded and both workers ran tasks.

The topology is the lab's (include/topology.yaml) with environment `lab-scaleout` and the MySQL database only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
from collections import Counter
from pathlib import Path

from multicloud_dr.lab.core import Lab
from multicloud_dr.lab.failover_demo import Api, _environ, _exists, _wait, delete_dr_state, four_eyes_topology
from multicloud_dr.lab.scaleout import WORKERS, CeleryCluster

ENVIRONMENT = "lab-scaleout"
APPROVER = "approver"
RUN_TIMEOUT_SECONDS = 900
DAGS = ("mysql_backup", "dr_restore_drill", "dr_failover")
# The demo's own backups and their copies: emptied as it starts, so a second demo (whose runs get the same ids and
# dates from a new metadata database) finds none of the first one's backups, copies and drill reports.
DEMO_PREFIX = "scaleout-demo"
LOCATION = f"wasb://dr-backups/{DEMO_PREFIX}"


def _say(line: str) -> None:
    print(f"scaleout-demo: {line}", file=sys.stderr, flush=True)


def demo_topology(lab: Lab) -> Path:
    def own_prefixes(data: dict) -> None:
        data["backup"]["location"] = LOCATION
        for copy in data["backup"].get("copies") or []:   # s3://<bucket>/<path> -> s3://<bucket>/scaleout-demo
            scheme, rest = copy["url"].split("://", 1)
            copy["url"] = f"{scheme}://{rest.split('/', 1)[0]}/{DEMO_PREFIX}"

    return four_eyes_topology(lab, ENVIRONMENT, APPROVER, "scaleout-demo-topology.yaml", own_prefixes)


def _start_clean(env: dict[str, str]) -> None:
    """The demo environment's DR state and the demo's backups removed."""
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.config import load_topology
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.lab.core import delete_blob_prefix

    delete_dr_state(env)
    with _environ(env):
        topology = load_topology()
        delete_blob_prefix(blob_service_client(get_endpoint(topology.backup.storage_conn_id)),
                           StorageUrl.parse(LOCATION))
        for copy in topology.backup.copies:
            _delete_copies(copy.conn_id, StorageUrl.parse(copy.url))


def _delete_copies(conn_id: str, url) -> None:
    """Every object under the demo's copy prefix in S3 (moto) or GCS (the emulator)."""
    if url.scheme == "s3":
        from multicloud_dr.connections.aws import aws_client

        s3 = aws_client(conn_id, "s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=url.bucket, Prefix=url.path + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=url.bucket, Delete={"Objects": keys})
    elif url.scheme == "gs":
        from multicloud_dr.connections.gcp import storage_client

        for blob in storage_client(conn_id).bucket(url.bucket).list_blobs(prefix=url.path + "/"):
            blob.delete()


def start_run(api: Api, dag_id: str, conf: dict | None = None, scheduled_wait: float = 20.0) -> str:
    """One new run of `dag_id`: the one the scheduler makes when a scheduled DAG is unpaused (catchup=False runs
    its latest missed tick), else a manual one with `conf`."""
    def runs() -> set[str]:
        return {r["dag_run_id"] for r in api.call("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]}

    known = runs()
    dag = api.call("GET", f"/dags/{dag_id}")
    api.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    if dag.get("timetable_summary") not in (None, "None") and conf is None:
        with contextlib.suppress(TimeoutError):
            made = _wait(f"the scheduler to start a run of {dag_id}", lambda: runs() - known, scheduled_wait)
            return sorted(made)[0]
    return api.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})["dag_run_id"]


def _run(api: Api, dag_id: str, run_id: str) -> dict:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}")


def _task_instances(api: Api, dag_id: str, run_id: str) -> list[dict]:
    path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances?limit=1000"
    return api.call("GET", path)["task_instances"]


def wait_finished(api: Api, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_SECONDS) -> str:
    return _wait(f"{dag_id} run {run_id} to finish",
                 lambda: (s := _run(api, dag_id, run_id)["state"]) in ("success", "failed") and s, timeout, 2)


def approve_drill(admin: Api, approver: Api, run_id: str) -> None:
    q = urllib.parse.quote(run_id)

    def waiting() -> bool:
        states = {t["task_id"]: t["state"] for t in _task_instances(admin, "dr_failover", run_id)}
        if _run(admin, "dr_failover", run_id)["state"] == "failed":
            raise RuntimeError(f"dr_failover failed before its approval: {states}")
        return states.get("approve") == "awaiting_input"

    _wait("dr_failover's approval task to wait for input", waiting, 600, 2)
    time.sleep(3)   # as a human would: an answer within ~1 s of parking races Airflow 3.3.2's scheduler
    approver.call("PATCH", f"/dags/dr_failover/dagRuns/{q}/taskInstances/approve/-1/hitlDetails",
                  {"chosen_options": ["Approve"], "params_input": {"reason": "scale-out demo: a drill"}})
    _say(f"{APPROVER} approved the drill through the HITL REST API")


def tasks_by_worker(finished: dict[str, list[dict]]) -> dict[str, int]:
    """The task instances of the finished runs ({dag_id: its run's task instances}) that ran, by the worker that
    ran them (every worker listed)."""
    counts = Counter({name: 0 for name in WORKERS})
    for tis in finished.values():
        for ti in tis:
            if ti.get("hostname") and ti.get("state") not in (None, "skipped", "removed", "upstream_failed"):
                counts[ti["hostname"]] += 1
    return dict(counts)


def log_of_a_task_on(api: Api, finished: dict[str, list[dict]], worker: str) -> str:
    """The log, as the api-server serves it (from the remote log store: the workers serve none), of the first
    successful task instance `worker` ran; "" when there is none or it is empty."""
    for dag_id, tis in finished.items():
        for ti in tis:
            if ti.get("hostname") == worker and ti["state"] == "success":
                run = urllib.parse.quote(ti["dag_run_id"])
                path = (f"/dags/{dag_id}/dagRuns/{run}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
                        f"?full_content=true&map_index={ti.get('map_index', -1)}")
                content = api.call("GET", path).get("content") or []
                lines = [e.get("event", "") if isinstance(e, dict) else str(e) for e in content]
                return "\n".join(line for line in lines if line)
    return ""


def run_scaleout_demo() -> bool:
    t0 = time.monotonic()
    lab = Lab()
    _say("bringing the lab up")
    lab.up(report=lambda line: None)
    from multicloud_dr.lab.airflow_run import read_env_file

    topology = demo_topology(lab)
    env = {**os.environ, **read_env_file(lab.settings.env_file), "MULTICLOUD_DR_TOPOLOGY": str(topology)}
    _start_clean(env)
    _say("starting the metadata PostgreSQL, the Redis broker and Airflow with the CeleryExecutor (2 workers)")
    states: dict[str, str] = {}
    finished: dict[str, list[dict]] = {}     # dag_id -> its run's task instances, read once it ended
    with CeleryCluster(lab.settings, extra_env={"MULTICLOUD_DR_TOPOLOGY": str(topology)},
                       users=("admin", APPROVER)) as cluster:
        _say(f"Airflow is up at {cluster.url} in {time.monotonic() - t0:.0f} s; workers {', '.join(WORKERS)}")
        admin, approver = Api(cluster.url, cluster.token("admin")), Api(cluster.url, cluster.token(APPROVER))
        for dag_id in DAGS:
            _wait(f"{dag_id} to be parsed", lambda d=dag_id: _exists(admin, d), 180)
        for dag_id in DAGS:
            started = time.monotonic()
            conf = {"target_site": "dr", "mode": "drill"} if dag_id == "dr_failover" else None
            run_id = start_run(admin, dag_id, conf)
            _say(f"{dag_id}: run {run_id} started")
            if dag_id == "dr_failover":
                approve_drill(admin, approver, run_id)
            states[dag_id] = wait_finished(admin, dag_id, run_id)
            finished[dag_id] = tis = _task_instances(admin, dag_id, run_id)
            where = Counter(t.get("hostname") or "-" for t in tis)
            _say(f"{dag_id}: {states[dag_id]} in {time.monotonic() - started:.0f} s; task instances by worker "
                 f"{dict(where)}")
            if states[dag_id] != "success":
                for t in tis:
                    if t["state"] != "success":
                        _say(f"  {t['task_id']} {t.get('map_index', -1)}: {t['state']} on {t.get('hostname')}")
                _say(f"task logs: {', '.join(str(cluster.worker_home(w) / 'logs') for w in WORKERS)}")
                break
        workers = tasks_by_worker(finished)
        unread = [w for w in WORKERS if not log_of_a_task_on(admin, finished, w)]
        _say("task logs: in Blob Storage, read back through the REST API for a task of each worker"
             + (f"; none readable for {', '.join(unread)}" if unread else ""))
    ok = all(states.get(d) == "success" for d in DAGS) and all(workers.get(w) for w in WORKERS) and not unread
    _say(f"{'done' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s; everything it started is stopped")
    print(json.dumps({"executor": "CeleryExecutor", "metadata_db": "postgresql", "broker": "redis",
                      "runs": {d: states.get(d, "not run") for d in DAGS}, "workers": workers}))
    return ok
