"""The provisioning steps, the same for the DAGs and for drctl:

- `init_stack`: `terraform init` of a stack's root with its backend file (a fast check of the root, the
  backend and the credentials; every later step inits again in its own data directory, since the tasks
  may run on different machines);
- `plan_stack`: init, `plan -detailed-exitcode -out`, `show -json` counted per resource type; a plan with
  changes is stored (private blob storage) for the apply;
- `apply_stack`: applies exactly the stored plan, once: its SHA-256 must be the one the plan step reported,
  it must have been planned for the same stack (cloud, environment, stack) and action as is being applied,
  an `applied.json` marker next to it makes a second apply of it a no-op success, and a plan found stale
  because an earlier attempt applied it (and died before writing the marker) is recognised by a fresh
  plan having nothing left to do;
- `stack_outputs`: `output -json`, sensitive outputs dropped;
- `check_drift`: a plan that changes nothing and locks nothing, reported per resource type.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.terraform.approval import approval_text
from multicloud_dr.terraform.credentials import credentials_env
from multicloud_dr.terraform.outputs import split_outputs
from multicloud_dr.terraform.plan_store import PlanIntegrityError, PlanStore, StoredPlan
from multicloud_dr.terraform.runner import OnRunner, StalePlanError, TerraformRunner
from multicloud_dr.terraform.stacks import ACTIONS, StackRef, TerraformSettings
from multicloud_dr.terraform.summary import PlanSummary

log = logging.getLogger(__name__)
PLAN_FILE = "plan.tfplan"


@contextmanager
def open_runner(ref: StackRef, settings: TerraformSettings, on_runner: OnRunner | None = None
                ) -> Iterator[TerraformRunner]:
    """A runner in the stack's root with its credentials and a private data directory, initialised."""
    root = settings.root_dir(ref)
    env = credentials_env(ref.cloud, settings.credentials.get(ref.cloud))
    with TerraformRunner(root, binary=settings.binary, extra_env=env, label=ref.label,
                         lock_timeout_seconds=settings.lock_timeout_seconds,
                         grace_seconds=settings.interrupt_grace_seconds) as runner:
        if on_runner:
            on_runner(runner)
        try:
            runner.init(ref.backend_config)
            yield runner
        finally:
            if on_runner:
                on_runner(None)


@dataclass
class PlanRecord:
    ref: StackRef
    action: str
    changes: bool
    exit_code: int
    summary: PlanSummary
    plan_url: StorageUrl | None
    plan_sha256: str | None
    seconds: float

    def to_dict(self) -> dict:
        """For XCom: what the plan does and where it is; never the plan itself."""
        record = {**self.ref.to_dict(), "stack_label": self.ref.label, "action": self.action,
                  "changes": self.changes, "exit_code": self.exit_code, "summary": self.summary.by_type,
                  "totals": self.summary.totals, "replaced": self.summary.replaced, "deleted": self.summary.deleted,
                  "output_changes": self.summary.output_changes, "summary_md": self.summary.to_markdown(),
                  "plan_url": str(self.plan_url) if self.plan_url else None, "plan_sha256": self.plan_sha256,
                  "seconds": round(self.seconds, 3)}
        record["approval_md"] = approval_text(record) if self.plan_url else None
        return record


def init_stack(ref: StackRef, settings: TerraformSettings, on_runner: OnRunner | None = None) -> dict:
    with open_runner(ref, settings, on_runner) as runner:
        version = runner.version()
    return {**ref.to_dict(), "root": str(settings.root_dir(ref)), "backend_config": ref.backend_config,
            "terraform_version": version}


