"""The channels a DR event is announced on: the providers' own SMTP, Slack-webhook and PagerDuty notifiers,
one per channel configured in the topology (`notify:`).

- `job_failure_notifiers`: every DR DAG's default on_failure_callback (the task, its one-line error, a link);
- `failure_notifiers`: the same channels with a subject and text of the caller's (a breach, a drift, a report);
- `approval_notifiers`: an approval waiting in HITL, mailed to its assigned approvers as well;
- `deadline_alert` (notifiers/deadlines.py): a DeadlineAlert whose miss is announced on the same channels.
"""

from __future__ import annotations

from multicloud_dr.config import NotifyConfig

# Rendered by the notifier from the failed task's context. The replication summary task's report names
# every breach and its cause; the exception is the fallback (and the drift summary's message).
REPLICATION_HEADLINE = "{{ (ti.xcom_pull(task_ids='rpo') or {}).get('headline') or exception }}"
EXCEPTION = "{{ exception }}"
# The first line of the error, short enough for a chat line and a page's summary.
ONE_LINE_ERROR = ("{{ (((exception | string).strip().splitlines()) or ['no error message: see the task log'])[0]"
                  " | truncate(300) }}")
TASK_LINK = "{{ ti.log_url }}"
# PagerDuty keeps a summary up to 1024 characters; one alert per failed task instance.
PAGE_SUMMARY_LIMIT = 1000
TASK_DEDUP_KEY = "multicloud-dr/{{ dag.dag_id }}/{{ run_id }}/{{ ti.task_id }}"


def channel_notifiers(notify: NotifyConfig, subject: str, text: str, *, link: str | None = TASK_LINK,
                      to: list[str] | None = None, page: bool = True, dedup_key: str | None = None,
                      component: str = "multicloud-dr") -> list:
    """One notifier per configured channel (none when nothing is configured). Built at parse time from the
    topology alone: no connection is looked up until one fires. `subject`, `text` and `link` may be Jinja
    templates of the context the notifier fires in (a task's: `ti`, `dag`, `run_id`, `exception`, ...);
    `to` replaces `email_to`; `page=False` leaves PagerDuty out (an approval is not an incident)."""
    notifiers: list = []
    recipients = list(to if to is not None else notify.email_to)
    if notify.smtp_conn_id and recipients:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        details = f'<p><a href="{link}">{link}</a></p>' if link else ""
        body = f"<p><b>{subject}</b></p><p>{text}</p>{details}"
        notifiers.append(SmtpNotifier(to=recipients, from_email=notify.email_from,
                                      subject=f"[multicloud-dr] {subject}", html_content=body,
                                      smtp_conn_id=notify.smtp_conn_id))
    if notify.slack_webhook_conn_id:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        tail = f" <{link}|details>" if link else ""
        notifiers.append(SlackWebhookNotifier(slack_webhook_conn_id=notify.slack_webhook_conn_id,
                                              text=f":rotating_light: multicloud-dr: {subject}: {text}{tail}"))
    if notify.pagerduty_conn_id and page:
        from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

        summary = f"multicloud-dr: {subject}: {text}"
        notifiers.append(PagerdutyNotifier(
            summary=f"{{% filter truncate({PAGE_SUMMARY_LIMIT}) %}}{summary}{{% endfilter %}}",
            severity=notify.pagerduty_severity, source="multicloud-dr", component=component, dedup_key=dedup_key,
            links=[{"href": link, "text": "details"}] if link else None,
            pagerduty_events_conn_id=notify.pagerduty_conn_id))
    return notifiers


def failure_notifiers(notify: NotifyConfig, subject: str, text: str) -> list:
    """A breach, a drift or a report, on every channel, with a link to the task that saw it."""
    return channel_notifiers(notify, subject, text, component="{{ dag.dag_id }}")


def job_failure_notifiers(notify: NotifyConfig, job: str, environment: str) -> list:
    """A DR job's default on_failure_callback: fires once a task has failed for good (after its retries),
    naming the task, its one-line error and a link to its log."""
    return channel_notifiers(notify, f"{job} failed in {environment}: task {{{{ ti.task_id }}}}", ONE_LINE_ERROR,
                             dedup_key=TASK_DEDUP_KEY, component="{{ dag.dag_id }}")


def approval_notifiers(notify: NotifyConfig, subject: str, text: str, approvers: list[str]) -> list:
    """An approval waiting in HITL: e-mailed to its assigned approvers that have an address in
    `notify.approver_emails` as well as `email_to`, and posted to Slack naming them; never paged."""
    addresses = [notify.approver_emails[user] for user in approvers if user in notify.approver_emails]
    recipients = list(dict.fromkeys([*addresses, *notify.email_to]))
    named = f" (assigned to {', '.join(approvers)})" if approvers else ""
    return channel_notifiers(notify, subject, text + named, to=recipients, page=False,
                             component="{{ dag.dag_id }}")
