"""The failover, the failback and the drill, step by step, resumable from the DR state: what the dr_failover and
dr_failback DAGs' tasks run, and what `drctl failover|failback` runs in order from a shell.

Every step goes through `StepRunner.step(name, fn)`:
1. read the DR state; the run must hold it (acquired by the first step, `evidence`), else it stops without acting;
2. a step the state records as done is not run again: its recorded detail is returned (a retried task, a re-run
   after a worker was killed mid-failover, F32, resumes after the last step that finished);
3. mark it running, run it, record its detail (JSON) as done, or failed with the error: all by compare-and-set on
   the state's blob, so an Airflow run and a drctl run can never both act.

Steps of a failover (`FAILOVER_STEPS`): evidence, gates (F22), approval (F31), fence (F23/F30), dr_stack, data
(promote or restore), app (scale the target site's deployments, pointed at the database that holds the data),
health (F33: traffic never moves to an unhealthy app), traffic (every layer, never zero targets, F24), verify
(every layer read back; the target becomes the active site), then `finish` writes the report (RTO, RPO) next to
the DR state and releases it. A failback runs the same way back to the primary, with the data brought up to date
from DR (resync) and the primary unfenced at the end. A drill runs against scratch targets and its teardown
always runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.config import Topology
from multicloud_dr.exceptions import DrError, InputError, StateConflictError
from multicloud_dr.failover.request import FailoverRequest, check_approver
from multicloud_dr.failover.steps import DRILL_STEPS, FAILBACK_STEPS, FAILOVER_STEPS
from multicloud_dr.state.dr_state import DrState, DrStateStore, StateHeldError

log = logging.getLogger(__name__)

CONFLICT_TRIES = 5
REPORT_PREFIX = "reports"
# Test-only: the process kills itself (SIGKILL, as a worker dies) right after this step is recorded done, so the
# F32 test can resume a failover interrupted exactly there.
TEST_KILL_AFTER = "MULTICLOUD_DR_TEST_KILL_AFTER_STEP"


class GatesFailedError(InputError):
    """The gates stopped the failover before any destructive step (F22)."""


class StepError(DrError):
    """A step failed; what it did before failing is in the DR state."""


class FinishedError(DrError):
    """The run finished already (its report is stored): nothing is done again."""


@dataclass
class RunInfo:
    """Who runs what: the same for an Airflow run (its run id, the triggering user) and for drctl."""

    run_id: str
    by: str                              # "airflow:dr_failover", "drctl:alice"
    triggered_by: str | None             # the user who triggered it (F31 compares the approver with them)
    triggered_at: datetime
    kind: str = "failover"               # failover | failback | drill

    def __post_init__(self) -> None:
        if self.triggered_at.tzinfo is None:
            raise InputError("triggered_at needs a time zone")


def kind_of(request: FailoverRequest, failback: bool = False) -> str:
    return "drill" if request.mode == "drill" else ("failback" if failback else "failover")


def steps_of(kind: str) -> tuple[str, ...]:
    return {"failover": FAILOVER_STEPS, "failback": FAILBACK_STEPS, "drill": DRILL_STEPS}[kind]


@dataclass
class StepRunner:
    topology: Topology
    request: FailoverRequest
    info: RunInfo
    store: DrStateStore = None  # type: ignore[assignment]
    state: DrState | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = DrStateStore.for_topology(self.topology)
        if self.info.kind == "failback" and self.request.target_site != "primary":
            raise InputError("a failback goes back to the primary site: target_site must be primary")
        if self.info.kind == "failover" and self.request.mode == "drill":
            raise InputError("mode drill runs a drill, not a failover")

    # -- the DR state --

    def _change(self, change: Callable[[DrState, datetime], DrState]) -> DrState:
        """Apply a transition by compare-and-set; on a conflict (another writer: replication_health confirming a
        fencing), re-read and decide again. The transition itself refuses when another run holds the state."""
        for attempt in range(CONFLICT_TRIES):
            try:
                self.state, _ = self.store.apply(change)
                return self.state
            except StateConflictError:
                if attempt == CONFLICT_TRIES - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def read(self) -> DrState:
        state, _ = self.store.read()
        if state is None:
            state, _ = self.store.create_if_absent()
        self.state = state
        return state

    def begin(self) -> dict[str, Any]:
        """Take the DR state for this run (a retry of the same run resumes). Refused when another run holds it,
        when this run finished already, or when the environment is already on the target site (nothing to do:
        `noop`)."""
        state = self.read()
        finished = state.finished(self.info.run_id)
        if finished is not None and not state.is_held_by(self.info.run_id):
            raise FinishedError(f"run {self.info.run_id} finished already ({finished.outcome} at "
                                f"{finished.ended_at.isoformat()}): trigger a new run to do it again")
        if (self.info.kind != "drill" and not state.is_held_by(self.info.run_id)
                and state.active_site == self.request.target_site):
            return {"noop": True, "active_site": state.active_site, "fencing_epoch": state.fencing_epoch,
                    "detail": f"{self.topology.environment} is already on {state.active_site}: nothing to do"}
        self._change(lambda s, at: s.acquire(self.info.run_id, self.info.by, self.info.kind,
                                             self.request.target_site, self.request.mode, at=at))
        return {"noop": False, "active_site": self.state.active_site, "from_site": self.from_site}

    @property
    def from_site(self) -> str:
        op = self.state.operation if self.state else None
        return op.from_site if op is not None else "primary"

    def detail(self, name: str) -> Any:
        op = self.state.operation if self.state else None
        step = op.step(name) if op is not None else None
        return step.detail if step is not None and step.status == "done" else None

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        state = self.read()
        if not state.is_held_by(self.info.run_id):
            finished = state.finished(self.info.run_id)
            if finished is not None:
                raise FinishedError(f"run {self.info.run_id} finished already ({finished.outcome}): step {name} is "
                                    f"not run again")
            holder = state.holder.run_id if state.holder else "no run"
            raise StateHeldError(f"step {name}: the DR state of {self.topology.environment} is held by {holder}, "
                                 f"not by this run ({self.info.run_id}): stopping without acting")
        done = state.operation.step(name) if state.operation else None
        if done is not None and done.status == "done":
            log.info("step %s: done already at %s (resumed run): not run again", name,
                     done.ended_at.isoformat() if done.ended_at else "?")
            return done.detail
        self._change(lambda s, at: s.step_started(self.info.run_id, name, at=at))
        t0 = time.monotonic()
        try:
            detail = fn()
        except Exception as err:
            error = {"error": f"{type(err).__name__}: {err}"}
            with contextlib.suppress(Exception):
                self._change(lambda s, at: s.step_failed(self.info.run_id, name, error, at=at))
            raise
        self._change(lambda s, at: s.step_done(self.info.run_id, name, detail, at=at))
        log.info("step %s done in %.1f s", name, time.monotonic() - t0)
        if os.environ.get(TEST_KILL_AFTER) == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return detail


# -- the steps ----------------------------------------------------------------------------------------------------


def step_evidence(run: StepRunner) -> dict[str, Any]:
    from multicloud_dr.failover.gather import gather_evidence

    return gather_evidence(run.topology, run.request.target_site, store=run.store)


def _plans(run: StepRunner) -> list:
    from multicloud_dr.failover.data import plan_data

    evidence = run.detail("evidence") or {}
    lags = {c["name"]: c.get("value") for c in (evidence.get("replication") or {}).get("checks", [])
            if c["name"].split("/", 1)[0] in ("mysql_replica", "postgres_standby")}
    return plan_data(run.topology, run.request.mode, lags, drill=run.info.kind == "drill")


def step_gates(run: StepRunner) -> dict[str, Any]:
    from multicloud_dr.failover.gather import approval_markdown, decide

    evidence = run.detail("evidence") or {}
    if run.info.kind == "failback":
        return _failback_gates(run)
    else:
        plans = _plans(run)
        uses_replica = any(p.method == "promote" for p in plans)
    decision = decide(run.topology, evidence, force=run.request.force, reason=run.request.reason,
                      uses_replica=uses_replica)
    body = approval_markdown(run.topology, evidence, decision, target_site=run.request.target_site,
                             mode=run.request.mode, triggered_by=run.info.triggered_by)
    detail = {"decision": decision.to_dict(), "plans": [_plan_dict(p) for p in plans], "approval_md": body,
              "dry_run": run.request.dry_run}
    if not decision.passed:
        raise GatesFailedError(f"{decision.summary()}; nothing was changed (force with a reason to go on anyway)")
    return detail


def _failback_gates(run: StepRunner) -> dict[str, Any]:
    """A failback needs the old primary back: every database of it reachable, and fenced (fenced again here:
    idempotent, so a primary whose fencing was still pending is fenced now) until its data is current. A
    PostgreSQL database whose standby the failover promoted needs its old primary rebuilt as a standby of DR
    (failover/pg_failback.py): that gate is not lifted by `force`, because going on would lose DR's writes or
    leave two primaries."""
    from multicloud_dr.failover.gates import Gate, GateDecision
    from multicloud_dr.failover.pg_failback import check_rebuilt
    from multicloud_dr.failover.site_fence import fence_site

    results = fence_site(run.topology, "primary", standby_ok=True)
    gates = [Gate(f"primary/{r['database']}/{r['engine']}", not r.get("pending"),
                  ("a standby in recovery: takes no writes" if r.get("in_recovery") else "reachable and fenced")
                  if not r.get("pending") else f"{r['conn_id']} unreachable: bring it back first")
             for r in results]
    hard = []
    promoted = _promoted_postgres(run)
    for db in run.topology.databases:
        if db.engine == "postgres" and promoted.get(db.name):
            ok, why = check_rebuilt(db.name, db.primary_conn_id, promoted[db.name])
            hard.append(Gate(f"postgres_rebuilt/{db.name}", ok, why))
    gates += hard
    ok = all(g.ok for g in gates)
    if not ok and run.request.force and any(not g.ok for g in hard):
        raise GatesFailedError("; ".join(f"{g.name}: {g.detail}" for g in hard if not g.ok) +
                               "; force does not lift this (DR's writes would be lost); nothing was changed")
    if ok and run.state.fencing.site == "primary" and run.state.fencing.status == "pending":
        run._change(lambda s, at: s.fence_confirmed("primary", None, at=at))
    decision = GateDecision(ok or run.request.force, tuple(gates), forced=run.request.force and not ok,
                            reason=run.request.reason if run.request.force else None)
    body = "\n".join([f"# Failback of `{run.topology.environment}` to the primary", "", decision.summary(), "",
                      *[f"- {g.name}: {'ok' if g.ok else '**no**'}: {g.detail}" for g in gates]]) + "\n"
    if not decision.passed:
        raise GatesFailedError(f"{decision.summary()}; nothing was changed")
    return {"decision": decision.to_dict(), "plans": [], "approval_md": body, "dry_run": run.request.dry_run}


def _plan_dict(plan: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(plan)


def step_approval(run: StepRunner, approved_by: str | None, how: str, reason: str | None = None) -> dict[str, Any]:
    """Record who approved (F31: in a four-eyes environment not the user who triggered the run)."""
    if how == "pre-approved":
        if not run.request.pre_approved or run.info.kind != "drill":
            raise InputError("only a drill with pre_approved set may run without an approver")
        return {"approved_by": None, "how": "pre-approved by the run's Params (drill)", "reason": reason,
                "at": datetime.now(UTC).isoformat()}
    name = check_approver(run.topology.environment, run.topology.failover.four_eyes_environments,
                          run.info.triggered_by, approved_by or "")
    return {"approved_by": name, "how": how, "reason": reason, "at": datetime.now(UTC).isoformat()}


def step_fence(run: StepRunner) -> dict[str, Any]:
    """Fence the site the operation leaves: every database of it read-only and its app accounts locked, its app
    scaled down when its cluster answers. Unreachable: the fencing is recorded as pending, and whoever sees the
    site again fences it first (replication_health, F30)."""
    from multicloud_dr.failover.site_fence import fence_site

    if run.info.kind == "drill":
        return {"skipped": True, "detail": "a drill fences nothing: the live sites keep running"}
    site = run.from_site if run.info.kind != "failback" else "dr"
    # Failing back, a DR standby that the failover did not promote takes no writes: fenced as it is.
    results = fence_site(run.topology, site, standby_ok=run.info.kind == "failback")
    pending = [r["conn_id"] for r in results if r.get("pending")]
    rid = run.info.run_id
    if pending:
        run._change(lambda s, at: s.fence_pending(site, rid, at=at))
    else:
        run._change(lambda s, at: s.fence_confirmed(site, rid, at=at))
    app = _scale_down_quietly(run.topology, site)
    return {"site": site, "status": "pending" if pending else "confirmed", "fencing_epoch": run.state.fencing_epoch,
            "databases": results, "app": app,
            "detail": (f"{site} unreachable ({', '.join(pending)}): fencing pending, done as soon as it answers"
                       if pending else f"{site} fenced, epoch {run.state.fencing_epoch}")}


def _scale_down_quietly(topology: Topology, site: str) -> dict[str, Any] | None:
    app = topology.sites.get(site).app if topology.sites.get(site) else None
    if app is None or not app.kubernetes_conn_id:
        return None
    from multicloud_dr.kube.site import scale_down_if_reachable

    try:
        return scale_down_if_reachable(app, site=site)
    except DrError as err:   # the old site's cluster may be gone with it: its app is fenced by its database
        return {"scaled_down": False, "detail": str(err)}


def step_dr_stack(run: StepRunner) -> dict[str, Any]:
    """Bring the failover stack up through the provisioning library when its outputs say it is not up."""
    config = run.topology.failover.dr_stack
    if run.info.kind == "drill":
        return {"skipped": True, "detail": "a drill applies no Terraform"}
    if config is None:
        return {"skipped": True, "detail": "no failover.dr_stack in the topology: the DR site is always on"}
    from multicloud_dr.terraform import provision
    from multicloud_dr.terraform.plan_store import PlanStore
    from multicloud_dr.terraform.stacks import StackRef, TerraformSettings, run_key

    settings = TerraformSettings.load(run.topology)
    ref = StackRef(config.cloud, config.environment, config.stack)
    outputs = provision.stack_outputs(ref, settings)
    if outputs.values:
        return {"skipped": True, "stack": ref.label, "detail": f"{ref.label} is up ({len(outputs.values)} outputs)"}
    from multicloud_dr.connections.wasb import blob_service_client

    store = PlanStore.from_service(blob_service_client(settings.storage_conn_id), settings.plan_location)
    plan = provision.plan_stack(ref, settings, "apply", store, run_key(run.info.run_id))
    approval = run.detail("approval") or {}
    if not plan.changes:
        return {"skipped": True, "stack": ref.label, "detail": "the plan has no changes"}
    applied = provision.apply_stack(ref, settings, store, plan.plan_url, plan.plan_sha256,
                                    applied_by={"approved_by": approval.get("approved_by") or approval.get("how")},
                                    action="apply")
    return {"skipped": False, "stack": ref.label, "applied": applied.to_dict()}


def step_data(run: StepRunner) -> dict[str, Any]:
    if run.info.kind == "failback":
        return _resync(run)
    from multicloud_dr.failover.data import DataPlan, run_data

    gates = run.detail("gates") or {}
    fence = run.detail("fence") or {}
    reachable = fence.get("status") == "confirmed"
    outcomes = []
    for raw in gates.get("plans", []):
        plan = DataPlan(**raw)
        if plan.method == "skip":
            outcomes.append({**raw, "already": True, "detail": plan.reason})
            continue
        outcomes.append(run_data(run.topology, plan, mode=run.request.mode, primary_reachable=reachable))
    return {"outcomes": outcomes}


def _resync(run: StepRunner) -> dict[str, Any]:
    """Failback's data step: each MySQL database copied back to the primary (failover/resync.py), each PostgreSQL
    database whose standby the failover promoted given back to the rebuilt old primary (failover/pg_failback.py)."""
    from multicloud_dr.failover.pg_failback import promote_back
    from multicloud_dr.failover.resync import resync_primary

    holders = _data_holders(run)
    outcomes = []
    for db in run.topology.mysql_databases():
        source = holders.get(db.name) or db.dr_conn_id
        if source is None:
            continue
        outcomes.append({"method": "resync", **resync_primary(run.topology, db, source_conn_id=source)})
    promoted = _promoted_postgres(run)
    for db in run.topology.databases:
        if db.engine == "postgres" and promoted.get(db.name):
            outcomes.append(promote_back(db.name, db.primary_conn_id, promoted[db.name]))
    return {"outcomes": outcomes}


def _data_holders(run: StepRunner) -> dict[str, str]:
    """database -> the DR connection that holds its data (the last failover's data step), from its report."""
    report = latest_report(run.topology, run.store, kind="failover")
    holders: dict[str, str] = {}
    for outcome in (report or {}).get("data", []):
        if outcome.get("method") in ("promote", "restore"):
            holders.setdefault(outcome["database"], outcome["target"])
    return holders


def _promoted_postgres(run: StepRunner) -> dict[str, str]:
    """PostgreSQL database -> the DR connection the last failover promoted for it, from its report."""
    report = latest_report(run.topology, run.store, kind="failover")
    return {o["database"]: o["target"] for o in (report or {}).get("data", [])
            if o.get("engine") == "postgres" and o.get("method") == "promote"}


def _data_outcome(run: StepRunner) -> dict[str, Any] | None:
    """The data step's outcome for the (first) MySQL database that was promoted or restored: what the target
    site's app must use after this step."""
    data = run.detail("data") or {}
    for outcome in data.get("outcomes", []):
        if outcome.get("engine", "mysql") == "mysql" and outcome.get("method") in ("promote", "restore"):
            return outcome
    return None


def _app_config(app: Any, outcome: dict[str, Any] | None, *, with_database_name: bool = False) -> dict[str, str]:
    """The app's ConfigMap values pointed at the server that holds the data now (the promoted replica, the
    restored server); `with_database_name`: at the database's name there too (a drill's `<db>_drill`)."""
    from multicloud_dr.connections import get_endpoint

    config = dict(app.config)
    if outcome and outcome.get("target") and app.config_map:
        endpoint = get_endpoint(outcome["target"])
        config.update({"DB_HOST": endpoint.host, "DB_PORT": str(endpoint.port)})
        if with_database_name:
            config["DB_NAME"] = outcome["database"]
    return config


def step_app(run: StepRunner) -> dict[str, Any]:
    site = run.request.target_site
    app = run.topology.site(site).app
    if app is None or not app.kubernetes_conn_id:
        return {"skipped": True, "detail": f"site {site} has no app with a kubernetes_conn_id in the topology"}
    if run.info.kind == "drill":
        return _drill_app(run, app)
    from multicloud_dr.kube.site import SiteApp

    outcome = _data_outcome(run)
    target = outcome.get("target") if outcome else None
    try:
        with SiteApp(app.model_copy(update={"config": _app_config(app, outcome)}), site) as site_app:
            result = site_app.scale_up()
    except DrError as err:   # a rollout that never gets ready: its pods fail their readiness (health) checks
        raise StepError(f"{err}; traffic was not switched (F33): fix the app and run the failover again, it "
                        f"resumes here") from None
    return {"site": site, "database": target, **result}


def _drill_app(run: StepRunner, app: Any) -> dict[str, Any]:
    """A drill's app: a copy of the DR deployments in the drill namespace, pointed at the scratch database and
    rolled out (kube/drill_app.py); the live DR deployments are not touched."""
    from multicloud_dr.kube.drill_app import copy_deployments, drill_namespace
    from multicloud_dr.kube.site import SiteApp

    drill = run.topology.failover.drill
    namespace = drill_namespace(app, drill.namespace_suffix)
    copies = copy_deployments(app, namespace, drill.namespace_suffix)
    config = _app_config(app, _data_outcome(run), with_database_name=True)
    copy = app.model_copy(update={"namespace": namespace, "config": config, "replicas": drill.drill_replicas})
    try:
        with SiteApp(copy, run.request.target_site) as site_app:
            result = site_app.scale_up()
    except DrError as err:
        raise StepError(f"the drill's copy of the app in namespace {namespace} did not roll out: {err}") from None
    return {"site": run.request.target_site, "drill_namespace": namespace, "database": config.get("DB_NAME"),
            "copies": copies, **result}


def step_health(run: StepRunner) -> dict[str, Any]:
    """F33: the target site's app healthy within the timeout, else the run fails here and no traffic moves."""
    from multicloud_dr.kube.health import wait_healthy

    app = run.topology.site(run.request.target_site).app
    if app is None:
        return {"skipped": True, "detail": f"site {run.request.target_site} has no app: nothing to probe"}
    try:
        result = wait_healthy(app.health_conn_id, path=app.health_path,
                              timeout=run.topology.failover.health_timeout_seconds,
                              name=f"site {run.request.target_site}")
    except DrError as err:
        raise StepError(f"{err}; traffic was not switched (F33): fix the app and run the failover again, it "
                        f"resumes here") from None
    return result.to_dict()


def step_traffic(run: StepRunner) -> dict[str, Any]:
    if run.info.kind == "drill":
        from multicloud_dr.failover.drill_dns import drill_record_upsert

        return drill_record_upsert(run.topology, run.request.target_site)
    from multicloud_dr.traffic.switch import switch_traffic

    return switch_traffic(run.topology, run.request.target_site).to_dict()


def step_verify(run: StepRunner) -> dict[str, Any]:
    """Every layer read back on the target; then the target is the active site (the fencing rule holds: the
    site left behind is fenced or pending, state/dr_state.py)."""
    target = run.request.target_site
    if run.info.kind == "drill":
        from multicloud_dr.failover.drill_dns import drill_record_status

        status = drill_record_status(run.topology)
        if status.get("site") != target:
            raise StepError(f"the drill record points at {status.get('site')}, not {target}")
        return {"traffic": status}
    from multicloud_dr.traffic.switch import traffic_status

    report = traffic_status(run.topology).to_dict()
    wrong = [layer["provider"] for layer in report["layers"] if layer.get("site") != target]
    if wrong:
        raise StepError(f"read back, {', '.join(wrong)} do not send users to {target}: run the failover again "
                        f"(the traffic step finishes what is left)")
    run._change(lambda s, at: s.set_active(target, run.info.run_id, at=at))
    return {"traffic": report, "active_site": run.state.active_site}


def step_unfence(run: StepRunner) -> dict[str, Any]:
    """Failback's last step: the primary (active again) takes writes; its app accounts unlocked."""
    from multicloud_dr.failover.site_fence import fence_site

    results = fence_site(run.topology, "primary", unfence=True)
    run._change(lambda s, at: s.unfence("primary", run.info.run_id, at=at))
    return {"site": "primary", "databases": results}


STEP_FUNCTIONS: dict[str, Callable[[StepRunner], Any]] = {
    "evidence": step_evidence, "gates": step_gates, "fence": step_fence, "dr_stack": step_dr_stack,
    "data": step_data, "app": step_app, "health": step_health, "traffic": step_traffic, "verify": step_verify,
    "unfence": step_unfence,
}


def run_named_step(run: StepRunner, name: str) -> Any:
    """One step by name (approval excepted: it needs the approver, `record_approval`)."""
    if name == "evidence":
        begun = run.begin()
        if begun["noop"]:
            return begun
    if name not in STEP_FUNCTIONS:
        raise InputError(f"no step {name!r}; steps are {', '.join(STEP_FUNCTIONS)} and approval")
    return run.step(name, lambda: STEP_FUNCTIONS[name](run))


def record_approval(run: StepRunner, approved_by: str | None, how: str, reason: str | None = None) -> Any:
    return run.step("approval", lambda: step_approval(run, approved_by, how, reason))


# -- the end: report, release, teardown -----------------------------------------------------------------------------


def build_report(run: StepRunner, outcome: str) -> dict[str, Any]:
    from multicloud_dr.failover.report import DataOutcome, FailoverReport, StepTiming

    state = run.read()
    op = state.operation
    steps = []
    for s in op.steps if op else ():
        steps.append(StepTiming(s.name, s.started_at or run.info.triggered_at, s.ended_at, s.status,
                                _short(s.name, s.detail)))
    moved = [o for o in ((run.detail("data") or {}).get("outcomes") or []) if o.get("method") in ("promote", "restore")]
    data = [DataOutcome(o["method"], o["target"], o["database"], o.get("manifest"), _time(o.get("snapshot_at")),
                        _time(o.get("applied_at")), _time(o.get("primary_last_commit_at")), o.get("point_in_time"))
            for o in moved]
    approval = run.detail("approval")
    fence = run.detail("fence") or {}
    verify = run.detail("verify") or {}
    report = FailoverReport(
        environment=run.topology.environment, target_site=run.request.target_site, mode=run.request.mode,
        triggered_at=run.info.triggered_at,
        outage_at=run.info.triggered_at if run.request.mode == "emergency" else None,
        steps=tuple(steps), data=tuple(data), approvals=(approval,) if approval else (),
        fencing={"site": fence.get("site"), "status": state.fencing.status, "epoch": state.fencing_epoch,
                 "confirmed": state.fencing.status == "confirmed"},
        traffic=(verify.get("traffic") if verify else None))
    body = report.to_dict()
    body.update({"kind": run.info.kind, "run_id": run.info.run_id, "by": run.info.by, "outcome": outcome,
                 "triggered_by": run.info.triggered_by, "forced": bool(run.request.force),
                 "reason": run.request.reason, "dry_run": run.request.dry_run,
                 "active_site": state.active_site})
    body["data"] = [{**d, **_extra(o)} for d, o in zip(body["data"], moved, strict=True)]
    return body


def _extra(outcome: dict) -> dict:
    return {k: outcome.get(k) for k in ("rows", "tables", "already", "engine", "restore_drill_report") if k in outcome}


def _short(name: str, detail: Any) -> Any:
    """What the report keeps of a step's detail: the approval body and the raw evidence stay in the DR state."""
    if not isinstance(detail, dict):
        return detail
    drop = {"approval_md", "replication", "databases", "rollout", "scale", "status", "planned"}
    return {k: v for k, v in detail.items() if k not in drop}


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)   # manifests keep the server's UTC times without a zone


