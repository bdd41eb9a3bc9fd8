"""The gates a failover passes before its first destructive step (fencing, promoting, restoring).

F22 (failover with a stale backup or a lagging or stopped replica): the failover stops before any destructive
step unless forced, with a reason that the report records. A replica whose lag cannot be measured (MySQL's
Seconds_Behind_Master NULL: its SQL or IO thread stopped; a PostgreSQL standby not replaying) counts as a
failure, never as zero lag.

`decide_gates` is a pure function of the evidence, so tests can drive every combination; `evidence_from_report`
reads the evidence out of the replication checks (replication/health.py) the failover runs first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from multicloud_dr.exceptions import InputError
from multicloud_dr.replication.result import OK, HealthReport

REPLICA_KINDS = ("mysql_replica", "postgres_standby")


@dataclass(frozen=True)
class Evidence:
    """What the gates look at (gathered before the approval, shown to the approver)."""

    backup_age_seconds: dict[str, float | None] = field(default_factory=dict)   # database -> age; None: no backup
    replica_lag_seconds: dict[str, float | None] = field(default_factory=dict)  # check -> lag; None: stopped/unknown
    replica_detail: dict[str, str] = field(default_factory=dict)
    drifted_stacks: tuple[str, ...] = ()                                         # "azure/dr/failover", ...
    drift_detail: str = "no drift"                  # what the drift check said when nothing drifted (or not checked)


@dataclass(frozen=True)
class Limits:
    backup_age_seconds: float
    replica_lag_seconds: dict[str, float]      # check name -> the most lag it may have


@dataclass(frozen=True)
class Gate:
    name: str           # "backup/petclinic", "mysql_replica/petclinic", "drift"
    ok: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool        # the failover may go on (every gate ok, or forced)
    gates: tuple[Gate, ...]
    forced: bool = False
    reason: str | None = None

    @property
    def failed(self) -> tuple[Gate, ...]:
        return tuple(g for g in self.gates if not g.ok)

    def summary(self) -> str:
        if not self.failed:
            return f"all {len(self.gates)} gates passed"
        names = "; ".join(f"{g.name}: {g.detail}" for g in self.failed)
        return f"forced past {len(self.failed)} failed gate(s) ({self.reason}): {names}" if self.forced else \
            f"stopped by {len(self.failed)} gate(s): {names}"

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "forced": self.forced, "reason": self.reason, "summary": self.summary(),
                "gates": [asdict(g) for g in self.gates]}


def decide_gates(evidence: Evidence, limits: Limits, *, force: bool = False, reason: str | None = None,
                 uses_replica: bool = True) -> GateDecision:
    """Every gate on `evidence`. `uses_replica`: the data step promotes a replica (planned, or an emergency
    within the RPO), so its lag gates the failover; a restore from backup is gated by the backup alone."""
    if force and not (reason and reason.strip()):
        raise InputError("force needs a reason (it is recorded in the failover report): give one")
    gates: list[Gate] = []
    for database, age in sorted(evidence.backup_age_seconds.items()):
        if age is None:
            gates.append(Gate(f"backup/{database}", False, "no verified backup: run the mysql_backup DAG (or drctl "
                                                           "backup and drctl verify) first"))
        elif age > limits.backup_age_seconds:
            gates.append(Gate(f"backup/{database}", False, f"the newest verified backup is {age:.0f} s old, more than "
                                                           f"{limits.backup_age_seconds:.0f} s"))
        else:
            gates.append(Gate(f"backup/{database}", True, f"newest verified backup {age:.0f} s old"))
    if uses_replica:
        for check, lag in sorted(evidence.replica_lag_seconds.items()):
            limit = limits.replica_lag_seconds.get(check)
            seen = evidence.replica_detail.get(check, "")
            if lag is None:
                gates.append(Gate(check, False, f"replica lag unknown: stopped or not replicating (a NULL lag is a "
                                                f"failure, never zero){': ' + seen if seen else ''}"))
            elif limit is not None and lag > limit:
                gates.append(Gate(check, False, f"replica {lag:.1f} s behind, more than {limit:.0f} s"))
            else:
                gates.append(Gate(check, True, f"replica {lag:.1f} s behind"))
    if evidence.drifted_stacks:
        gates.append(Gate("drift", False, f"the DR stack drifted from its Terraform code: "
                                          f"{', '.join(evidence.drifted_stacks)} (run terraform_drift, review)"))
    else:
        gates.append(Gate("drift", True, evidence.drift_detail))
    ok = all(g.ok for g in gates)
    return GateDecision(ok or force, tuple(gates), forced=force and not ok, reason=reason if force else None)


def evidence_from_report(report: HealthReport, drifted_stacks: tuple[str, ...] = (),
                         drift_detail: str = "no drift") -> tuple[Evidence, Limits]:
    """The gates' evidence and limits from a replication health report (its checks' values and thresholds)."""
    ages: dict[str, float | None] = {}
    lags: dict[str, float | None] = {}
    details: dict[str, str] = {}
    lag_limits: dict[str, float] = {}
    backup_limit = float("inf")
    for check in report.checks:
        kind, _, subject = check.name.partition("/")
        if kind == "backup_freshness":
            ages[subject] = check.value if check.status == OK or check.value is not None else None
            if check.threshold is not None:
                backup_limit = min(backup_limit, check.threshold)
        elif kind in REPLICA_KINDS:
            lags[check.name] = check.value
            details[check.name] = check.detail
            if check.threshold is not None:
                lag_limits[check.name] = check.threshold
    return (Evidence(ages, lags, details, tuple(drifted_stacks), drift_detail),
            Limits(backup_limit, lag_limits))
