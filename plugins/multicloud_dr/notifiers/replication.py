"""Notifiers for a replication breach: the providers' own SMTP and Slack-webhook notifiers, one per
channel configured in the topology (`replication.notify`), with the breach's headline as the message."""

from __future__ import annotations

from multicloud_dr.config import NotifyConfig

# Rendered by the notifier from the failed task's context: the summary task's report names every
# breach and its cause; the exception is the fallback when the summary itself could not run.
HEADLINE = ("{{ (ti.xcom_pull(task_ids='rpo') or {}).get('headline') or exception }}")


def breach_notifiers(notify: NotifyConfig, environment: str) -> list:
    """The notifiers to attach as on_failure_callback; empty when no channel is configured.
    Built at parse time from the topology alone (no connection is looked up until one fires)."""
    notifiers: list = []
    subject = f"[multicloud-dr] replication breach in {environment}"
    body = ("<p><b>Replication health: breach</b> in " + environment + " ({{ dag.dag_id }}, run {{ run_id }})</p>"
            "<p>" + HEADLINE + "</p><p>Every check's result: the Airflow UI (DAG {{ dag.dag_id }}) and the asset "
            "replication_health." + environment + " (one event per run).</p>")
    if notify.smtp_conn_id:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(SmtpNotifier(to=list(notify.email_to), from_email=notify.email_from, subject=subject,
                                      html_content=body, smtp_conn_id=notify.smtp_conn_id))
    if notify.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        text = f":rotating_light: multicloud-dr replication breach in {environment}: " + HEADLINE
        notifiers.append(SlackWebhookNotifier(slack_webhook_conn_id=notify.slack_webhook_conn_id, text=text))
    return notifiers
