"""The channels a failure is announced on: the providers' own SMTP and Slack-webhook notifiers, one per
channel configured in the topology (`notify:`), attached as a task's on_failure_callback."""

from __future__ import annotations

from multicloud_dr.config import NotifyConfig

# Rendered by the notifier from the failed task's context. The replication summary task's report names
# every breach and its cause; the exception is the fallback (and the drift summary's message).
REPLICATION_HEADLINE = "{{ (ti.xcom_pull(task_ids='rpo') or {}).get('headline') or exception }}"
EXCEPTION = "{{ exception }}"


def failure_notifiers(notify: NotifyConfig, subject: str, text: str) -> list:
    """The notifiers for one kind of alert; empty when no channel is configured. Built at parse time from
    the topology alone: no connection is looked up until one fires. `text` may be a Jinja template."""
    notifiers: list = []
    if notify.smtp_conn_id:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        body = (f"<p><b>{subject}</b> ({{{{ dag.dag_id }}}}, run {{{{ run_id }}}}, task {{{{ ti.task_id }}}})</p>"
                f"<p>{text}</p><p>Details: the Airflow UI, DAG {{{{ dag.dag_id }}}}.</p>")
        notifiers.append(SmtpNotifier(to=list(notify.email_to), from_email=notify.email_from,
                                      subject=f"[multicloud-dr] {subject}", html_content=body,
                                      smtp_conn_id=notify.smtp_conn_id))
    if notify.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        notifiers.append(SlackWebhookNotifier(slack_webhook_conn_id=notify.slack_webhook_conn_id,
                                              text=f":rotating_light: multicloud-dr: {subject}: {text}"))
    return notifiers