def finish(run: StepRunner, outcome: str = "succeeded") -> dict[str, Any]:
    """Write the report next to the DR state, then release the state. A retry after the release returns the
    stored report and writes nothing."""
    import json

    state = run.read()
    blob = report_blob(run.store, run.topology.environment, run.info.run_id)
    if not state.is_held_by(run.info.run_id):
        if state.finished(run.info.run_id) is not None and blob.exists():
            return json.loads(blob.download_blob().readall())
        raise StateHeldError(f"run {run.info.run_id} does not hold the DR state: no report to write")
    report = build_report(run, outcome)
    blob.upload_blob(json.dumps(report, indent=2, default=str).encode(), overwrite=True)
    run._change(lambda s, at: s.release(run.info.run_id, outcome, at=at))
    report["report_url"] = f"wasb://{blob.container_name}/{blob.blob_name}"
    log.info("%s %s of %s to %s: %s; RTO %s s, RPO %s s; report %s", run.request.mode, run.info.kind,
             run.topology.environment, run.request.target_site, outcome, report.get("rto_seconds"),
             report.get("rpo_seconds"), report["report_url"])
    return report


def report_blob(store: DrStateStore, environment: str, run_id: str):
    """`<state location>/reports/<environment>/<run id>.json`, in the DR state's container."""
    safe = re.sub(r"[^A-Za-z0-9_.:+-]", "_", run_id)
    prefix = store.url.path.rsplit("/", 1)[0]
    return _container(store).get_blob_client(f"{prefix}/{REPORT_PREFIX}/{environment}/{safe}.json")


