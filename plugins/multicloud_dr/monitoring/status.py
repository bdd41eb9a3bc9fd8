"""What the Disaster recovery page shows, as one JSON-able dict (`GET /dr/api/status` returns it as it is).

Read at page load from two places only, never from the databases:
- Airflow's metadata through its public REST API, as the signed-in user (monitoring/airflow_api.py): the
  `replication_health` asset events (the current achievable RPO, each check, their history), the runs of the
  backup, drill, failover and drift DAGs, and the approvals waiting in HITL;
- Blob storage: the DR state and the failover reports next to it, the backups' manifests and drill reports, the
  Terraform drift records.

Each part is read on its own thread and bounded in time; one that fails is shown as such (`error`), the others
still are. Every number carries a `link` to the DAG run, task or asset event it came from.

The verdict applies the failover's own gates (failover/gates.py) to the newest replication_health event and the
failover stack's drift record: what would stop a failover now stops the verdict, in the same words.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any

from multicloud_dr.config import Topology
from multicloud_dr.monitoring.airflow_api import AirflowApi

log = logging.getLogger(__name__)

PART_SECONDS = 8.0          # one part of the page; later ones are shown as not answered
HISTORY_DAYS = 7
STRIP_NIGHTS = 7
BACKUP_DAG, DRILL_DAG, DRIFT_DAG = "mysql_backup", "dr_restore_drill", "terraform_drift"
FAILOVER_DAGS = ("dr_failover", "dr_failback")


def _error(err: BaseException) -> dict[str, str]:
    lines = str(err).strip().splitlines()
    return {"error": f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]}


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="seconds") if at else None


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


# -- Airflow's side -------------------------------------------------------------------------------------------------


def _event_link(api: AirflowApi, event: dict[str, Any]) -> str:
    if event.get("source_dag_id") and event.get("source_run_id"):
        return api.ui("dags", event["source_dag_id"], "runs", event["source_run_id"], "tasks",
                      event.get("source_task_id") or "rpo")
    return api.ui("assets", event.get("asset_id", ""))


def read_rpo(topology: Topology, api: AirflowApi, now: datetime) -> dict[str, Any]:
    """The newest replication_health event (RPO, checks) and the RPO history of the last HISTORY_DAYS days."""
    from multicloud_dr.assets import replication_health_asset

    name = replication_health_asset(topology.environment).name
    assets = api.get("assets", name_pattern=name, limit=10).get("assets") or []
    asset = next((a for a in assets if a.get("name") == name), None)
    if asset is None:
        return {"asset": name, "events": 0, "latest": None, "history": [],
                "detail": f"no asset {name} yet: replication_health has not run"}
    since = (now - timedelta(days=HISTORY_DAYS)).isoformat()
    events = api.get_all("assets/events", "asset_events", asset_id=asset["id"], timestamp_gte=since,
                         order_by="-timestamp")
    history = []
    for event in events:
        extra = event.get("extra") or {}
        history.append({"at": event.get("timestamp"), "rpo_seconds": extra.get("rpo_seconds"),
                        "status": extra.get("status"), "link": _event_link(api, event)})
    history.sort(key=lambda h: h["at"] or "")
    latest = events[0] if events else None
    return {"asset": name, "asset_id": asset["id"], "events": len(events), "history": history,
            "latest": None if latest is None else {**(latest.get("extra") or {}), "event_at": latest.get("timestamp"),
                                                   "link": _event_link(api, latest)}}


def read_runs(api: AirflowApi, dag_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest runs of `dag_id`, newest first; a DAG Airflow does not know gives none."""
    from multicloud_dr.monitoring.airflow_api import AirflowApiError

    try:
        runs = api.get(f"dags/{dag_id}/dagRuns", order_by="-run_after", limit=limit).get("dag_runs") or []
    except AirflowApiError as err:
        if " 404" in str(err):
            return []
        raise
    return [{"run_id": r["dag_run_id"], "state": r.get("state"), "run_after": r.get("run_after"),
             "logical_date": r.get("logical_date"), "start_date": r.get("start_date"), "end_date": r.get("end_date"),
             "link": api.ui("dags", dag_id, "runs", r["dag_run_id"])} for r in runs]


