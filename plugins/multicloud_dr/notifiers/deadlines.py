"""DeadlineAlerts whose miss is announced on the topology's channels (notifiers/channels.py).

Airflow keeps a deadline for each run from the moment it is queued and drops it when the run succeeds; a run
still going, or failed, when the deadline passes is a miss. The scheduler then queues our coroutine on the
triggerer, which sends through the providers' notifiers' async paths. The triggerer hands the coroutine a
small context (the run as the REST API shows it, and the deadline), not a task's: so the subject, text and
link are rendered here, in Python, and the notifiers get plain strings.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from multicloud_dr.config import NotifyConfig

log = logging.getLogger(__name__)


def deadline_alert(notify: NotifyConfig, environment: str, *, within: timedelta, what: str):
    """A DeadlineAlert: `what` ("the nightly backup is not verified") has not happened `within` of the run
    being queued. The channels travel in the callback's kwargs (connection ids and addresses only: no secret)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=within,
        callback=AsyncCallback(announce_missed_deadline,
                               kwargs={"notify": notify.model_dump(mode="json"), "environment": environment,
                                       "what": what, "within_seconds": int(within.total_seconds())}),
        name=what)


def run_link(dag_run: dict[str, Any]) -> str:
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    return f"{base_url}/dags/{dag_run.get('dag_id')}/runs/{dag_run.get('dag_run_id')}"


def describe_miss(environment: str, what: str, within_seconds: int, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, text) of a missed deadline, from the triggerer's context."""
    dag_run = context.get("dag_run") or {}
    minutes = within_seconds / 60
    subject = f"{dag_run.get('dag_id', 'a DR job')} missed its deadline in {environment}"
    text = (f"{what}: run {dag_run.get('dag_run_id')} was queued at {dag_run.get('queued_at')} and is "
            f"{dag_run.get('state')} {minutes:g} min later")
    return subject, text


async def announce_missed_deadline(notify: dict, environment: str, what: str, within_seconds: int,
                                   context: dict | None = None) -> str:
    """The DeadlineAlert's callback, run on the triggerer: every configured channel, each tried even when
    another fails; raises (the callback is then recorded failed, with the reason) if any failed."""
    from multicloud_dr.notifiers.channels import channel_notifiers

    context = context or {}
    subject, text = describe_miss(environment, what, within_seconds, context)
    notifiers = channel_notifiers(NotifyConfig.model_validate(notify), subject, text,
                                  link=run_link(context.get("dag_run") or {}))
    if not notifiers:
        log.warning("%s: %s (no channel configured in notify)", subject, text)
        return "no channel"
    failed = []
    for notifier in notifiers:
        notifier.context = context
        try:
            await notifier   # renders the (plain) template fields, then the provider's async_notify
        except Exception as err:  # one broken channel must not silence the others
            failed.append(f"{type(notifier).__name__}: {err}")
    if failed:
        raise RuntimeError(f"{subject}: {len(failed)} of {len(notifiers)} channels failed: {'; '.join(failed)}")
    return f"{subject}: sent on {len(notifiers)} channels"