def plan_stack(ref: StackRef, settings: TerraformSettings, action: str, store: PlanStore | None, run_key: str,
               on_runner: OnRunner | None = None) -> PlanRecord:
    """Plan `action` (plan/apply: the configuration; destroy: everything). A plan with changes is stored
    (when a store is given) under the run's key, for the apply step."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {ACTIONS}")
    destroy = action == "destroy"
    with open_runner(ref, settings, on_runner) as runner:
        plan = runner.plan(runner.data_dir / PLAN_FILE, variables=ref.variables, destroy=destroy)
        url = sha = None
        if plan.changes and store is not None:
            stored = store.put_plan(store.plan_url(ref, run_key), plan.plan_file.read_bytes(), {
                **ref.to_dict(), "action": action, "destroy": destroy, "run_key": run_key,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"), **plan.summary.to_dict()})
            url, sha = stored.url, stored.sha256
            log.info("saved plan stored at %s (sha256 %s)", url, sha)
    return PlanRecord(ref, action, plan.changes, plan.exit_code, plan.summary, url, sha, plan.seconds)


@dataclass
class ApplyRecord:
    ref: StackRef
    plan_url: StorageUrl
    plan_sha256: str
    applied: bool               # False: it had been applied before, nothing was done now
    detail: str
    seconds: float = 0.0
    applied_sha256: str | None = None   # the SHA-256 of the file terraform was given, when it applied one

    def to_dict(self) -> dict:
        return {**self.ref.to_dict(), "plan_url": str(self.plan_url), "plan_sha256": self.plan_sha256,
                "applied": self.applied, "applied_sha256": self.applied_sha256, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


def check_plan_is_for(stored: StoredPlan, ref: StackRef, action: str) -> None:
    """Refuse a stored plan made for another stack or action than the one being applied (a dev plan applied to
    staging, an always-on plan to failover, a destroy plan as an apply): terraform would run it in `ref`'s root
    against `ref`'s state, and the approval was given for what the plan was made for."""
    info = stored.info
    if not info:
        raise PlanIntegrityError(f"there is no record of what the saved plan at {stored.url} was made for: plan "
                                 f"{ref.label} again (trigger the DAG again, or drctl terraform plan)")
    if info.get("plan_sha256") != stored.sha256:
        raise PlanIntegrityError(f"the record next to the saved plan at {stored.url} describes another plan (SHA-256 "
                                 f"{info.get('plan_sha256')}): plan {ref.label} again")
    planned = {k: info.get(k) for k in ("cloud", "environment", "stack", "action")} | {
        "destroy": bool(info.get("destroy"))}
    if planned != {**ref.to_dict(), "action": action, "destroy": action == "destroy"}:
        label = "/".join(str(planned[k]) for k in ("cloud", "environment", "stack"))
        raise PlanIntegrityError(f"the saved plan at {stored.url} is for {label} ({planned['action']}), not "
                                 f"{ref.label} ({action}): nothing was applied; plan {ref.label} ({action}) and "
                                 f"apply that plan")


