"""`make failover-demo` as a test: on the lab, the sample database backed up, the primary's MariaDB killed by its
pid, dr_failover run in emergency mode by a real `airflow standalone` (scheduler, triggerer, workers, REST API),
triggered by `admin` and approved through the HITL REST API by `approver` (the demo's environment needs four
eyes), the report printed last. The demo checks the report's traffic entries against moto and the fake
Cloudflare, and the DR tables against the manifest's row counts; it puts the lab back at the end."""

from __future__ import annotations

import json

import pytest

from multicloud_dr.lab.failover_demo import run_failover_demo

from .conftest import QUIET_DAG_PROCESSOR

pytestmark = pytest.mark.timeout(900)


def test_failover_demo_fails_over_the_killed_primary_and_reports_rto_and_rpo(lab, capsys, monkeypatch):
    for key, value in QUIET_DAG_PROCESSOR.items():   # the demo's standalone inherits this environment
        monkeypatch.setenv(key, value)
    assert run_failover_demo(), capsys.readouterr().err[-4000:]
    out = capsys.readouterr().out.strip().splitlines()
    report = json.loads(out[-1])
    assert report["outcome"] == "succeeded" and report["mode"] == "emergency" and report["active_site"] == "dr"
    assert report["triggered_by"] == "admin"
    assert report["approvals"][0]["approved_by"] == "approver"          # a second user, through the HITL API
    (data,) = report["data"]
    assert data["method"] == "restore" and data["target"] == "mysql_dr"
    assert report["fencing"]["status"] == "pending"                    # the primary was dead when it ran
    assert [layer["site"] for layer in report["traffic"]["layers"]] == ["dr", "dr", "dr"]
    steps = {s["name"]: s for s in report["steps"]}
    assert all(steps[name]["status"] == "done" for name in
               ("evidence", "gates", "approval", "fence", "dr_stack", "data", "app", "health", "traffic", "verify"))
    assert report["rto_seconds"] > 0 and report["rpo_seconds"] >= 0
    not_data = sum(s["seconds"] for name, s in steps.items() if name not in ("data", "approval"))
    print(f"failover demo: RTO {report['rto_seconds']} s, RPO {report['rpo_seconds']} s; steps but data and the "
          f"wait for the approver: {not_data:.1f} s; {({n: s['seconds'] for n, s in steps.items()})}")
