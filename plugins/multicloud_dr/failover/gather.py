"""The failover's first three steps as plain Python: gather the evidence, decide the gates (F22), write the approval.

`gather_evidence` reads, before anything is changed and without changing anything but the replication check's own
heartbeat row:

- `replication`: the replication checks and the current achievable RPO (replication/health.py `check_all`);
- `backups`: per MySQL database, the newest verified backup (what a restore would take) and its age by the storage
  server's clock (F25); None when there is none;
- `primary_databases`: whether each primary database answers, and what it says (read-only, GTID position);
- `health`: each site's app, one GET of its health URL;
- `traffic` and `dns_ttls`: each traffic layer, and the TTL resolvers may keep serving the old answer for;
- `dr_stack`: the failover stack's published Terraform outputs (an Airflow Variable, or AIRFLOW_VAR_* in a shell);
- `drift`: what terraform_drift last found for the failover stack (`failover.dr_stack`), from the record each of its
  checks writes next to the saved plans (terraform/drift_record.py). Only a record of drift stops the gate "drift";
  no record, one older than `DRIFT_STALE_SECONDS`, a failed check or an unreadable record is shown as such (never
  as in sync) and leaves the decision to the approver. A stale record of drift still counts as drift: nothing
  since says the stack was mended;
- `last_drill`: the last failover drill (the DR state's history) and each database's last restore drill report.

The site being left may be down. Nothing here raises for a server that does not answer: each part records
`{"error": ...}` and the others go on. Every probe has its own short timeout (database connects 3-5 s, HTTP 3 s),
the parts run at once, and the whole gathering gives up on a part after `GATHER_SECONDS` (that part then reads as
an error: for the gates, unknown is a failure, never a pass).

`decide` rebuilds the gates' Evidence and Limits (failover/gates.py) from that dict; `approval_markdown` renders it
for the approver (failover/evidence.py plus the backups, DR stack, drift, last drill and DNS TTLs).
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from multicloud_dr.config import CloudflareLayer, Route53Layer, Topology
from multicloud_dr.failover.evidence import evidence_markdown
from multicloud_dr.failover.gates import REPLICA_KINDS, Gate, GateDecision, decide_gates, evidence_from_report
from multicloud_dr.replication.result import ERROR, OK, CheckResult, HealthReport

if TYPE_CHECKING:
    from multicloud_dr.terraform.drift_record import StoredDriftCheck

log = logging.getLogger(__name__)

GATHER_SECONDS = 25.0       # the whole gathering; a part still running then is recorded as unanswered
HEALTH_PROBE_SECONDS = 3.0  # one GET of a site's health URL (connect and read each)
DRIFT_STALE_SECONDS = 48 * 3600  # terraform_drift runs daily: a record older than two runs means it stopped checking
DRIFT_UNKNOWN = ("terraform_drift has recorded no check of this stack (is it in terraform.drift_targets?): run "
                 "terraform_drift, or read its last run, before approving")

# Imported before the parts' threads start: modules first imported by two threads at once can deadlock on the import
# lock (CPython raises _DeadlockError in one of them), and the libraries below import these lazily.
PART_MODULES = ("multicloud_dr.backup.verify", "multicloud_dr.connections.aws", "multicloud_dr.connections.http",
                "multicloud_dr.connections.wasb", "multicloud_dr.connectivity", "multicloud_dr.kube.health",
                "multicloud_dr.replication.consistency", "multicloud_dr.replication.dms",
                "multicloud_dr.replication.freshness", "multicloud_dr.replication.health",
                "multicloud_dr.replication.mysql", "multicloud_dr.replication.postgres", "multicloud_dr.restore.drill",
                "multicloud_dr.state.dr_state", "multicloud_dr.terraform.drift_record",
                "multicloud_dr.terraform.outputs", "multicloud_dr.traffic.cloudflare",
                "multicloud_dr.traffic.cloudfront", "multicloud_dr.traffic.route53", "multicloud_dr.traffic.switch",
                "azure.core.exceptions", "azure.storage.blob", "boto3", "botocore.exceptions", "psycopg2", "pymysql",
                "requests")

_SECRET = re.compile(r"((?:sig|AccountKey|SharedAccessSignature|password|token)=)[^;&\s'\"]+", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _error(err: BaseException) -> dict[str, str]:
    """An exception as evidence: one line, no secret (a SAS or a password inside a URL), at most 500 characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    text = _URI_PASSWORD.sub(r"\1***@", _SECRET.sub(r"\1***", text))
    return {"error": f"{type(err).__name__}: {text[:500]}"}


