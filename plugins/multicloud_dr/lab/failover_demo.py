"""`make failover-demo`: an emergency failover of the lab, end to end, by a real `airflow standalone`.

1. the lab up, put back where a failover starts (traffic on the primary, the DR app at 0 replicas, the primary
   writable) and the demo's own DR state removed;
2. the sample database backed up and verified (`drctl backup`, `drctl verify`);
3. the primary's MariaDB killed by its pid (the outage);
4. `airflow standalone` with two users, `admin` and `approver`; `admin` triggers dr_failover in emergency mode,
   and `approver` grants the approval through the HITL REST API (the lab is a four-eyes environment here, so the
   trigger could not approve it: F31);
5. the run waited for; its report printed as the last line (JSON), after the checks: the traffic entries equal
   what moto and the fake Cloudflare hold, and the DR database's tables hold the manifest's row counts;
6. the lab put back (the primary restarted and, as replication_health does for a returning old primary, fenced
   first; then unfenced, traffic moved back and the DR app at 1 replica as the lab seeds it, so `make demo` and
   `make test` find the lab as they expect).

The demo's topology is the lab's (include/topology.yaml) with environment `lab-demo` and the MySQL database only
(the PostgreSQL pair is failed over by the e2e tests, which rebuild its standby afterwards).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from multicloud_dr.lab.core import Lab

ENVIRONMENT = "lab-demo"
DAG_ID = "dr_failover"
APPROVER = "approver"


def _say(line: str) -> None:
    print(f"failover-demo: {line}", file=sys.stderr, flush=True)


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 (loopback URL of our own standalone)
            f"{self.url}/api/v2{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")


def _wait(what: str, check, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def four_eyes_topology(lab: Lab, environment: str, approver: str, name: str, edit=None) -> Path:
    """The lab's topology (include/topology.yaml) for a demo: environment `environment`, the MySQL database only, a
    four-eyes environment whose approver is `approver`; `edit(data)` changes it further. Written to the lab's home
    as `name`."""
    data = yaml.safe_load((lab.settings.root / "include" / "topology.yaml").read_text())
    data["environment"] = environment
    data["databases"] = [d for d in data["databases"] if d["engine"] == "mysql"]
    data.setdefault("failover", {})["four_eyes_environments"] = [environment]
    data["failover"]["approvers"] = [approver]
    if edit:
        edit(data)
    path = lab.settings.home / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def demo_topology(lab: Lab) -> Path:
    return four_eyes_topology(lab, ENVIRONMENT, APPROVER, "failover-demo-topology.yaml")


def delete_dr_state(env: dict[str, str]) -> None:
    """The DR state of the topology `env` names, deleted: a demo's environment is its own, each demo starts anew."""
    from multicloud_dr.config import load_topology
    from multicloud_dr.state.dr_state import DrStateStore

    with _environ(env):
        blob = DrStateStore.for_topology(load_topology()).blob
        if blob.exists():
            blob.delete_blob()