def read_approvals(api: AirflowApi) -> list[dict[str, Any]]:
    """Approvals waiting in HITL (any DAG): subject, who may answer, and a link to the task."""
    details = api.get("dags/~/dagRuns/~/hitlDetails", response_received=False, limit=50).get("hitl_details") or []
    found = []
    for detail in details:
        if detail.get("response_received"):
            continue
        ti = detail.get("task_instance") or {}
        dag_id, run_id, task_id = ti.get("dag_id"), ti.get("dag_run_id"), ti.get("task_id")
        found.append({"subject": detail.get("subject"), "dag_id": dag_id, "run_id": run_id, "task_id": task_id,
                      "assigned_users": [u.get("name") or u.get("id") for u in detail.get("assigned_users") or []],
                      "created_at": detail.get("created_at"),
                      "link": api.ui("dags", dag_id or "", "runs", run_id or "", "tasks", task_id or "",
                                     "required_actions")})
    return found


# -- Blob's side ----------------------------------------------------------------------------------------------------


def read_backups(topology: Topology) -> dict[str, Any]:
    """Per MySQL database: the newest verified backup, its age, size, verification and copies (3-2-1)."""
    from multicloud_dr.backup.verify import LATEST, NoVerifiedBackupError, resolve_backup

    out: dict[str, Any] = {}
    for db in topology.mysql_databases():
        try:
            choice = resolve_backup(topology.backup.storage_conn_id, LATEST, topology.backup.location, db.name)
        except NoVerifiedBackupError:
            out[db.name] = None
            continue
        except Exception as err:   # one database's listing failing leaves the others shown
            out[db.name] = _error(err)
            continue
        manifest = choice.record.manifest
        age = (choice.store.server_now() - manifest.stored_at).total_seconds()
        copies = [{"url": c.url, "bytes": c.bytes, "verified_at": _iso(c.verified_at)} for c in manifest.copies]
        places = {"blob"} | {c.url.split("://", 1)[0] for c in manifest.copies if c.verified_at}
        out[db.name] = {
            "manifest": str(choice.record.url), "backup_id": manifest.backup_id,
            "stored_at": _iso(manifest.stored_at), "age_seconds": round(age, 1),
            "bytes": sum(o.bytes for o in manifest.objects), "rows": manifest.total_rows,
            "verified_at": _iso(manifest.verification.at), "copies": copies,
            "three_two_one": len(places) >= 2,
            "detail": f"{1 + len([c for c in copies if c['verified_at']])} verified copies in {len(places)} "
                      f"storage service(s)"}
    return out


def backup_strip(runs: list[dict[str, Any]], now: datetime, nights: int = STRIP_NIGHTS) -> list[dict[str, Any]]:
    """The last `nights` nights, oldest first: ok (a successful run that night), failed, running or missing."""
    strip = []
    for back in range(nights - 1, -1, -1):
        day = (now - timedelta(days=back)).date()
        that_night = [r for r in runs if (_parse(r.get("logical_date") or r.get("run_after")) or now).date() == day]
        run = next((r for r in that_night if r["state"] == "success"), that_night[0] if that_night else None)
        status = "missing" if run is None else {"success": "ok", "failed": "failed"}.get(run["state"], run["state"])
        strip.append({"night": day.isoformat(), "status": status, "link": run["link"] if run else None})
    return strip


def read_state(topology: Topology) -> dict[str, Any]:
    """The DR state: active site, fencing, and the last failover and failback with their achieved RTO/RPO."""
    from multicloud_dr.failover.orchestrator import latest_report, report_blob
    from multicloud_dr.state.dr_state import DrStateStore

    store = DrStateStore.for_topology(topology)
    state, _ = store.read()
    if state is None:
        return {"active_site": "primary", "fencing_epoch": 0, "fencing": None, "holder": None,
                "last": {}, "detail": "no failover has run yet: the primary is active"}
    last: dict[str, Any] = {}
    for kind in ("failover", "failback", "drill"):
        entry = next((e for e in reversed(state.history) if e.kind == kind), None)
        if entry is None:
            continue
        dag_id = {"failover": "dr_failover", "failback": "dr_failback", "drill": "dr_failover"}[kind]
        item = {"run_id": entry.run_id, "by": entry.by, "outcome": entry.outcome, "mode": entry.mode,
                "target_site": entry.target_site, "started_at": _iso(entry.started_at),
                "ended_at": _iso(entry.ended_at),
                "seconds": round((entry.ended_at - entry.started_at).total_seconds(), 1),
                "link": (f"/dags/{dag_id}/runs/{entry.run_id}" if entry.by.startswith("airflow:") else None)}
        if kind != "drill":
            report = latest_report(topology, store, kind=kind) if entry.outcome == "succeeded" else None
            if report and report.get("run_id") == entry.run_id:
                item.update(rto_seconds=report.get("rto_seconds"), rpo_seconds=report.get("rpo_seconds"),
                            report=report_blob(store, topology.environment, entry.run_id).url)
        last[kind] = item
    return {"active_site": state.active_site, "fencing_epoch": state.fencing_epoch,
            "fencing": {"site": state.fencing.site, "status": state.fencing.status},
            "holder": None if state.holder is None else {"run_id": state.holder.run_id, "by": state.holder.by},
            "last": last, "updated_at": _iso(state.updated_at)}


