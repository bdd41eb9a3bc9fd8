"""The failover's gates and approval body on hand-made evidence (failover/gather.py), and the gathering's promise
that a part that hangs or fails is recorded, never raised, within its time limit. No servers: the evidence dicts
are shaped as gather_evidence writes them (the lab's shapes: tests/integration/test_failover_evidence.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from multicloud_dr.config import Topology
from multicloud_dr.exceptions import ConfigError, InputError
from multicloud_dr.failover import gather
from multicloud_dr.failover.gather import approval_markdown, decide, gather_evidence

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
TOPOLOGY = Topology.model_validate(SHIPPED)
MANIFEST = "wasb://dr-backups/mysql/petclinic/20261201T020000Z/manifest.json"


def check(name, status="ok", value=0.5, threshold=30.0, detail="fine", **facts):
    unit = "chunks" if name.startswith("consistency/") else "seconds"
    return {"name": name, "status": status, "value": value, "threshold": threshold, "detail": detail, "unit": unit,
            "seconds": 0.1, "facts": facts}


def evidence(**changes):
    """What gather_evidence returns on a healthy lab: every check ok, a backup an hour old, no drift."""
    checks = {
        "mysql_replica/petclinic": check("mysql_replica/petclinic", sql_running="Yes", io_running="Yes"),
        "consistency/petclinic": check("consistency/petclinic", value=0, threshold=0),
        "postgres_standby/petclinic": check("postgres_standby/petclinic", value=0.01, threshold=5.0),
        "dms/petclinic-cdc": check("dms/petclinic-cdc", value=2.0, threshold=60.0),
        "backup_freshness/petclinic": check("backup_freshness/petclinic", value=3600.0, threshold=93600.0),
    }
    checks.update(changes.pop("checks", {}))
    data = {
        "target_site": "dr", "environment": "lab", "gathered_at": "2026-12-02T10:00:00+00:00",
        "replication": {"rpo_seconds": 3600.0, "rpo_target_seconds": 86400, "status": "ok",
                        "measured_at": "2026-12-02T10:00:00+00:00", "seconds": 1.5,
                        "checks": [c for c in checks.values() if c is not None]},
        "backups": {"petclinic": {"manifest": MANIFEST, "backup_id": "petclinic/20261201T020000Z",
                                  "snapshot_at": "2026-12-02T08:59:00+00:00", "stored_at": "2026-12-02T09:00:00+00:00",
                                  "age_seconds": 3600.0, "rows": 25267, "gtid": "0-1-67", "older_verified": 0}},
        "primary_databases": {"mysql/petclinic": {"conn_id": "mysql_primary", "reachable": True,
                                                  "detail": "10.11.19-MariaDB, binlog on, gtid 0-1-67"}},
        "health": {"primary": {"healthy": True, "status_code": 200, "url": "http://a/health", "detail": "healthy"},
                   "dr": {"healthy": True, "status_code": 200, "url": "http://b/health", "detail": "healthy"}},
        "traffic": {"site": "primary", "layers": [{"provider": "route53", "record": "app.petclinic.example.com",
                                                   "target": "app-primary.lab.localhost", "site": "primary"}]},
        "dns_ttls": {"app.petclinic.example.com": {"provider": "route53", "ttl_seconds": 300,
                                                   "switch_writes_ttl_seconds": 60, "detail": "1 record set(s)"}},
        "dr_stack": {"configured": True, "stack": "azure/dr/failover", "source": "Airflow Variable x",
                     "published": True, "up": True, "outputs": {"app_gateway_ip": "10.1.2.3"},
                     "detail": "1 output(s) published"},
        "drift": {"checked": False, "status": "unknown", "drifted": [], "stack": "azure/dr/failover",
                  "detail": gather.DRIFT_UNKNOWN},
        "last_drill": {"failover": {"run_id": "drill__1", "by": "carol", "outcome": "succeeded", "target_site": "dr",
                                    "started_at": "2026-11-30T10:00:00+00:00", "ended_at": "2026-11-30T10:04:00+00:00"},
                       "restore": {"petclinic": None}},
        "errors": [], "gathered_in_seconds": 2.5,
    }
    data.update(changes)
    return data


def gates_of(decision):
    return {g.name: g for g in decision.gates}


def test_a_healthy_lab_passes_every_gate():
    decision = decide(TOPOLOGY, evidence(), force=False, reason=None, uses_replica=True)
    assert decision.passed and not decision.forced and not decision.failed
    assert set(gates_of(decision)) == {"backup/petclinic", "mysql_replica/petclinic", "postgres_standby/petclinic",
                                       "drift"}


def test_a_stopped_sql_thread_fails_even_though_its_newest_heartbeat_is_young():
    """F22: the stopped replica's check carries the newest replicated heartbeat's age (1.2 s, well within 30 s);
    that is what a failover would lose now, not a lag to promote on: the gate fails as an unknown lag."""
    stopped = check("mysql_replica/petclinic", "breach", 1.2, detail="replica SQL thread not running (io=Yes sql=No; "
                    "stopped by hand); Seconds_Behind_Master is NULL", sql_running="No", io_running="Yes",
                    seconds_behind_master=None)
    decision = decide(TOPOLOGY, evidence(checks={"mysql_replica/petclinic": stopped}), force=False, reason=None,
                      uses_replica=True)
    assert not decision.passed
    assert [g.name for g in decision.failed] == ["mysql_replica/petclinic"]
    assert "never zero" in decision.failed[0].detail and "SQL thread not running" in decision.failed[0].detail

    restore = decide(TOPOLOGY, evidence(checks={"mysql_replica/petclinic": stopped}), force=False, reason=None,
                     uses_replica=False)
    assert restore.passed, "a restore from backup is gated by the backup, not the replica"


def test_a_replica_too_far_behind_fails_with_its_lag():
    behind = check("mysql_replica/petclinic", "breach", 45.0, detail="heartbeat not applied after 30.0 s")
    decision = decide(TOPOLOGY, evidence(checks={"mysql_replica/petclinic": behind}), force=False, reason=None,
                      uses_replica=True)
    assert [g.name for g in decision.failed] == ["mysql_replica/petclinic"]
    assert "45.0 s behind, more than 30 s" in decision.failed[0].detail


@pytest.mark.parametrize(("freshness", "words"), [
    (check("backup_freshness/petclinic", "breach", 200000.0, 93600.0), "200000 s old, more than 93600 s"),
    (check("backup_freshness/petclinic", "breach", None, 93600.0), "no verified backup"),
    (check("backup_freshness/petclinic", "error", None, 93600.0, detail="cannot run: ServiceRequestError: refused"),
     "could not be checked: cannot run: ServiceRequestError: refused"),
])
def test_a_stale_missing_or_unreadable_backup_fails_its_gate(freshness, words):
    decision = decide(TOPOLOGY, evidence(checks={"backup_freshness/petclinic": freshness}), force=False, reason=None,
                      uses_replica=False)
    assert not decision.passed and [g.name for g in decision.failed] == ["backup/petclinic"]
    assert words in decision.failed[0].detail


@pytest.mark.parametrize(("backup", "words"), [
    (None, "no verified backup"),
    ({"error": "ServiceRequestError: refused"}, "could not be checked: ServiceRequestError: refused"),
    ({"manifest": MANIFEST, "age_seconds": 100000.0}, "100000 s old"),
])
def test_the_backup_a_restore_would_take_gates_too(backup, words):
    """The freshness check passed, but the backup section (what the restore takes) is missing, unreadable or old."""
    decision = decide(TOPOLOGY, evidence(backups={"petclinic": backup}), force=False, reason=None, uses_replica=False)
    assert [g.name for g in decision.failed] == ["backup/petclinic"] and words in decision.failed[0].detail


def test_a_drifted_dr_stack_fails_and_unknown_drift_does_not():
    drifted = {"checked": True, "status": "drift", "drifted": ["azure/dr/failover"], "detail": "2 to change"}
    decision = decide(TOPOLOGY, evidence(drift=drifted), force=False, reason=None, uses_replica=True)
    assert [g.name for g in decision.failed] == ["drift"] and "azure/dr/failover" in decision.failed[0].detail
    assert decide(TOPOLOGY, evidence(), force=False, reason=None, uses_replica=True).passed


def test_no_replication_report_at_all_fails_every_gate_it_would_have_fed():
    """The checks could not run (or the part timed out): nothing says the backup is fresh or the replica caught up."""
    decision = decide(TOPOLOGY, evidence(replication={"error": "TimeoutError: no answer within 25 s"}), force=False,
                      reason=None, uses_replica=True)
    assert {g.name for g in decision.failed} == {"backup/petclinic", "mysql_replica/petclinic",
                                                 "postgres_standby/petclinic"}
    assert "TimeoutError" in gates_of(decision)["backup/petclinic"].detail


def test_a_check_missing_from_the_report_is_unknown_not_passed():
    decision = decide(TOPOLOGY, evidence(checks={"postgres_standby/petclinic": None}), force=False, reason=None,
                      uses_replica=True)
    assert [g.name for g in decision.failed] == ["postgres_standby/petclinic"]


def test_force_needs_a_reason_and_then_passes_recording_it():
    bad = evidence(checks={"backup_freshness/petclinic": check("backup_freshness/petclinic", "breach", None, 93600.0)})
    with pytest.raises(InputError, match="force needs a reason"):
        decide(TOPOLOGY, bad, force=True, reason=" ", uses_replica=True)
    decision = decide(TOPOLOGY, bad, force=True, reason="region down; CTO accepts the RPO", uses_replica=True)
    assert decision.passed and decision.forced and decision.reason == "region down; CTO accepts the RPO"
    assert decision.to_dict()["summary"].startswith("forced past 1 failed gate(s) (region down; CTO accepts the RPO)")


def test_the_approval_shows_every_section_the_approver_decides_on():
    data = evidence()
    decision = decide(TOPOLOGY, data, force=False, reason=None, uses_replica=True)
    body = approval_markdown(TOPOLOGY, data, decision, target_site="dr", mode="emergency", triggered_by="alice")
    assert body.startswith("# Emergency failover of `lab` to `dr`\n\n**GATES PASSED**")
    for heading in ("## Gates", "## Replication", "## Traffic", "## Application health", "## Primary databases",
                    "## Backups", "## DR stack", "## Drift", "## Last drill", "## DNS TTLs"):
        assert heading + "\n" in body, heading
    assert f"| petclinic | `{MANIFEST}` | 60 min | 2026-12-02T08:59:00+00:00 | 25267 |" in body
    assert "| azure/dr/failover | up | 1 output(s) published: app_gateway_ip=10.1.2.3 |" in body
    assert "| azure/dr/failover | **unknown** |" in body and "terraform_drift" in body
    assert "| failover drill | succeeded | 2026-11-30T10:04:00+00:00 | run drill__1 by carol |" in body
    assert "| restore drill of petclinic | **none recorded** |" in body
    assert "| app.petclinic.example.com | route53 | 300 s |" in body
    assert "Triggered by `alice`." in body and "## Could not be read" not in body


def test_the_approval_of_a_dead_primary_says_what_could_not_be_read_and_stays_one_table_row_each():
    error = "OperationalError: (2003, \"Can't connect | to MySQL\nserver\")"
    data = evidence(primary_databases={"mysql/petclinic": {"conn_id": "mysql_primary", "reachable": False,
                                                           "detail": error}},
                    traffic={"error": "EndpointConnectionError: Could not connect"}, backups={"petclinic": None},
                    dr_stack={"configured": True, "stack": "azure/dr/failover", "published": False, "up": False,
                              "detail": "no outputs published for azure/dr/failover"},
                    last_drill=None, errors=[f"primary_databases/mysql/petclinic: {error}"])
    data["health"]["primary"] = {"healthy": False, "detail": "no answer: Connection refused", "url": None}
    decision = decide(TOPOLOGY, data, force=False, reason=None, uses_replica=False)
    body = approval_markdown(TOPOLOGY, data, decision, target_site="dr", mode="emergency", triggered_by=None)
    assert "**STOPPED BY GATES**" in body
    assert "| mysql/petclinic | **no** | OperationalError: (2003, \"Can't connect \\| to MySQL server\") |" in body
    assert "| traffic layers | **could not be read**: EndpointConnectionError: Could not connect |" in body
    assert "| petclinic | **none verified** |" in body
    assert "| azure/dr/failover | **not up** (the dr_stack step applies it) |" in body
    assert "| - | **none recorded** |" in body and "## Could not be read" in body
    assert "| primary | **no** | no answer: Connection refused |" in body


# -- gathering: never raises, bounded in time ---------------------------------------------------------------------


def test_a_hanging_part_is_recorded_as_unanswered_and_a_failing_one_as_its_error(monkeypatch):
    def refused(topology):
        raise RuntimeError("https://user:s3cret@api.example.com/?sig=abc123&x=1 refused")

    monkeypatch.setattr(gather, "read_replication", lambda topology: time.sleep(3) or {"checks": []})
    monkeypatch.setattr(gather, "read_traffic", refused)
    monkeypatch.setattr(gather, "read_dns_ttls", lambda topology: {})
    monkeypatch.setattr(gather, "read_dr_stack", lambda topology: {"configured": False, "detail": "always on"})
    monkeypatch.setattr(gather, "read_last_drill", lambda topology, store: None)
    monkeypatch.setattr(gather, "read_newest_backup", lambda topology, name: None)
    monkeypatch.setattr(gather, "read_database", lambda engine, conn_id: {"conn_id": conn_id, "reachable": True,
                                                                         "detail": "up"})
    monkeypatch.setattr(gather, "read_app_health", lambda topology, site: {"healthy": True, "detail": "healthy"})

    started = time.monotonic()
    found = gather_evidence(TOPOLOGY, "dr", timeout_seconds=0.5)
    assert time.monotonic() - started < 2.0
    assert found["replication"]["error"].startswith("TimeoutError: no answer within 0.5 s")
    assert found["traffic"]["error"].startswith("RuntimeError: ")
    assert "s3cret" not in found["traffic"]["error"] and "abc123" not in found["traffic"]["error"]
    assert found["backups"] == {"petclinic": None} and found["health"]["dr"]["healthy"] is True
    assert {"replication", "traffic"} <= {e.split(":")[0] for e in found["errors"]}
    assert set(found) >= {"replication", "backups", "primary_databases", "health", "traffic", "dns_ttls", "dr_stack",
                          "drift", "last_drill", "errors", "gathered_in_seconds"}
    # the shipped topology has no failover stack: nothing to check for drift, and nothing that blocks
    assert found["drift"]["status"] == "not configured" and found["drift"]["drifted"] == []
    # and the gates read the unanswered replication report as unknown, never as a pass
    assert not decide(TOPOLOGY, found, force=False, reason=None, uses_replica=True).passed


def test_a_target_site_the_topology_lacks_is_bad_input():
    with pytest.raises(ConfigError, match="no site 'moon'"):
        gather_evidence(TOPOLOGY, "moon")