def _drctl(*args: str, env: dict[str, str]) -> str:
    drctl = str(Path(sys.executable).parent / "drctl")
    result = subprocess.run([drctl, *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"drctl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def reset_lab(lab: Lab, env: dict[str, str], *, delete_state: bool, dr_replicas: int) -> None:
    """The lab's services up, the primary writable, traffic on it, the DR app at `dr_replicas` (0: pilot light,
    where a failover starts; 1: as the lab seeds it)."""
    lab.up(report=lambda line: None)
    _drctl("fence", "--site", "primary", "--engine", "mysql", "--unfence", env=env)
    _drctl("app", "scale", "--site", "primary", "--replicas", "1", env=env)   # the failover scaled it down
    _drctl("traffic", "switch", "--to", "primary", env=env)
    _drctl("app", "scale", "--site", "dr", "--replicas", str(dr_replicas), env=env)
    if delete_state:
        delete_dr_state(env)


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def standalone(lab: Lab, env: dict[str, str]):
    """`airflow standalone` in a home of the demo's own, with the users admin and approver."""
    import shutil

    from multicloud_dr.lab.airflow_run import own_standalone

    home = lab.settings.home / "failover-demo-airflow"
    shutil.rmtree(home, ignore_errors=True)
    with own_standalone(home, lab.settings.root, env,
                        {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{APPROVER}:admin"}) as running:
        yield running


def _kill_primary(lab: Lab) -> int:
    pid = lab.mysql_primary.pid()
    if pid is None:
        raise RuntimeError("the lab's mysql-primary is not running")
    os.kill(pid, signal.SIGKILL)
    _wait("mysql-primary to be gone", lambda: lab.mysql_primary.pid() is None or not _alive(pid), 30, 0.2)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def check_report(report: dict[str, Any], env: dict[str, str], manifest: dict[str, Any]) -> list[str]:
    """The report's traffic entries against what the APIs hold now, and the DR tables against the manifest."""
    from multicloud_dr.config import load_topology
    from multicloud_dr.traffic.switch import traffic_status

    problems = []
    with _environ(env):
        topology = load_topology()
        live = traffic_status(topology).to_dict()
        if [(x["provider"], x["site"]) for x in live["layers"]] != \
                [(x["provider"], x["site"]) for x in (report.get("traffic") or {}).get("layers", [])]:
            problems.append(f"the report's traffic {report.get('traffic')} is not what the APIs hold: {live}")
        if live["site"] != "dr":
            problems.append(f"traffic is on {live['site']}, not dr")
        data = next((d for d in report.get("data", []) if d["method"] == "restore"), None)
        if data is None:
            problems.append("the report has no restore outcome")
        else:
            problems += _compare_rows(data["target"], data["database"], manifest)
    return problems


def _compare_rows(conn_id: str, database: str, manifest: dict[str, Any]) -> list[str]:
    from multicloud_dr.backup import source
    from multicloud_dr.connections import get_endpoint

    problems = []
    with contextlib.closing(source.connect(get_endpoint(conn_id), database)) as conn, conn.cursor() as cur:
        for table, entry in manifest["tables"].items():
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            (rows,) = cur.fetchone()
            if rows != entry["rows"]:
                problems.append(f"{database}.{table}: {rows} rows in DR, the manifest says {entry['rows']}")
    return problems


def run_failover_demo() -> bool:
    t0 = time.monotonic()
    lab = Lab()
    _say("bringing the lab up")
    lab.up(report=lambda line: None)
    topology_file = demo_topology(lab)
    from multicloud_dr.lab.airflow_run import read_env_file

    env = {**os.environ, **read_env_file(lab.settings.env_file), "MULTICLOUD_DR_TOPOLOGY": str(topology_file)}
    reset_lab(lab, env, delete_state=True, dr_replicas=0)
    _say("backing up the sample database (drctl backup, drctl verify)")
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    backup = json.loads(_drctl("backup", "--source", "mysql_primary", "--database", "petclinic", "--to",
                               "wasb://dr-backups/mysql", "--logical-date", stamp, env=env))
    _drctl("verify", backup["manifest"], env=env)
    killed = _kill_primary(lab)
    _say(f"killed mysql-primary's MariaDB (pid {killed}): the outage")
    with standalone(lab, env) as (url, passwords, log):
        from multicloud_dr.lab.airflow_run import airflow_token

        admin = Api(url, airflow_token(url, "admin", passwords["admin"]))
        approver = Api(url, airflow_token(url, APPROVER, passwords[APPROVER]))
        _wait("the dr_failover DAG to be parsed", lambda: _exists(admin, DAG_ID), 120)
        admin.call("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
        run_id = admin.call("POST", f"/dags/{DAG_ID}/dagRuns",
                            {"logical_date": None, "conf": {"target_site": "dr", "mode": "emergency"}})["dag_run_id"]
        _say(f"admin triggered {DAG_ID} run {run_id} (emergency, to dr); waiting for its approval task")
        q = urllib.parse.quote(run_id)
        _wait("the approval to wait for input", lambda: _task_state(admin, run_id, "approve") == "awaiting_input"
              or _raise_if_failed(admin, run_id), 300)
        time.sleep(3)   # as a human would: an answer within ~1 s of parking races Airflow 3.3.2's scheduler
        approver.call("PATCH", f"/dags/{DAG_ID}/dagRuns/{q}/taskInstances/approve/-1/hitlDetails",
                      {"chosen_options": ["Approve"], "params_input": {"reason": "failover demo: primary is down"}})
        _say(f"{APPROVER} approved it through the HITL REST API")
        state = _wait("the run to finish", lambda: (s := admin.call("GET", f"/dags/{DAG_ID}/dagRuns/{q}")["state"])
                      in ("success", "failed") and s, 900, 2)
        tasks = admin.call("GET", f"/dags/{DAG_ID}/dagRuns/{q}/taskInstances")["task_instances"]
        for t in sorted(tasks, key=lambda t: t.get("start_date") or ""):
            print(f"  {t['task_id']:<18} {t['state']:<16} {_seconds(t)}", file=sys.stderr)
        if state != "success":
            _say(f"the run {state}: see the task logs under {log.parent}/logs")
            return False
        report = admin.call("GET", f"/dags/{DAG_ID}/dagRuns/{q}/taskInstances/finish/xcomEntries/return_value"
                                   f"?deserialize=true")["value"]
    manifest = json.loads(_manifest_text(env, backup["manifest"]))
    problems = check_report(report, env, manifest)
    _say("putting the lab back: the primary restarted and fenced first (as replication_health does), then "
         "unfenced, its app scaled up, traffic back on it")
    lab.up(report=lambda line: None)
    with _environ(env):
        from multicloud_dr.config import load_topology
        from multicloud_dr.failover.site_fence import fence_returning_site

        returned = fence_returning_site(load_topology())
    _say(f"returning primary: {returned['detail']}")
    reset_lab(lab, env, delete_state=False, dr_replicas=1)
    for problem in problems:
        _say(f"CHECK FAILED: {problem}")
    steps = {s["name"]: s["seconds"] for s in report.get("steps", [])}
    _say(f"done in {time.monotonic() - t0:.0f} s; RTO {report.get('rto_seconds')} s, RPO {report.get('rpo_seconds')} "
         f"s; step seconds {steps}")
    print(json.dumps(report, default=str))
    return not problems


def _manifest_text(env: dict[str, str], url: str) -> str:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.connections.wasb import blob_service_client

    with _environ(env):
        parsed = StorageUrl.parse(url)
        store = BackupStore(blob_service_client("azure_blob_dr"), parsed.bucket)
        return store.blob(parsed).download_blob().readall().decode()


def _exists(api: Api, dag_id: str) -> bool:
    try:
        api.call("GET", f"/dags/{dag_id}")
        return True
    except urllib.error.HTTPError:
        return False


def _task_state(api: Api, run_id: str, task_id: str) -> str | None:
    try:
        return api.call("GET", f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}")["state"]
    except urllib.error.HTTPError:
        return None


def _raise_if_failed(api: Api, run_id: str) -> bool:
    run = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}")
    if run["state"] == "failed":
        tasks = api.call("GET", f"/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances")
        raise RuntimeError(f"the run failed before its approval: "
                           f"{ {t['task_id']: t['state'] for t in tasks['task_instances']} }")
    return False


def _seconds(task: dict) -> str:
    duration = task.get("duration")
    return f"{duration:.1f} s" if isinstance(duration, int | float) else ""
