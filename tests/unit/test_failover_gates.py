"""F22: the failover's gates stop it before any destructive step on a stale or missing backup, a stopped
replica (lag NULL is a failure, never zero), a replica too far behind or a drifted DR stack, unless forced
with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multicloud_dr.exceptions import InputError
from multicloud_dr.failover.gates import Evidence, Limits, decide_gates, evidence_from_report
from multicloud_dr.replication.result import BREACH, OK, CheckResult, HealthReport

LIMITS = Limits(backup_age_seconds=93600, replica_lag_seconds={"mysql_replica/petclinic": 30})
GOOD = Evidence({"petclinic": 3600.0}, {"mysql_replica/petclinic": 0.0})


def test_fresh_backup_caught_up_replica_and_no_drift_pass():
    decision = decide_gates(GOOD, LIMITS)
    assert decision.passed and not decision.failed and decision.summary() == "all 3 gates passed"


@pytest.mark.parametrize(("evidence", "failed", "words"), [
    (Evidence({"petclinic": 200000.0}, {"mysql_replica/petclinic": 0.0}), "backup/petclinic", "200000 s old"),
    (Evidence({"petclinic": None}, {"mysql_replica/petclinic": 0.0}), "backup/petclinic", "no verified backup"),
    (Evidence({"petclinic": 60.0}, {"mysql_replica/petclinic": None}), "mysql_replica/petclinic", "never zero"),
    (Evidence({"petclinic": 60.0}, {"mysql_replica/petclinic": 45.0}), "mysql_replica/petclinic", "45.0 s behind"),
    (Evidence({"petclinic": 60.0}, {"mysql_replica/petclinic": 0.0}, drifted_stacks=("azure/dr/failover",)),
     "drift", "azure/dr/failover"),
])
def test_each_gate_stops_the_failover_and_says_why(evidence, failed, words):
    decision = decide_gates(evidence, LIMITS)
    assert not decision.passed and [g.name for g in decision.failed] == [failed]
    assert words in decision.summary() and decision.summary().startswith("stopped by 1 gate")


def test_force_needs_a_reason_and_the_reason_is_recorded():
    stale = Evidence({"petclinic": None}, {"mysql_replica/petclinic": None})
    with pytest.raises(InputError, match="force needs a reason"):
        decide_gates(stale, LIMITS, force=True, reason="  ")
    decision = decide_gates(stale, LIMITS, force=True, reason="primary region down, RPO accepted by CTO")
    assert decision.passed and decision.forced and len(decision.failed) == 2
    assert decision.to_dict()["reason"] == "primary region down, RPO accepted by CTO"


def test_a_restore_is_not_gated_by_the_replica():
    decision = decide_gates(Evidence({"petclinic": 60.0}, {"mysql_replica/petclinic": None}), LIMITS,
                            uses_replica=False)
    assert decision.passed and [g.name for g in decision.gates] == ["backup/petclinic", "drift"]


@given(age=st.one_of(st.none(), st.floats(0, 1e6)), lag=st.one_of(st.none(), st.floats(0, 1e4)),
       drift=st.booleans())
def test_the_failover_passes_only_when_every_measured_value_is_within_its_limit(age, lag, drift):
    evidence = Evidence({"petclinic": age}, {"mysql_replica/petclinic": lag}, drifted_stacks=("x",) if drift else ())
    within = age is not None and age <= 93600 and lag is not None and lag <= 30 and not drift
    assert decide_gates(evidence, LIMITS).passed == within


def test_evidence_is_read_from_the_replication_checks():
    checks = [CheckResult("mysql_replica/petclinic", BREACH, None, 30, "replica SQL thread stopped"),
              CheckResult("backup_freshness/petclinic", OK, 120.0, 93600, "fresh"),
              CheckResult("dms/petclinic-cdc", OK, 2.0, 60, "running")]
    report = HealthReport(None, 86400, BREACH, checks, "2026-12-02T00:00:00Z", 0.1)
    evidence, limits = evidence_from_report(report)
    assert evidence.backup_age_seconds == {"petclinic": 120.0}
    assert evidence.replica_lag_seconds == {"mysql_replica/petclinic": None}
    assert limits == Limits(93600, {"mysql_replica/petclinic": 30})
    decision = decide_gates(evidence, limits)
    assert not decision.passed and "replica SQL thread stopped" in decision.summary()


def test_the_approver_reads_the_verdict_first_and_every_failed_gate():
    from multicloud_dr.failover.evidence import evidence_markdown

    decision = decide_gates(Evidence({"petclinic": None}, {"mysql_replica/petclinic": 0.0}), LIMITS)
    body = evidence_markdown(environment="production", target_site="dr", mode="emergency", gates=decision,
                             replication={"rpo_seconds": 4.0, "rpo_target_seconds": 86400, "checks": [
                                 {"name": "dms/x", "status": "ok", "value": 2, "threshold": 60, "detail": "a|b"}]},
                             traffic={"site": "primary", "layers": [{"provider": "route53", "site": "primary",
                                                                     "record": "app.example.com"}]},
                             health={"dr": {"healthy": False, "detail": "HTTP 503"}}, triggered_by="alice")
    lines = body.splitlines()
    assert lines[0] == "# Emergency failover of `production` to `dr`"
    assert lines[2].startswith("**STOPPED BY GATES**: stopped by 1 gate(s): backup/petclinic: no verified backup")
    assert "| backup/petclinic | **no** | no verified backup" in body
    assert "Current achievable RPO: 4 s (target 86400 s)." in body
    assert "a\\|b" in body                                  # a pipe in a detail cannot break the table
    assert "| route53 | primary | record=app.example.com |" in body and "| dr | **no** | HTTP 503 |" in body