def _container(store: DrStateStore):
    from multicloud_dr.connections.wasb import blob_service_client

    storage = store._storage
    service = storage if hasattr(storage, "get_container_client") else blob_service_client(storage)
    return service.get_container_client(store.url.bucket)


def latest_report(topology: Topology, store: DrStateStore, kind: str = "failover") -> dict[str, Any] | None:
    """The newest stored report of a succeeded operation of `kind` (its data targets tell failback the source)."""
    import json

    state = store.read()[0]
    if state is None:
        return None
    for entry in reversed(state.history):
        if entry.kind == kind and entry.outcome == "succeeded":
            blob = report_blob(store, topology.environment, entry.run_id)
            if blob.exists():
                return json.loads(blob.download_blob().readall())
    return None


def fail(run: StepRunner, error: BaseException) -> dict[str, Any] | None:
    """A run that stopped for good (gates, rejected approval, a dry run) releases the state with its report;
    a failed step after the first destructive one keeps the state held, so a re-run resumes (F32)."""
    state = run.read()
    if not state.is_held_by(run.info.run_id):
        return None
    op = state.operation
    destructive = {"fence", "data", "app", "traffic", "verify", "unfence"}
    if op and any(s.name in destructive and s.status in ("done", "running", "failed") for s in op.steps):
        return None
    return finish(run, "failed" if not isinstance(error, GatesFailedError) else "cancelled")