def read_restore_drills(topology: Topology) -> dict[str, Any]:
    """Per MySQL database: the newest restore drill report (duration, RTO, the prediction)."""
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.restore.drill import previous_reports

    root = StorageUrl.parse(topology.backup.location)
    store = BackupStore(blob_service_client(topology.backup.storage_conn_id), root.bucket)
    out: dict[str, Any] = {}
    for db in topology.mysql_databases():
        reports = previous_reports(store, root, db.name)
        if not reports:
            out[db.name] = None
            continue
        last = reports[-1]
        prediction = last.get("prediction") or {}
        out[db.name] = {"at": last.get("at"), "seconds": last.get("seconds"), "rto_seconds": last.get("rto_seconds"),
                        "predicted_seconds": prediction.get("predicted_seconds"), "alert": last.get("alert"),
                        "message": last.get("message"), "backup_id": last.get("backup_id")}
    return out


def read_drift_records(topology: Topology) -> list[dict[str, Any]]:
    """Every drift target's newest record (terraform/drift_record.py), as the failover's evidence shows it."""
    from multicloud_dr.failover.gather import drift_facts
    from multicloud_dr.terraform.drift_record import READ_OPTIONS, DriftRecords
    from multicloud_dr.terraform.stacks import TerraformSettings

    settings = TerraformSettings.load(topology)
    records = DriftRecords.for_settings(settings)
    targets = list(settings.drift_targets)

    def one(ref) -> dict[str, Any]:
        try:
            return drift_facts(ref.label, records.read(ref, **READ_OPTIONS), str(records.url(ref)))
        except Exception as err:
            return {"stack": ref.label, "status": "unknown", "checked": False, **_error(err)}

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(targets))), thread_name_prefix="drift") as pool:
        return list(pool.map(one, targets))


# -- the verdict ----------------------------------------------------------------------------------------------------


