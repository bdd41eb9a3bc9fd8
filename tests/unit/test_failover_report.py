"""The failover report's RTO (trigger to traffic verified on DR) and RPO (what committed on the primary is not
in DR: per data outcome, the worst one counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from multicloud_dr.failover.report import DataOutcome, FailoverReport, StepTiming

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def steps(*names_and_seconds: tuple[str, float], status: str = "done") -> tuple[StepTiming, ...]:
    out, at = [], T0
    for name, seconds in names_and_seconds:
        out.append(StepTiming(name, at, at + timedelta(seconds=seconds), status))
        at += timedelta(seconds=seconds)
    return tuple(out)


def test_rto_runs_from_the_trigger_to_traffic_verified_and_restore_rpo_from_the_snapshot():
    report = FailoverReport("prod", "dr", "emergency", T0, outage_at=T0 - timedelta(minutes=10),
                            steps=steps(("evidence", 5), ("fence", 2), ("data", 300), ("traffic", 4), ("verify", 3)),
                            data=(DataOutcome("restore", "mysql_dr", "petclinic", manifest="wasb://x/manifest.json",
                                              snapshot_at=T0 - timedelta(hours=2)),))
    assert report.rto_seconds == 314.0
    assert report.rpo_seconds == 6600.0                  # 2 h before the trigger = 1 h 50 min before the outage
    data = report.to_dict()["data"][0]
    assert data["rpo_basis"] == "outage time minus the backup's snapshot time"


def test_promotion_rpo_is_the_gap_between_the_primarys_last_commit_and_the_replicas():
    outcome = DataOutcome("promote", "mysql_replica", "petclinic", applied_at=T0 - timedelta(seconds=3),
                          primary_last_commit_at=T0 - timedelta(seconds=1))
    report = FailoverReport("prod", "dr", "planned", T0, None, steps(("verify", 1)), data=(outcome,))
    assert report.rpo_seconds == 2.0


def test_unknown_rpo_and_unfinished_verify_are_none_not_zero():
    down = DataOutcome("promote", "mysql_replica", "petclinic", applied_at=T0)      # the primary is gone
    report = FailoverReport("prod", "dr", "emergency", T0, None, steps(("traffic", 1)), data=(down,))
    assert report.rto_seconds is None and report.rpo_seconds is None
    assert "could not be read" in report.to_dict()["data"][0]["rpo_basis"]
    failed = FailoverReport("prod", "dr", "emergency", T0, None, steps(("verify", 1), status="failed"))
    assert failed.rto_seconds is None


def test_the_worst_database_sets_the_rpo():
    report = FailoverReport("prod", "dr", "emergency", T0, T0, steps(("verify", 1)), data=(
        DataOutcome("restore", "mysql_dr", "a", snapshot_at=T0 - timedelta(seconds=60)),
        DataOutcome("restore", "mysql_dr", "b", snapshot_at=T0 - timedelta(seconds=600))))
    assert report.rpo_seconds == 600.0