def teardown_drill(run: StepRunner) -> dict[str, Any]:
    """Always run at the end of a drill: the scratch databases dropped, the drill record deleted, the state freed.
    Each part is idempotent and runs even when an earlier one fails; the first failure is raised at the end."""
    from multicloud_dr.failover.data import DataPlan, drop_drill_data
    from multicloud_dr.failover.drill_dns import drill_record_delete

    done: dict[str, Any] = {"databases": [], "record": None}
    errors: list[str] = []
    plans = [DataPlan(**p) for p in ((run.detail("gates") or {}).get("plans") or [])]
    if not plans:
        with contextlib.suppress(Exception):
            plans = _plans(run)
    for plan in plans:
        if plan.method == "skip":
            continue
        try:
            done["databases"].append(drop_drill_data(run.topology, plan))
        except Exception as err:  # go on: every part of the teardown runs
            errors.append(f"{plan.target_database}: {err}")
    try:
        done["record"] = drill_record_delete(run.topology)
    except Exception as err:
        errors.append(f"drill record: {err}")
    try:
        done["app"] = _remove_drill_app(run)
    except Exception as err:
        errors.append(f"drill app: {err}")
    state = run.read()
    if state.is_held_by(run.info.run_id):
        op = state.operation
        ok = op is not None and all(op.step(s) is not None and op.step(s).status == "done" for s in DRILL_STEPS)
        done["report"] = finish(run, "succeeded" if ok else "failed")
    if errors:
        raise StepError(f"drill teardown left something behind: {'; '.join(errors)}")
    return done


