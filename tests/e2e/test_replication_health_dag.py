"""replication_health run by Airflow (`dag.test()`) on the lab: every check mapped, the RPO recorded as
an asset event (the history), and a breach failing the run and notifying by e-mail through the SMTP
provider's notifier to a real SMTP server started by the test (aiosmtpd on loopback), and through the
Slack provider's webhook notifier to a fake webhook at the HTTP boundary (no Slack here)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
CHECKS = {"mysql_replica/petclinic", "consistency/petclinic", "postgres_standby/petclinic", "dms/petclinic-cdc",
          "backup_freshness/petclinic"}


@pytest.fixture(scope="module")
def verified_backup(verified_petclinic_backup):
    return verified_petclinic_backup("e2e-health", datetime(2026, 11, 22, 3, 0, tzinfo=UTC))[0]


@pytest.fixture
def health_topology(verified_backup, smtp_server, slack_webhook, tmp_path, monkeypatch):
    received = smtp_server.messages
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["backup"]["location"] = str(verified_backup)
    data["notify"] = {"smtp_conn_id": "smtp_dr", "email_to": ["oncall@example.com"],
                      "email_from": "dr@example.com", "slack_webhook_conn_id": "slack_dr"}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DR", smtp_server.connection)
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DR", slack_webhook.connection)
    slack_webhook.payloads.clear()
    received.clear()
    return received


def _states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"):
                str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def _asset_events(dag_run) -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == dag_run.run_id)).all()
        return [dict(e.extra) for e in events]


def _run(logical_date: datetime):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "replication_health.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["replication_health"]
    for each in dag.tasks:
        each.retries = 0   # a check that cannot run would otherwise wait for its retry
    return dag.test(logical_date=logical_date)


def test_healthy_lab_records_the_rpo_as_an_asset_event(airflow_db, health_topology, slack_webhook):
    dag_run = _run(datetime(2026, 11, 22, 6, 0, tzinfo=UTC))
    states = _states(dag_run)
    assert str(dag_run.state) == "success", states
    assert {f"check[{name}]" for name in CHECKS} <= states.keys(), states   # one mapped task per check
    assert states["fence_returning_primary"] == "success"        # first of all; nothing pending on the lab
    [event] = _asset_events(dag_run)
    assert event["status"] == "ok" and isinstance(event["rpo_seconds"], float | int)
    assert {c["name"] for c in event["checks"]} == CHECKS
    assert health_topology == [] and slack_webhook.payloads == [], "no breach, so no e-mail and no Slack message"


def test_a_breach_fails_only_its_check_and_notifies_by_email_and_slack(lab, airflow_db, health_topology,
                                                                        slack_webhook):
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
        try:
            dag_run = _run(datetime(2026, 11, 22, 6, 5, tzinfo=UTC))
        finally:
            cur.execute("START SLAVE SQL_THREAD")
    states = _states(dag_run)
    assert str(dag_run.state) == "failed", states
    assert states["check[mysql_replica/petclinic]"] == "failed"
    for other in CHECKS - {"mysql_replica/petclinic"}:
        assert states[f"check[{other}]"] == "success", (other, states)   # one failing check hides no other
    assert states["rpo"] == "success" and states["alert"] == "failed"

    [event] = _asset_events(dag_run)
    assert event["status"] == "breach"
    breached = {c["name"]: c for c in event["checks"] if c["status"] == "breach"}
    assert list(breached) == ["mysql_replica/petclinic"]

    [mail] = health_topology
    assert mail["To"] == "oncall@example.com" and "replication breach in lab" in mail["Subject"]
    body = mail.get_payload(0).get_payload(decode=True).decode() if mail.is_multipart() else mail.get_payload()
    assert "mysql_replica/petclinic breach" in body and "SQL thread not running" in body

    [message] = slack_webhook.payloads   # the Slack webhook notifier, at the HTTP boundary
    assert message["path"] == "/services/T0000000/B0000000/lab"
    assert "replication breach in lab" in message["text"] and "mysql_replica/petclinic breach" in message["text"]
