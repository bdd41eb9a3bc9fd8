"""What a replication check returns, and how a set of them becomes the current achievable RPO."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "breach", "error"]
OK: Status = "ok"
BREACH: Status = "breach"
ERROR: Status = "error"   # the check could not run (unreachable server, missing connection)

# Exit codes of `drctl replication check`. A breach outranks a check that could not run: a known
# loss of data is the louder fact, and the JSON names both.
EXIT_BY_STATUS = {OK: 0, BREACH: 1, ERROR: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str                    # e.g. "mysql_replica/petclinic"
    status: Status
    value: float | None          # what was measured (seconds, or a count; see unit)
    threshold: float | None
    detail: str                  # one line for a person: what was seen and, on a breach, the cause
    unit: str = "seconds"        # "seconds" are delays that bound the RPO; other units do not
    seconds: float = 0.0         # how long the check took
    facts: dict[str, Any] = field(default_factory=dict)   # raw measurements for dashboards

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**data)


def judge(name: str, value: float, threshold: float, detail: str, **kwargs: Any) -> CheckResult:
    """ok when the measured value is within the threshold, else a breach."""
    status = OK if value <= threshold else BREACH
    return CheckResult(name, status, round(value, 3), threshold, detail, **kwargs)


@dataclass(frozen=True)
class HealthReport:
    rpo_seconds: float | None    # the worst measured delay; None when nothing could be measured
    rpo_target_seconds: float
    status: Status
    checks: list[CheckResult]
    measured_at: str             # ISO time, UTC
    seconds: float               # wall time of the whole run

    @property
    def exit_code(self) -> int:
        return EXIT_BY_STATUS[self.status]

    def headline(self) -> str:
        rpo = "unknown" if self.rpo_seconds is None else f"{self.rpo_seconds:.1f} s"
        parts = [f"RPO {rpo} (target {self.rpo_target_seconds:.0f} s): {self.status}"]
        parts += [f"{c.name} {c.status}: {c.detail}" for c in self.checks if c.status != OK]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"rpo_seconds": self.rpo_seconds, "rpo_target_seconds": self.rpo_target_seconds,
                "status": self.status, "measured_at": self.measured_at, "seconds": round(self.seconds, 3),
                "checks": [c.to_dict() for c in self.checks]}


def summarize(checks: Iterable[CheckResult], rpo_target_seconds: float, measured_at: str,
              seconds: float) -> HealthReport:
    """The current achievable RPO is the worst delay any check measured; over the target is a breach. A database
    whose binlog archive is whole and within its threshold (`binlog_archive/<db>` ok) is recovered from its
    backup plus the archive: its backup's age then bounds no loss, and only the archive's age counts."""
    checks = list(checks)
    archived = {c.name.split("/", 1)[1] for c in checks if c.name.startswith("binlog_archive/") and c.status == OK}
    delays = [c.value for c in checks if c.unit == "seconds" and c.value is not None
              and not (c.name.startswith("backup_freshness/") and c.name.split("/", 1)[1] in archived)]
    rpo = round(max(delays), 3) if delays else None
    if any(c.status == BREACH for c in checks) or (rpo is not None and rpo > rpo_target_seconds):
        status: Status = BREACH
    elif any(c.status == ERROR for c in checks) or rpo is None:
        status = ERROR
    else:
        status = OK
    return HealthReport(rpo, rpo_target_seconds, status, checks, measured_at, seconds)
