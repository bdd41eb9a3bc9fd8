"""The Disaster recovery page's verdict, strip and HTML from a status (monitoring/status.py, page.py), no servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from multicloud_dr.config import load_topology
from multicloud_dr.monitoring.page import chart, render
from multicloud_dr.monitoring.status import backup_strip, verdict

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def topology():
    return load_topology(ROOT / "include" / "topology.yaml")


def check(name, status="ok", value=1.0, threshold=30.0, detail="fine"):
    return {"name": name, "status": status, "value": value, "threshold": threshold, "detail": detail,
            "unit": "seconds"}


def latest(*checks, rpo=4.0):
    """A replication_health event's extra: `checks` over every check the topology plans, the others ok."""
    from multicloud_dr.replication.health import plan_checks

    given = {c["name"]: c for c in checks}
    planned = [given.pop(spec["name"], None) or check(spec["name"], threshold=spec.get("threshold") or 30.0)
               for spec in plan_checks(load_topology(ROOT / "include" / "topology.yaml"))]
    return {"rpo_seconds": rpo, "rpo_target_seconds": 300, "status": "ok", "measured_at": NOW.isoformat(),
            "checks": planned + list(given.values())}


def test_a_healthy_lab_is_ready_with_its_rpo_and_the_predicted_restore_as_rto(topology):
    said = verdict(topology, latest(check("mysql_replica/petclinic", value=0.5),
                                    check("backup_freshness/petclinic", value=3600, threshold=93600)),
                   [], {"petclinic": {"seconds": 200, "predicted_seconds": 360}}, "dr")
    assert said["ready"] is True
    assert said["text"] == "Ready to fail over to dr: RPO 4 s, RTO ~6 min"


def test_a_stopped_replica_blocks_the_verdict_in_the_failovers_words(topology):
    # A stopped SQL thread still reports the age of the newest heartbeat it applied: small, and no excuse.
    stopped = check("mysql_replica/petclinic", status="breach", value=0.4, detail="io=Yes sql=No")
    said = verdict(topology, latest(stopped, check("backup_freshness/petclinic", value=60, threshold=93600)),
                   [], {}, "dr")
    assert said["ready"] is False
    assert said["text"].startswith("Not ready to fail over to dr: mysql_replica/petclinic: replica lag unknown")
    assert {g["name"]: g["ok"] for g in said["gates"]}["mysql_replica/petclinic"] is False


def test_a_stale_backup_blocks_and_no_checks_is_not_ready(topology):
    stale = check("backup_freshness/petclinic", status="breach", value=200_000, threshold=93600)
    said = verdict(topology, latest(stale, check("mysql_replica/petclinic")), [], {}, "dr")
    assert not said["ready"] and "backup/petclinic" in said["text"]
    assert verdict(topology, None, [], {}, "dr")["ready"] is False


def test_the_nightly_strip_marks_each_night_ok_failed_or_missing():
    runs = [{"run_id": "a", "state": "success", "logical_date": (NOW - timedelta(days=1)).isoformat(), "link": "/a"},
            {"run_id": "b", "state": "failed", "logical_date": (NOW - timedelta(days=2)).isoformat(), "link": "/b"},
            {"run_id": "c", "state": "failed", "logical_date": NOW.isoformat(), "link": "/c"},
            {"run_id": "d", "state": "success", "logical_date": NOW.isoformat(), "link": "/d"}]
    strip = backup_strip(runs, NOW, nights=4)
    assert [(n["night"][-2:], n["status"], n["link"]) for n in strip] == [
        ("30", "missing", None), ("01", "failed", "/b"), ("02", "ok", "/a"), ("03", "ok", "/d")]


def test_the_page_shows_the_status_and_escapes_what_it_did_not_write():
    status = {
        "environment": "lab", "generated_at": NOW.isoformat(), "seconds": 0.2,
        "verdict": {"ready": False, "text": "Not ready to fail over to dr: <script>x</script>"},
        "rpo_seconds": 4.0, "rpo_target_seconds": 300, "rto_target_seconds": 900,
        "rpo": {"events": 2, "measured_at": NOW.isoformat(), "link": "/dags/replication_health/runs/r/tasks/rpo",
                "history": [{"at": (NOW - timedelta(hours=1)).isoformat(), "rpo_seconds": 3.0, "link": "/x"},
                            {"at": NOW.isoformat(), "rpo_seconds": 4.0, "link": "/y"}]},
        "checks": [{**check("mysql_replica/petclinic", status="breach", value=45.0), "link": "/l"}],
        "backups": {"databases": {"petclinic": None}, "nights": []},
        "drills": {"restore": {"petclinic": None}, "failover": None},
        "state": {"active_site": "dr", "fencing_epoch": 3, "fencing": {"site": "primary", "status": "confirmed"},
                  "last": {}},
        "drift": {"stacks": [], "runs": []}, "approvals": [],
    }
    html = render(status)
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "data-dr='verdict' class='verdict blocked'" in html
    assert "<b data-dr='rpo_seconds'>4.0 s</b>" in html
    assert "data-dr-check='mysql_replica/petclinic'" in html and "class=\"breach\"" in html
    assert "<b data-dr='active_site'>dr</b>" in html and "<b data-dr='fencing_epoch'>3</b>" in html
    assert "no verified backup" in html
    svg = chart(status["rpo"]["history"], 300, NOW, 24, "24h")
    assert svg.count("<circle") == 2 and "stroke-dasharray" in svg and 'href="/y"' in svg
