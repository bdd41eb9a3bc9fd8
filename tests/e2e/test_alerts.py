"""A failing DR job reaches a person: a backup run whose primary does not answer (a stopped server's port:
the lab's real primary keeps serving the other tests) mails the local SMTP server (aiosmtpd), posts to a
fake Slack webhook and pages a fake PagerDuty Events API v2 (both fakes at the HTTP boundary, answering as
the documented APIs do), each with the task, its one-line error and a link; a run that has not verified its
backup by the topology's deadline is announced by the real scheduler and triggerer (DeadlineAlert)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
NOTIFY = {"smtp_conn_id": "smtp_dr", "email_to": ["oncall@example.com"], "email_from": "dr@example.com",
          "slack_webhook_conn_id": "slack_dr", "pagerduty_conn_id": "pagerduty_dr"}


def _stopped_primary_uri() -> str:
    """The lab primary's connection with its port moved to one nothing listens on."""
    from airflow.models.connection import Connection

    from multicloud_dr.lab.airflow_run import free_port

    conn = Connection(conn_id="mysql_stopped", uri=os.environ["AIRFLOW_CONN_MYSQL_PRIMARY"])
    conn.port = free_port()
    return conn.get_uri()


def _topology(tmp_path: Path, **backup) -> Path:
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["notify"] = NOTIFY
    data["databases"] = [{**d, "primary_conn_id": "mysql_stopped"} for d in data["databases"] if d["engine"] == "mysql"]
    data["backup"].update(backup)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _mails_about(messages: list, needle: str) -> list:
    return [m for m in messages if needle in m["Subject"]]


def _html(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    return part.get_payload(decode=True).decode()


def test_a_failed_backup_run_mails_slacks_and_pages_with_the_task_its_error_and_a_link(
        lab, airflow_db, smtp_server, slack_webhook, pagerduty_events, tmp_path, monkeypatch):
    import pagerduty
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(_topology(tmp_path)))
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_STOPPED", _stopped_primary_uri())
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DR", smtp_server.connection)
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DR", slack_webhook.connection)
    monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_DR", pagerduty_events.connection)
    # The provider's PagerDuty client has no URL setting: its default is pointed at the fake (dag.test() runs
    # the callbacks in this process).
    monkeypatch.setattr(pagerduty.EventsApiV2Client, "default_base_url",
                        property(lambda self: pagerduty_events.base_url))
    monkeypatch.setenv("SSL_CERT_FILE", pagerduty_events.ca)   # its HTTP client verifies the fake's certificate
    before = (len(smtp_server.messages), len(slack_webhook.payloads), len(pagerduty_events.payloads))

    dag = DagBag(dag_folder=str(DAGS / "mysql_backup.py")).dags["mysql_backup"]
    for task in dag.tasks:
        task.retries = 0   # the retries' two-minute backoff is the scheduler's (tested in the F20/F21 fault tests)
    run = dag.test()
    assert str(run.state) == "failed"

    mails = _mails_about(smtp_server.messages[before[0]:], "mysql_backup failed in lab")
    assert [m["Subject"] for m in mails] == ["[multicloud-dr] mysql_backup failed in lab: task petclinic.preflight"], \
        "one mail, for the task that failed (the tasks after it never ran)"
    [mail] = mails
    assert mail["To"] == "oncall@example.com"
    body = _html(mail)
    assert "cannot reach MySQL" in body and "Connection refused" in body, "the one-line error is not in the mail"
    assert f"/dags/mysql_backup/runs/{quote(run.run_id, safe='')}/tasks/petclinic.preflight" in body, "no task link"
    from multicloud_dr.connections import get_endpoint

    assert get_endpoint("mysql_primary").password not in body, "a password was mailed"

    [slack] = slack_webhook.payloads[before[1]:]
    assert "mysql_backup failed in lab: task petclinic.preflight" in slack["text"]
    assert "/tasks/petclinic.preflight" in slack["text"]

    [page] = pagerduty_events.payloads[before[2]:]
    assert page["path"] == "/v2/enqueue" and page["routing_key"] == pagerduty_events.routing_key
    assert page["event_action"] == "trigger" and page["payload"]["severity"] == "critical"
    assert page["payload"]["summary"].startswith("multicloud-dr: mysql_backup failed in lab: task petclinic.preflight")
    assert page["dedup_key"] == f"multicloud-dr/mysql_backup/{run.run_id}/petclinic.preflight"
    assert "/tasks/petclinic.preflight" in page["links"][0]["href"]


@pytest.fixture(scope="module")
def deadline_env(tmp_path_factory, smtp_server):
    """A topology whose nightly backup must be verified 15 s after its run is queued, its primary stopped."""
    path = _topology(tmp_path_factory.mktemp("deadline"), verified_within_minutes=0.25)
    return {"MULTICLOUD_DR_TOPOLOGY": str(path), "AIRFLOW_CONN_MYSQL_STOPPED": _stopped_primary_uri(),
            "AIRFLOW_CONN_SMTP_DR": smtp_server.connection}


@pytest.fixture(scope="module")
def standalone_extra_env(deadline_env):
    return deadline_env


def test_a_backup_not_verified_by_its_deadline_is_announced_by_the_scheduler_and_triggerer(
        airflow_standalone_custom, smtp_server):
    api = airflow_standalone_custom
    before = len(smtp_server.messages)
    api.unpause("mysql_backup")   # catchup=False: the scheduler may start today's 03:00 run as well
    run = api.call("POST", "/dags/mysql_backup/dagRuns", {"logical_date": None, "conf": {}})
    run_id = run["dag_run_id"]

    def ours() -> list:
        return [m for m in _mails_about(smtp_server.messages[before:], "missed its deadline") if run_id in _html(m)]

    try:
        deadline = time.monotonic() + 120
        while not ours():
            assert time.monotonic() < deadline, "no deadline mail within 120 s of the run"
            time.sleep(1)
        [mail] = ours()
        assert mail["Subject"] == "[multicloud-dr] mysql_backup missed its deadline in lab"
        body = _html(mail)
        assert "the nightly backup is not verified" in body
        assert f"/dags/mysql_backup/runs/{run_id}" in body
        state = api.call("GET", f"/dags/mysql_backup/dagRuns/{run_id}")["state"]
        # running (its preflight waits on a retry) or queued (behind today's scheduled run, max_active_runs=1):
        # either way not finished, let alone verified
        assert state in ("queued", "running"), f"the mail is about an unfinished run, not a {state} one"
        time.sleep(3)
        assert len(ours()) == 1, "announced once"
    finally:
        for other in api.call("GET", "/dags/mysql_backup/dagRuns?state=running&state=queued")["dag_runs"]:
            api.call("PATCH", f"/dags/mysql_backup/dagRuns/{other['dag_run_id']}", {"state": "failed"})