def _remove_drill_app(run: StepRunner) -> dict[str, Any] | None:
    app = run.topology.site(run.request.target_site).app
    if app is None or not app.kubernetes_conn_id:
        return None
    from multicloud_dr.kube.drill_app import drill_namespace, remove_drill_copy

    suffix = run.topology.failover.drill.namespace_suffix
    return remove_drill_copy(app, drill_namespace(app, suffix), suffix)


# -- all steps in order: drctl failover / failback ------------------------------------------------------------------


def run_all(run: StepRunner, *, approved_by: str | None, approval_reason: str | None,
            on_step: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
    """Every step of the run's kind in order, then the report (drctl). Gates that stop the run, and a dry run,
    release the state with the report; a step that fails after a destructive one keeps it held, so running the
    same command again resumes (F32). A drill's teardown always runs."""
    begun = run.begin()
    if begun["noop"]:
        return {"noop": True, **begun}
    tell = on_step or (lambda name, detail: None)
    try:
        for name in steps_of(run.info.kind):
            if name == "approval":
                if run.request.dry_run:
                    return {"dry_run": True, **finish(run, "cancelled")}
                how = "pre-approved" if run.info.kind == "drill" and run.request.pre_approved else "drctl"
                if how == "drctl" and not approved_by:
                    raise InputError("an approval is needed: give --approve-as NAME --reason TEXT (another person "
                                     "in a four-eyes environment), or --dry-run to see the evidence only")
                detail = record_approval(run, approved_by, how, approval_reason)
            else:
                detail = run.step(name, lambda name=name: STEP_FUNCTIONS[name](run))
            tell(name, detail)
    except BaseException as err:
        if run.info.kind == "drill":
            with contextlib.suppress(Exception):
                teardown_drill(run)
        else:
            with contextlib.suppress(Exception):
                fail(run, err)
        raise
    if run.info.kind == "drill":
        return teardown_drill(run)["report"]
    return finish(run, "succeeded")