def _guarded(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as err:   # evidence, not a step: an unreachable thing is a fact to show, not a reason to stop
        log.warning("evidence: %s could not be read: %s", what, err)
        return _error(err)


# -- the parts ---------------------------------------------------------------------------------------------------


def read_replication(topology: Topology) -> dict[str, Any]:
    from multicloud_dr.replication.health import check_all

    return check_all(topology).to_dict()


def read_newest_backup(topology: Topology, database: str, service: Any = None) -> dict[str, Any] | None:
    """The newest verified backup of `database` (the one `restore latest` takes) and its age; None: there is none."""
    from multicloud_dr.backup.verify import LATEST, NoVerifiedBackupError, resolve_backup

    try:
        choice = resolve_backup(service or topology.backup.storage_conn_id, LATEST, topology.backup.location, database)
    except NoVerifiedBackupError:
        return None
    manifest = choice.record.manifest
    age = (choice.store.server_now() - manifest.stored_at).total_seconds()
    return {"manifest": str(choice.record.url), "backup_id": manifest.backup_id,
            "snapshot_at": manifest.started_at.isoformat(), "stored_at": manifest.stored_at.isoformat(),
            "age_seconds": round(age, 1), "rows": manifest.total_rows, "gtid": manifest.gtid,
            "older_verified": len(choice.fallbacks)}


def read_database(engine: str, conn_id: str) -> dict[str, Any]:
    """Whether a database server answers, and what it says about itself (connectivity.py's probes)."""
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connectivity import probe_mysql, probe_postgres

    probe = probe_mysql if engine == "mysql" else probe_postgres
    try:
        return {"conn_id": conn_id, "reachable": True, "detail": probe(get_endpoint(conn_id))}
    except Exception as err:
        return {"conn_id": conn_id, "reachable": False, "detail": _error(err)["error"]}


def read_app_health(topology: Topology, site: str) -> dict[str, Any]:
    from multicloud_dr.connections.http import http_session
    from multicloud_dr.kube.health import check_once

    app = topology.site(site).app
    assert app is not None
    session = http_session(app.health_conn_id)
    attempt = check_once(session, app.health_path, HEALTH_PROBE_SECONDS)
    return {"healthy": attempt.healthy, "status_code": attempt.status_code, "url": session.url(app.health_path),
            "detail": attempt.failure or "healthy"}


def read_traffic(topology: Topology) -> dict[str, Any]:
    from multicloud_dr.traffic.switch import traffic_status

    if not topology.traffic.layers:
        return {"site": None, "layers": [], "detail": "the topology has no traffic layers"}
    return traffic_status(topology).to_dict()


def read_dns_ttls(topology: Topology) -> dict[str, Any]:
    """What resolvers may keep serving after a switch: the Route 53 record's TTL as stored now (the switch writes
    `ttl` from the topology), a DNS-only Cloudflare load balancer's TTL. CloudFront keeps its DNS name: none."""
    from multicloud_dr.traffic.switch import build_layer

    ttls: dict[str, Any] = {}
    for config in topology.traffic.layers:
        if isinstance(config, Route53Layer):
            def route53(config=config) -> dict[str, Any]:
                sets = build_layer(config).record_sets()
                live = sorted({s["TTL"] for s in sets if "TTL" in s})
                alias = any("AliasTarget" in s for s in sets)
                return {"provider": "route53", "ttl_seconds": live[-1] if live else None,
                        "switch_writes_ttl_seconds": config.ttl,
                        "detail": "alias record: the target's own TTL applies" if alias and not live else
                        "no record set found" if not sets else f"{len(sets)} record set(s)"}
            ttls[config.record] = _guarded(f"the TTL of {config.record}", route53)
        elif isinstance(config, CloudflareLayer):
            def cloudflare(config=config) -> dict[str, Any]:
                layer = build_layer(config)
                lb = layer.api.get(layer.lb_path()) or {}
                proxied = bool(lb.get("proxied"))
                return {"provider": "cloudflare", "ttl_seconds": None if proxied else lb.get("ttl"),
                        "proxied": proxied,
                        "detail": "proxied: clients follow a switch at once" if proxied else "DNS-only load balancer"}
            ttls[config.load_balancer] = _guarded(f"the TTL of {config.load_balancer}", cloudflare)
    return ttls


def read_dr_stack(topology: Topology) -> dict[str, Any]:
    """The failover stack's outputs as environment_provision last published them (no terraform run: that takes
    minutes and credentials; the dr_stack step plans and applies when the stack is not up)."""
    from multicloud_dr.connections import running_in_airflow
    from multicloud_dr.terraform.outputs import OutputsNotPublishedError, outputs_variable_key, read_published_outputs
    from multicloud_dr.terraform.stacks import StackRef

    config = topology.failover.dr_stack
    if config is None:
        return {"configured": False, "detail": "no failover.dr_stack in the topology: the DR site is always on"}
    ref = StackRef(config.cloud, config.environment, config.stack)
    key = outputs_variable_key(ref)
    source = f"Airflow Variable {key}" if running_in_airflow() else f"environment variable AIRFLOW_VAR_{key.upper()}"
    facts: dict[str, Any] = {"configured": True, "stack": ref.label, "source": source}
    try:
        outputs = read_published_outputs(ref.cloud, ref.environment, ref.stack)
    except OutputsNotPublishedError as err:
        where = "" if running_in_airflow() else " (outside Airflow only the AIRFLOW_VAR_* variable can be read)"
        return {**facts, "published": False, "up": False, "detail": f"{err}{where}"}
    return {**facts, "published": True, "up": bool(outputs), "outputs": outputs,
            "detail": f"{len(outputs)} output(s) published" if outputs else "published with no outputs"}


def _first_line(err: BaseException) -> str:
    """An exception's first line, without secrets (an Azure error's other lines are its request id, time and XML)."""
    lines = str(err).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else type(err).__name__
    return f"{type(err).__name__}: {_scrubbed(text)[:500]}"


def _scrubbed(text: str) -> str:
    return _URI_PASSWORD.sub(r"\1***@", _SECRET.sub(r"\1***", text))


def read_drift(topology: Topology, service: Any = None) -> dict[str, Any]:
    """What the newest drift check of the failover stack found (its record; see the module's docstring). Never
    raises: a record that cannot be read is "unknown", with the reason. `service`: a BlobServiceClient (default:
    `terraform.storage_conn_id`'s)."""
    from multicloud_dr.terraform.drift_record import READ_OPTIONS, DriftRecords
    from multicloud_dr.terraform.stacks import StackRef, TerraformSettings

    config = topology.failover.dr_stack
    if config is None:
        return {"checked": False, "status": "not configured", "drifted": [], "stack": None,
                "detail": "no failover.dr_stack in the topology: there is no failover stack to check for drift"}
    label = f"{config.cloud}/{config.environment}/{config.stack}"
    try:
        ref = StackRef(config.cloud, config.environment, config.stack)
        records = DriftRecords.for_settings(TerraformSettings.load(topology), service)
        stored = records.read(ref, **READ_OPTIONS)
    except Exception as err:   # evidence: an unreadable record is a fact to show, not a reason to stop
        line = _first_line(err)
        log.warning("evidence: the drift record of %s could not be read: %s", label, line)
        return {"checked": False, "status": "unknown", "drifted": [], "stack": label, "error": line,
                "detail": f"the drift record could not be read ({line}): check the last terraform_drift run "
                          f"before approving"}
    return drift_facts(label, stored, str(records.url(ref)))


def drift_facts(label: str, stored: StoredDriftCheck | None, url: str) -> dict[str, Any]:
    """The evidence's `drift` from the stack's record (None: there is none at `url`). `checked` is True only for a
    recent check that ran (in sync or drifted); `drifted` lists the stack when its newest record, recent or stale,
    found drift (the gate "drift" then fails)."""
    from multicloud_dr.terraform.drift_record import DRIFTED, IN_SYNC

    facts: dict[str, Any] = {"checked": False, "status": "unknown", "drifted": [], "stack": label, "record": url}
    if stored is None:
        return {**facts, "detail": f"no drift record at {url}: {DRIFT_UNKNOWN}"}
    check = stored.check
    facts.update(checked_at=check.checked_at.isoformat(), run_id=check.run_id,
                 age_seconds=round(stored.age_seconds, 1), changes=check.changes)
    found = f"{check.checked_at.isoformat()} (run {check.run_id or '?'})"
    detail = _scrubbed(check.detail)
    drifted = [label] if check.status == DRIFTED else []
    if stored.age_seconds > DRIFT_STALE_SECONDS:
        said = {IN_SYNC: "in sync", DRIFTED: f"drift: {detail}"}.get(check.status, f"a failed check: {detail}")
        return {**facts, "status": "stale", "drifted": drifted,
                "detail": f"the newest check is {_age(stored.age_seconds)} old (more than "
                          f"{DRIFT_STALE_SECONDS // 3600} h), from {found}, and found {said}; terraform_drift has "
                          f"not checked this stack since: run it"}
    if check.status == IN_SYNC:
        return {**facts, "checked": True, "status": IN_SYNC, "detail": f"in sync at {found}"}
    if check.status == DRIFTED:
        return {**facts, "checked": True, "status": DRIFTED, "drifted": drifted,
                "detail": f"drifted at {found}: {detail}; fix it with environment_provision (action=apply) after "
                          f"reviewing its plan"}
    return {**facts, "status": check.status, "detail": f"the check at {found} failed: {detail}; see that "
                                                       f"terraform_drift run's log"}


def read_last_drill(topology: Topology, store: Any = None) -> dict[str, Any] | None:
    """The last failover drill (the DR state's history) and each database's newest restore drill report."""
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.connections.wasb import blob_service_client
    from multicloud_dr.restore.drill import previous_reports
    from multicloud_dr.state.dr_state import DrStateStore

    def failover_drill() -> dict[str, Any] | None:
        state, _ = (store or DrStateStore.for_topology(topology)).read()
        drill = next((e for e in reversed(state.history) if e.kind == "drill"), None) if state else None
        if drill is None:
            return None
        return {"run_id": drill.run_id, "by": drill.by, "outcome": drill.outcome, "target_site": drill.target_site,
                "started_at": drill.started_at.isoformat(), "ended_at": drill.ended_at.isoformat()}

    def restore_drill(database: str) -> dict[str, Any] | None:
        root = StorageUrl.parse(topology.backup.location)
        backups = BackupStore(blob_service_client(topology.backup.storage_conn_id), root.bucket)
        reports = previous_reports(backups, root, database)
        if not reports:
            return None
        last = reports[-1]
        return {key: last.get(key) for key in ("at", "backup_id", "seconds", "rto_seconds", "verified", "alert",
                                                "message")}

    failover = _guarded("the last failover drill", failover_drill)
    restores = {db.name: _guarded(f"the last restore drill of {db.name}", lambda name=db.name: restore_drill(name))
                for db in topology.mysql_databases()}
    if failover is None and not any(restores.values()):
        return None
    return {"failover": failover, "restore": restores}


# -- gathering ---------------------------------------------------------------------------------------------------


def _parts(topology: Topology, store: Any) -> list[tuple[str, str | None, Callable[[], Any]]]:
    """(section, key within it or None, what reads it): each runs on its own thread."""
    parts: list[tuple[str, str | None, Callable[[], Any]]] = [
        ("replication", None, lambda: read_replication(topology)),
        ("traffic", None, lambda: read_traffic(topology)),
        ("dns_ttls", None, lambda: read_dns_ttls(topology)),
        ("dr_stack", None, lambda: read_dr_stack(topology)),
        ("drift", None, lambda: read_drift(topology)),
        ("last_drill", None, lambda: read_last_drill(topology, store)),
    ]
    for db in topology.mysql_databases():
        parts.append(("backups", db.name, lambda name=db.name: read_newest_backup(topology, name)))
    for db in topology.databases:
        parts.append(("primary_databases", f"{db.engine}/{db.name}",
                      lambda db=db: read_database(db.engine, db.primary_conn_id)))
    for site, config in topology.sites.items():
        if config.app is not None:
            parts.append(("health", site, lambda site=site: read_app_health(topology, site)))
    return parts


def _errors(evidence: dict[str, Any]) -> list[str]:
    """Every part that could not be read, one line each (for the approver, and for the log). An unhealthy app is
    not one of them: it answered, and its table says how."""
    found = []
    for section in ("replication", "traffic", "dns_ttls", "dr_stack", "drift", "last_drill", "backups",
                    "primary_databases"):
        value = evidence.get(section)
        if not isinstance(value, dict):
            continue
        if "error" in value:
            found.append(f"{section}: {value['error']}")
            continue
        items = dict(value)
        if section == "last_drill":
            items.update({f"restore/{k}": v for k, v in (items.pop("restore", None) or {}).items()})
        for key, item in items.items():
            if isinstance(item, dict) and ("error" in item or item.get("reachable") is False):
                found.append(f"{section}/{key}: {item.get('error') or item.get('detail')}")
    for check in (evidence.get("replication") or {}).get("checks") or []:
        if check.get("status") == ERROR:
            found.append(f"replication/{check['name']}: {check.get('detail')}")
    return found


def gather_evidence(topology: Topology, target_site: str, *, store: Any = None,
                    timeout_seconds: float = GATHER_SECONDS) -> dict[str, Any]:
    """Everything the gates and the approver look at, as a JSON-able dict; never raises for a server that does not
    answer (that part holds {"error": ...}). `store`: the DR state store (default: the topology's)."""
    topology.site(target_site)   # a site the topology does not have is bad input, not evidence
    t0 = time.monotonic()
    for module in PART_MODULES:
        importlib.import_module(module)
    parts = _parts(topology, store)

    def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
        started = time.monotonic()
        value = _guarded(label, fn)
        return value, round(time.monotonic() - started, 3)

    # Not a `with` block: leaving it would wait for a part that hangs. Each part's own timeouts end its thread.
    pool = ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="evidence")
    futures = [(section, key, pool.submit(timed, section if key is None else f"{section}/{key}", fn))
               for section, key, fn in parts]
    done, _ = wait([f for *_, f in futures], timeout=timeout_seconds)
    pool.shutdown(wait=False, cancel_futures=True)

    evidence: dict[str, Any] = {"target_site": target_site, "environment": topology.environment,
                                "gathered_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                "backups": {}, "primary_databases": {}, "health": {}}
    seconds: dict[str, float] = {}
    for section, key, future in futures:
        if future in done:
            value, took = future.result()
            seconds[section if key is None else f"{section}/{key}"] = took
        else:
            value = {"error": f"TimeoutError: no answer within {timeout_seconds:g} s (the evidence was gathered "
                              f"without it)"}
        if key is None:
            evidence[section] = value
        else:
            evidence[section][key] = value
    for site, health in evidence["health"].items():
        if "error" in health:
            evidence["health"][site] = {"healthy": False, "detail": health["error"], "url": None}
    evidence["errors"] = _errors(evidence)
    evidence["seconds"] = dict(sorted(seconds.items()))
    evidence["gathered_in_seconds"] = round(time.monotonic() - t0, 3)
    rpo = (evidence.get("replication") or {}).get("rpo_seconds")
    primary = evidence["health"].get("primary") or {}
    evidence["detail"] = (f"primary app {'healthy' if primary.get('healthy') else 'NOT healthy'}, current RPO "
                          f"{'unknown' if rpo is None else f'{rpo:g} s'}, {len(evidence['errors'])} part(s) "
                          f"unreadable, gathered in {evidence['gathered_in_seconds']:.1f} s")
    log.info("evidence: %s", evidence["detail"])
    return evidence


# -- the gates ---------------------------------------------------------------------------------------------------


def _report(topology: Topology, evidence: dict[str, Any]) -> HealthReport:
    """The replication report in the evidence; every check the topology asks for and the report lacks (the
    report could not be made, or a check is missing from it) counts as one that could not run."""
    from multicloud_dr.replication.health import plan_checks

    replication = evidence.get("replication") or {}
    checks = {c["name"]: CheckResult.from_dict(c) for c in replication.get("checks") or []}
    why = replication.get("error") or "not in the evidence's replication report"
    for spec in plan_checks(topology):
        if spec["name"] not in checks:
            checks[spec["name"]] = CheckResult(spec["name"], ERROR, None, spec.get("threshold"),
                                               f"not measured: {why}")
    return HealthReport(replication.get("rpo_seconds"), replication.get("rpo_target_seconds",
                                                                         topology.targets.rpo_seconds),
                        replication.get("status", ERROR), list(checks.values()), replication.get("measured_at", ""),
                        replication.get("seconds", 0.0))


def decide(topology: Topology, evidence: dict[str, Any], *, force: bool, reason: str | None,
           uses_replica: bool) -> GateDecision:
    """The gates (F22) on gathered evidence. A replica check that did not pass counts as an unknown lag (a failure)
    unless it measured more than its limit: a stopped SQL thread's check carries the age of the newest replicated
    heartbeat, which may be small, and must never read as a replica within its lag. The backup gate takes the worse
    of the freshness check and the newest verified backup found for the restore; one that could not be checked fails
    its gate saying so. `uses_replica`: the data step promotes a replica."""
    report = _report(topology, evidence)
    drift = evidence.get("drift") or {}
    drifted = tuple(drift.get("drifted") or ())
    # A passing drift gate says whether the stack was checked: "not checked" must not read as "no drift".
    said = "no drift" if drift.get("checked") else f"drift not checked ({drift.get('status') or 'unknown'})"
    found, limits = evidence_from_report(report, drifted, said if drift else "no drift")
    lags = dict(found.replica_lag_seconds)
    unreadable: dict[str, str] = {}
    for check in report.checks:
        kind, _, database = check.name.partition("/")
        if kind in REPLICA_KINDS and check.status != OK:
            limit = limits.replica_lag_seconds.get(check.name)
            if check.value is None or limit is None or check.value <= limit:
                lags[check.name] = None
        elif kind == "backup_freshness" and check.status == ERROR:
            unreadable[f"backup/{database}"] = check.detail
    # The backup a restore would take (evidence["backups"]) gates too: the older or the missing of the two counts.
    ages = dict(found.backup_age_seconds)
    for database, backup in (evidence.get("backups") or {}).items():
        if backup is None or "error" in backup:
            ages[database] = None
            if backup is not None:
                unreadable[f"backup/{database}"] = backup["error"]
        elif database not in ages or ages[database] is not None:
            ages[database] = max(ages.get(database) or 0.0, float(backup["age_seconds"]))
    decision = decide_gates(replace(found, replica_lag_seconds=lags, backup_age_seconds=ages), limits, force=force,
                            reason=reason, uses_replica=uses_replica)
    if not unreadable:
        return decision
    gates = tuple(Gate(g.name, False, f"the newest verified backup could not be checked: {unreadable[g.name]}")
                  if g.name in unreadable else g for g in decision.gates)
    return replace(decision, gates=gates)


# -- what the approver reads -------------------------------------------------------------------------------------


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _backup_rows(evidence: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, backup in sorted((evidence.get("backups") or {}).items()):
        if backup is None:
            rows.append([name, "**none verified**", "-", "-", "-"])
        elif "error" in backup:
            rows.append([name, f"**could not be read**: {backup['error']}", "-", "-", "-"])
        else:
            rows.append([name, f"`{backup['manifest']}`", _age(backup.get("age_seconds")), backup.get("snapshot_at"),
                         backup.get("rows")])
    return rows


def _stack_rows(evidence: dict[str, Any]) -> list[list[Any]]:
    stack = evidence.get("dr_stack") or {}
    if "error" in stack:
        return [["-", "**could not be read**", stack["error"]]]
    if not stack.get("configured"):
        return [["-", "always on", stack.get("detail")]]
    outputs = ", ".join(f"{k}={v}" for k, v in sorted((stack.get("outputs") or {}).items()))
    state = "up" if stack.get("up") else "**not up** (the dr_stack step applies it)"
    return [[stack.get("stack"), state, f"{stack.get('detail')}" + (f": {outputs}" if outputs else "")]]


def _drift_rows(evidence: dict[str, Any]) -> list[list[Any]]:
    drift = evidence.get("drift") or {}
    if drift.get("drifted"):
        return [[s, "**drifted**", drift.get("detail")] for s in drift["drifted"]]
    status = drift.get("status") or ("in sync" if drift.get("checked") else "unknown")
    return [[drift.get("stack") or "-", status if drift.get("checked") else f"**{status}**", drift.get("detail")]]


def _drill_rows(evidence: dict[str, Any]) -> list[list[Any]]:
    drill = evidence.get("last_drill")
    if not drill:
        return [["-", "**none recorded**", "-", "-"]]
    rows = []
    failover = drill.get("failover")
    if failover is None:
        rows.append(["failover drill", "**none recorded**", "-", "-"])
    elif "error" in failover:
        rows.append(["failover drill", "**could not be read**", "-", failover["error"]])
    else:
        rows.append(["failover drill", failover["outcome"], failover["ended_at"],
                     f"run {failover['run_id']} by {failover['by']}"])
    for name, report in sorted((drill.get("restore") or {}).items()):
        if report is None:
            rows.append([f"restore drill of {name}", "**none recorded**", "-", "-"])
        elif "error" in report:
            rows.append([f"restore drill of {name}", "**could not be read**", "-", report["error"]])
        else:
            rows.append([f"restore drill of {name}", "**alert**" if report.get("alert") else "ok", report.get("at"),
                         report.get("message")])
    return rows


def _ttl_rows(evidence: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, ttl in sorted((evidence.get("dns_ttls") or {}).items()):
        if "error" in ttl:
            rows.append([name, "-", "-", f"**could not be read**: {ttl['error']}"])
        else:
            now = ttl.get("ttl_seconds")
            rows.append([name, ttl.get("provider"), "-" if now is None else f"{now} s", ttl.get("detail")])
    return rows or [["-", "-", "-", "no DNS layer (Route 53 or DNS-only Cloudflare) in the topology"]]


def approval_markdown(topology: Topology, evidence: dict[str, Any], decision: GateDecision, *, target_site: str,
                      mode: str, triggered_by: str | None) -> str:
    """The approval's body: the verdict, the gates, the replication checks, traffic and app health
    (evidence_markdown), then the primary databases, backups, DR stack, drift, last drill, DNS TTLs and whatever
    could not be read."""
    replication = evidence.get("replication") or {}
    traffic = evidence.get("traffic") or {}
    sections: list[tuple[str, list[str], list[list[Any]]]] = []
    if "checks" not in replication:
        sections.append(("Replication", ["part", "detail"],
                         [["replication checks", f"**could not run**: {replication.get('error')}"]]))
    if "layers" not in traffic:
        sections.append(("Traffic", ["part", "detail"], [["traffic layers", f"**could not be read**: "
                                                                            f"{traffic.get('error')}"]]))
    sections += [
        ("Primary databases", ["database", "reachable", "detail"],
         [[name, "yes" if db.get("reachable") else "**no**", db.get("detail") or db.get("error")]
          for name, db in sorted((evidence.get("primary_databases") or {}).items())]),
        ("Backups", ["database", "newest verified backup", "age", "snapshot", "rows"], _backup_rows(evidence)),
        ("DR stack", ["stack", "state", "detail"], _stack_rows(evidence)),
        ("Drift", ["stack", "status", "detail"], _drift_rows(evidence)),
        ("Last drill", ["drill", "outcome", "at", "detail"], _drill_rows(evidence)),
        ("DNS TTLs", ["name", "provider", "TTL now", "detail"], _ttl_rows(evidence)),
    ]
    errors = evidence.get("errors") or []
    if errors:
        sections.append(("Could not be read", ["part"], [[e] for e in errors]))
    body = evidence_markdown(environment=topology.environment, target_site=target_site, mode=mode, gates=decision,
                             replication=replication if "checks" in replication else None,
                             traffic=traffic if "layers" in traffic else None, health=evidence.get("health"),
                             triggered_by=triggered_by, sections=sections)
    took = evidence.get("gathered_in_seconds")
    footer = f"Evidence gathered at {evidence.get('gathered_at')}" + (f" in {took:.1f} s." if took is not None else ".")
    return body + "\n" + footer + "\n"
