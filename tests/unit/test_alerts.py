"""Every DR DAG announces its failures on every channel in `notify:`, carries its DeadlineAlert, and mails an
approval to its assigned approvers: the wiring, read from the parsed DAGs (the messages themselves are tested
against a real SMTP server and fake webhooks in tests/e2e/test_alerts.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DR_DAGS = ["mysql_backup", "dr_restore_drill", "environment_provision", "replication_health", "terraform_drift",
           "dr_failover", "dr_failback", "frontend_sync"]
CHANNELS = {"SmtpNotifier", "SlackWebhookNotifier", "PagerdutyNotifier"}


@pytest.fixture(scope="module")
def dags(tmp_path_factory):
    from airflow.dag_processing.dagbag import DagBag

    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["notify"] = {"smtp_conn_id": "smtp_dr", "email_to": ["oncall@example.com"],
                      "slack_webhook_conn_id": "slack_dr", "pagerduty_conn_id": "pagerduty_dr",
                      "approver_emails": {"alice": "alice@example.com", "bob": "bob@example.com"}}
    data["failover"]["approvers"] = ["alice", "bob"]
    data.setdefault("terraform", {})["approvers"] = ["bob"]
    data["backup"]["verified_within_minutes"] = 90
    data.setdefault("frontend", None)
    path = tmp_path_factory.mktemp("alerts") / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag, data


def _channels(callbacks) -> set[str]:
    return {type(c).__name__ for c in (callbacks or [])}


@pytest.mark.parametrize("dag_id", DR_DAGS)
def test_a_task_that_fails_for_good_is_announced_on_every_channel(dags, dag_id):
    """Each task has the three notifiers, or is a mapped check/plan/copy whose failure its summary task
    announces (one message per run, naming all of them)."""
    bag, _ = dags
    dag = bag.dags.get(dag_id)
    if dag is None and dag_id == "frontend_sync":
        pytest.skip("no frontend in the shipped topology")
    silent = []
    for task in dag.tasks:
        if _channels(task.on_failure_callback) >= CHANNELS:
            continue
        summaries = [t for t in task.get_flat_relatives(upstream=False)
                     if t.task_id.endswith(("summary", "rpo", "alert"))]
        announced = any(_channels(t.on_failure_callback) >= CHANNELS for t in summaries)
        if not (task.on_failure_callback == [] and announced):
            silent.append(task.task_id)
    assert silent == [], f"{dag_id}: these tasks would fail silently: {silent}"


def test_the_failure_message_names_the_task_its_one_line_error_and_a_link(dags):
    bag, _ = dags
    [smtp] = [c for c in bag.dags.get("mysql_backup").get_task("petclinic.dump_and_upload").on_failure_callback
              if type(c).__name__ == "SmtpNotifier"]
    assert "{{ ti.task_id }}" in smtp.subject and "mysql_backup failed" in smtp.subject
    assert "splitlines()" in smtp.html_content and "{{ ti.log_url }}" in smtp.html_content
    assert smtp.to == ["oncall@example.com"]


def test_the_nightly_backup_and_the_drill_have_deadlines_from_the_topology(dags):
    bag, data = dags
    [backup] = bag.dags.get("mysql_backup").deadline
    assert backup.interval == timedelta(minutes=90)
    assert backup.callback.kwargs["notify"]["smtp_conn_id"] == "smtp_dr"
    assert backup.callback.path.endswith("announce_missed_deadline")
    [drill] = bag.dags.get("dr_restore_drill").deadline
    assert drill.interval == timedelta(seconds=data["targets"]["rto_seconds"])


def test_an_approval_is_mailed_to_its_assigned_approvers_and_not_paged(dags):
    bag, _ = dags
    approve = bag.dags.get("dr_failover").get_task("approve")
    assert [u["id"] for u in approve.assigned_users] == ["alice", "bob"]
    assert _channels(approve.notifiers) == {"SmtpNotifier", "SlackWebhookNotifier"}
    [smtp] = [n for n in approve.notifiers if type(n).__name__ == "SmtpNotifier"]
    assert smtp.to == ["alice@example.com", "bob@example.com", "oncall@example.com"]
    terraform = bag.dags.get("environment_provision").get_task("approve")
    [smtp] = [n for n in terraform.notifiers if type(n).__name__ == "SmtpNotifier"]
    assert smtp.to == ["bob@example.com", "oncall@example.com"]


def test_no_channel_configured_means_no_notifier_and_no_error():
    from multicloud_dr.config import NotifyConfig
    from multicloud_dr.notifiers.channels import job_failure_notifiers

    assert job_failure_notifiers(NotifyConfig(), "mysql_backup", "lab") == []


def test_an_approver_address_must_be_an_address():
    from pydantic import ValidationError

    from multicloud_dr.config import NotifyConfig

    with pytest.raises(ValidationError, match="approver alice"):
        NotifyConfig(approver_emails={"alice": "alice"})
