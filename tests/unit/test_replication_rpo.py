"""The current achievable RPO from a set of check results, and the exit code drctl gives it."""

from __future__ import annotations

from multicloud_dr.replication.health import plan_checks, report_from_results
from multicloud_dr.replication.result import CheckResult, summarize


def _r(name: str, status: str, value, unit: str = "seconds") -> CheckResult:
    return CheckResult(name, status, value, 10, "detail", unit=unit)


def test_rpo_is_the_worst_delay_and_ignores_counts():
    report = summarize([_r("a", "ok", 2.0), _r("b", "ok", 7.5), _r("c", "ok", 0, unit="chunks")], 60, "t", 0.1)
    assert report.rpo_seconds == 7.5 and report.status == "ok" and report.exit_code == 0


def test_rpo_over_the_target_is_a_breach_even_when_each_check_passed():
    report = summarize([_r("a", "ok", 2.0), _r("b", "ok", 90.0)], 60, "t", 0.1)
    assert report.status == "breach" and report.exit_code == 1


def test_a_breach_outranks_a_check_that_could_not_run():
    report = summarize([_r("a", "breach", 40.0), _r("b", "error", None)], 600, "t", 0.1)
    assert report.status == "breach" and report.exit_code == 1
    assert "a breach" in report.headline() and "b error" in report.headline()


def test_a_check_that_could_not_run_exits_2():
    report = summarize([_r("a", "ok", 1.0), _r("b", "error", None)], 600, "t", 0.1)
    assert report.status == "error" and report.exit_code == 2 and report.rpo_seconds == 1.0


def test_a_mapped_task_that_never_reported_counts_as_an_error():
    specs = [{"name": "a", "kind": "mysql_replica", "threshold": 10},
             {"name": "b", "kind": "dms", "threshold": 10}]
    report = report_from_results(specs, [_r("a", "ok", 1.0).to_dict(), None], 600, "t")
    b = next(c for c in report.checks if c.name == "b")
    assert b.status == "error" and "without a result" in b.detail
    assert report.exit_code == 2


def test_the_shipped_topology_plans_every_kind_of_check():
    from multicloud_dr.config import load_topology

    kinds = {s["kind"] for s in plan_checks(load_topology())}
    assert kinds == {"mysql_replica", "postgres_standby", "dms", "consistency", "backup_freshness"}