def verdict(topology: Topology, latest: dict[str, Any] | None, drift: list[dict[str, Any]],
            drills: dict[str, Any], site: str, failover_drill: dict[str, Any] | None = None,
            backups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ready or not, in words: the failover's own gates (failover/gather.py `decide`) on the newest
    replication_health event as its replication evidence, the failover stack's drift record and the newest
    verified backups."""
    from multicloud_dr.failover.gather import decide

    if not latest or not latest.get("checks"):
        return {"ready": False, "text": f"Not known whether a failover to {site} would work: replication_health "
                                        f"has recorded no checks yet", "gates": []}
    stack = topology.failover.dr_stack
    label = None if stack is None else f"{stack.cloud}/{stack.environment}/{stack.stack}"
    mine = next((d for d in drift if d.get("stack") == label), None) if label else None
    evidence: dict[str, Any] = {"replication": latest}
    if label is not None:
        evidence["drift"] = mine or {"checked": False, "status": "unknown", "drifted": []}
    if isinstance(backups, dict):
        evidence["backups"] = {name: b for name, b in backups.items() if b is None or "error" in b or
                               b.get("age_seconds") is not None}
    promotes = any(db.failover_method in ("promote", "auto") for db in topology.databases)
    decision = decide(topology, evidence, force=False, reason=None, uses_replica=promotes)
    rpo = latest.get("rpo_seconds")
    rto = _rto_estimate(drills, failover_drill)
    said_rpo = "RPO unknown" if rpo is None else f"RPO {_duration(rpo)}"
    said_rto = "RTO unknown (no restore drill yet)" if rto is None else f"RTO ~{_duration(rto)}"
    if decision.passed:
        text = f"Ready to fail over to {site}: {said_rpo}, {said_rto}"
    else:
        text = f"Not ready to fail over to {site}: " + "; ".join(f"{g.name}: {g.detail}" for g in decision.failed)
    return {"ready": decision.passed, "text": text, "rpo_seconds": rpo, "rto_estimate_seconds": rto,
            "gates": [{"name": g.name, "ok": g.ok, "detail": g.detail} for g in decision.gates]}


def _rto_estimate(drills: dict[str, Any], failover_drill: dict[str, Any] | None) -> float | None:
    """The longer of the slowest database's predicted restore (its newest restore drill) and the last succeeded
    failover drill's duration: what the newest measurements say a failover takes."""
    values = [d.get("predicted_seconds") or d.get("seconds") for d in (drills or {}).values()
              if isinstance(d, dict) and "error" not in d]
    if failover_drill and failover_drill.get("outcome") == "succeeded":
        values.append(failover_drill.get("seconds"))
    values = [v for v in values if v is not None]
    return round(max(values), 1) if values else None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -- all of it ------------------------------------------------------------------------------------------------------


def build_status(topology: Topology, api: AirflowApi, *, now: datetime | None = None,
                 part_seconds: float = PART_SECONDS) -> dict[str, Any]:
    t0 = time.monotonic()
    now = now or datetime.now(UTC)
    parts: dict[str, Callable[[], Any]] = {
        "rpo": lambda: read_rpo(topology, api, now),
        "backup_runs": lambda: read_runs(api, BACKUP_DAG, 3 * STRIP_NIGHTS),
        "drill_runs": lambda: read_runs(api, DRILL_DAG, 5),
        "failover_runs": lambda: {d: read_runs(api, d, 5) for d in FAILOVER_DAGS},
        "drift_runs": lambda: read_runs(api, DRIFT_DAG, 3),
        "approvals": lambda: read_approvals(api),
        "backups": lambda: read_backups(topology),
        "restore_drills": lambda: read_restore_drills(topology),
        "state": lambda: read_state(topology),
        "drift": lambda: read_drift_records(topology),
    }
    pool = ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="dr-status")
    futures = {name: pool.submit(fn) for name, fn in parts.items()}
    done, _ = wait(futures.values(), timeout=part_seconds)
    pool.shutdown(wait=False, cancel_futures=True)
    got: dict[str, Any] = {}
    for name, future in futures.items():
        if future not in done:
            got[name] = {"error": f"TimeoutError: no answer within {part_seconds:g} s"}
            continue
        try:
            got[name] = future.result()
        except Exception as err:
            log.warning("DR status: %s could not be read: %s", name, err)
            got[name] = _error(err)

    rpo = got["rpo"] if "error" not in got["rpo"] else {"latest": None, "history": [], **got["rpo"]}
    latest = rpo.get("latest")
    drift = got["drift"] if isinstance(got["drift"], list) else []
    restore_drills = got["restore_drills"] if "error" not in got["restore_drills"] else {}
    dr_site = next((s for s in topology.sites if s != "primary"), "dr")
    state = got["state"]
    target = "primary" if state.get("active_site") not in (None, "primary") else dr_site
    backup_runs = got["backup_runs"] if isinstance(got["backup_runs"], list) else []
    drill_runs = got["drill_runs"] if isinstance(got["drill_runs"], list) else []
    checks = [{**c, "link": latest.get("link"), "measured_at": latest.get("measured_at")}
              for c in (latest or {}).get("checks") or []]
    return {
        "environment": topology.environment,
        "generated_at": now.isoformat(timespec="seconds"),
        "verdict": verdict(topology, latest, drift, restore_drills, target,
                           (state.get("last") or {}).get("drill") if "error" not in state else None,
                           got["backups"] if "error" not in got["backups"] else None),
        "rpo_seconds": (latest or {}).get("rpo_seconds"),
        "rpo_target_seconds": topology.targets.rpo_seconds,
        "rto_target_seconds": topology.targets.rto_seconds,
        "rpo": {k: v for k, v in rpo.items() if k != "latest"} | {
            "measured_at": (latest or {}).get("measured_at"), "status": (latest or {}).get("status"),
            "link": (latest or {}).get("link")},
        "checks": checks,
        "backups": {"databases": got["backups"], "nights": backup_strip(backup_runs, now) if backup_runs else [],
                    "runs": got["backup_runs"]},
        "drills": {"restore": got["restore_drills"], "restore_runs": got["drill_runs"],
                   "failover": (state.get("last") or {}).get("drill") if "error" not in state else None,
                   "last_restore_run": drill_runs[0] if drill_runs else None},
        "state": state,
        "failover_runs": got["failover_runs"],
        "drift": {"stacks": got["drift"], "runs": got["drift_runs"]},
        "approvals": got["approvals"],
        "seconds": round(time.monotonic() - t0, 3),
    }
