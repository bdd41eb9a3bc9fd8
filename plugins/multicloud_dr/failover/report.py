"""The failover report: what each step did and when, and the RTO and RPO the failover actually achieved.

- RTO: from the trigger (the run's start, or the moment the outage was declared) to the moment every traffic
  layer was read back on the DR site (the verify step's end). Not to "the switch call returned".
- RPO: how much of what the primary committed is not in DR. For a promotion, the primary's last commit known
  (its heartbeat or its last GTID's time, when the primary could still be read) minus the last one the
  promoted replica applied; for a restore, the outage time minus the backup's snapshot time (the moment
  mysqldump's consistent snapshot was taken). None when it cannot be known; the report says why.

Pure: it computes from what the steps recorded, so the numbers can be checked by tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Method = Literal["promote", "restore"]


@dataclass(frozen=True)
class StepTiming:
    name: str
    started_at: datetime
    ended_at: datetime | None
    status: str = "done"             # done | failed | skipped
    detail: Any = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else round((self.ended_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True)
class DataOutcome:
    method: Method
    target: str                       # the DR database's connection id
    database: str
    manifest: str | None = None       # restore: the backup's manifest URL
    snapshot_at: datetime | None = None           # restore: the backup's consistent snapshot
    applied_at: datetime | None = None            # promote: the last commit the replica applied
    primary_last_commit_at: datetime | None = None  # promote: the primary's last commit known
    point_in_time: dict[str, Any] | None = None   # restore with the binlog archive: the replay (snapshot_at is its end)


@dataclass(frozen=True)
class FailoverReport:
    environment: str
    target_site: str
    mode: str
    triggered_at: datetime
    outage_at: datetime | None        # when the primary was last known good (emergency); None: planned
    steps: tuple[StepTiming, ...]
    data: tuple[DataOutcome, ...] = ()
    approvals: tuple[dict[str, Any], ...] = ()
    fencing: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] | None = None

    def step(self, name: str) -> StepTiming | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def rto_seconds(self) -> float | None:
        verify = self.step("verify")
        if verify is None or verify.ended_at is None or verify.status != "done":
            return None
        return round((verify.ended_at - self.triggered_at).total_seconds(), 3)

    def rpo_of(self, outcome: DataOutcome) -> tuple[float | None, str]:
        if outcome.method == "restore":
            if outcome.snapshot_at is None:
                return None, "the backup's snapshot time is unknown"
            end = self.outage_at or self.triggered_at
            basis = ("outage time minus the last transaction replayed from the binlog archive" if outcome.point_in_time
                     else "outage time minus the backup's snapshot time")
            return max(0.0, round((end - outcome.snapshot_at).total_seconds(), 3)), basis
        if outcome.applied_at is None or outcome.primary_last_commit_at is None:
            return None, "the primary's last commit could not be read (it is down): at most the replica's lag " \
                         "at the last replication check"
        return max(0.0, round((outcome.primary_last_commit_at - outcome.applied_at).total_seconds(), 3)), \
            "the primary's last commit minus the last one the replica applied"

    @property
    def rpo_seconds(self) -> float | None:
        values = [self.rpo_of(d)[0] for d in self.data]
        return None if not values or any(v is None for v in values) else max(values)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {
            "environment": self.environment, "target_site": self.target_site, "mode": self.mode,
            "triggered_at": iso(self.triggered_at), "outage_at": iso(self.outage_at),
            "rto_seconds": self.rto_seconds, "rpo_seconds": self.rpo_seconds,
            "steps": [{"name": s.name, "status": s.status, "started_at": iso(s.started_at),
                       "ended_at": iso(s.ended_at), "seconds": s.seconds, "detail": s.detail} for s in self.steps],
            "data": [{"method": d.method, "target": d.target, "database": d.database, "manifest": d.manifest,
                      "rpo_seconds": self.rpo_of(d)[0], "rpo_basis": self.rpo_of(d)[1],
                      **({"snapshot_at": iso(d.snapshot_at), "point_in_time": d.point_in_time} if d.point_in_time
                         else {})} for d in self.data],
            "approvals": list(self.approvals), "fencing": self.fencing, "traffic": self.traffic,
        }