def apply_stack(ref: StackRef, settings: TerraformSettings, store: PlanStore, plan_url: StorageUrl, plan_sha256: str,
                applied_by: dict[str, Any] | None = None, on_runner: OnRunner | None = None, *,
                action: str = "apply") -> ApplyRecord:
    """Apply exactly the stored plan `plan_url` whose SHA-256 is `plan_sha256`, at most once, if it was planned
    for `ref` and `action` (apply, or destroy: a destroy plan is applied only when asked for by name)."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {ACTIONS}")
    stored = store.get_plan(plan_url, plan_sha256)
    check_plan_is_for(stored, ref, action)
    marker = store.applied(plan_url, plan_sha256)
    if marker is not None:
        detail = f"plan {plan_sha256[:12]} was applied at {marker.get('applied_at')}: nothing to do"
        log.info("%s: %s", ref.label, detail)
        return ApplyRecord(ref, plan_url, plan_sha256, applied=False, detail=detail)
    destroy = bool(stored.info.get("destroy"))
    with open_runner(ref, settings, on_runner) as runner:
        plan_file = runner.data_dir / PLAN_FILE
        plan_file.write_bytes(stored.data)
        plan_file.chmod(0o600)
        try:
            result = runner.apply(plan_file)
            applied, detail, seconds = True, f"applied plan {plan_sha256[:12]}", result.seconds
            applied_sha256 = result.plan_sha256
        except StalePlanError:
            # Either an earlier attempt applied this plan and stopped before the marker, or the state moved on.
            check = runner.plan(runner.data_dir / "check.tfplan", variables=ref.variables, destroy=destroy)
            if check.changes:
                raise StalePlanError(
                    f"the saved plan for {ref.label} is stale: the state changed after it was made and a new plan "
                    f"would still {check.summary.one_line()}; trigger the DAG again for a new plan and approval"
                ) from None
            applied, seconds, applied_sha256 = False, 0.0, None
            detail = (f"plan {plan_sha256[:12]} is stale (the state changed after it was made: an earlier attempt of "
                      f"this apply, or another run) and the stack already matches the configuration: nothing to do")
            log.warning("%s: %s", ref.label, detail)
    store.mark_applied(plan_url, plan_sha256, {
        **ref.to_dict(), "plan_sha256": plan_sha256, "destroy": destroy, "detail": detail,
        "applied_at": datetime.now(UTC).isoformat(timespec="seconds"), **(applied_by or {})})
    if applied:
        log.info("%s: %s", ref.label, detail)
    return ApplyRecord(ref, plan_url, plan_sha256, applied=applied, detail=detail, seconds=seconds,
                       applied_sha256=applied_sha256)


@dataclass
class OutputsRecord:
    ref: StackRef
    values: dict[str, Any] = field(repr=False)
    sensitive: list[str]


def stack_outputs(ref: StackRef, settings: TerraformSettings, on_runner: OnRunner | None = None) -> OutputsRecord:
    with open_runner(ref, settings, on_runner) as runner:
        values, sensitive = split_outputs(runner.output_json())
    log.info("%s: %d output(s): %s%s", ref.label, len(values), ", ".join(values) or "-",
             f"; sensitive, not published: {', '.join(sensitive)}" if sensitive else "")
    return OutputsRecord(ref, values, sensitive)


@dataclass
class DriftRecord:
    ref: StackRef
    drifted: bool
    summary: PlanSummary
    seconds: float

    def to_dict(self) -> dict:
        return {**self.ref.to_dict(), "stack_label": self.ref.label, "status": "drift" if self.drifted else "in_sync",
                "summary": self.summary.by_type, "totals": self.summary.totals,
                "output_changes": self.summary.output_changes, "one_line": self.summary.one_line(),
                "seconds": round(self.seconds, 3)}


def check_drift(ref: StackRef, settings: TerraformSettings, on_runner: OnRunner | None = None) -> DriftRecord:
    """`plan -detailed-exitcode` without taking the state lock (it writes nothing): exit 2 is drift."""
    with open_runner(ref, settings, on_runner) as runner:
        plan = runner.plan(runner.data_dir / PLAN_FILE, variables=ref.variables, lock=False)
    if plan.changes:
        log.warning("%s has drifted from its configuration: %s", ref.label, plan.summary.one_line())
    return DriftRecord(ref, plan.changes, plan.summary, plan.seconds)


@dataclass
class DriftReport:
    ok: bool
    drifted: list[str]
    failed: list[str]
    message: str


def drift_report(expected: Sequence[StackRef], results: Sequence[dict | None]) -> DriftReport:
    """One line per stack: in sync, drift (with the counts), or no result (its plan failed)."""
    by_label = {r["stack_label"]: r for r in results if r}
    lines, drifted, failed = [], [], []
    for ref in expected:
        result = by_label.get(ref.label)
        if result is None:
            failed.append(ref.label)
            lines.append(f"{ref.label}: NO RESULT (its plan failed: see that task's log)")
        elif result["status"] == "drift":
            drifted.append(ref.label)
            by_type = ", ".join(f"{t} +{c['add']}/~{c['change']}/-{c['destroy']}"
                                for t, c in sorted(result["summary"].items()))
            lines.append(f"{ref.label}: DRIFT: {result['one_line']}" + (f" ({by_type})" if by_type else ""))
        else:
            lines.append(f"{ref.label}: in sync")
    head = (f"terraform drift: {len(drifted)} drifted, {len(failed)} without a result, "
            f"{len(expected) - len(drifted) - len(failed)} in sync of {len(expected)} stacks")
    return DriftReport(ok=not drifted and not failed, drifted=drifted, failed=failed,
                       message="\n".join([head, *lines]))

