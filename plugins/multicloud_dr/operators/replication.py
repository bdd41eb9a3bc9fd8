"""Operator for one replication check (the replication_health DAG maps it over the topology's checks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

RESULT_KEY = "result"


class ReplicationCheckOperator(BaseOperator):
    """Run one replication check. Its result (name, status, value, threshold, detail) is pushed to XCom
    under `result` whatever the outcome, so the summary sees every check; then the task fails on a breach
    (no retry: measuring again now would say the same) or when the check could not run (retried)."""

    template_fields: Sequence[str] = ("check",)

    def __init__(self, *, check: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def execute(self, context: Context) -> dict:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException

        from multicloud_dr.replication.health import run_check

        result = run_check(self.check)
        value = "-" if result.value is None else f"{result.value:g}"
        self.log.info("%s: %s, %s (threshold %s) in %.2f s: %s", result.name, result.status, value,
                      result.threshold, result.seconds, result.detail)
        context["ti"].xcom_push(key=RESULT_KEY, value=result.to_dict())
        if result.status == "breach":
            raise AirflowFailException(f"{result.name}: {result.detail}")
        if result.status == "error":
            raise AirflowException(f"{result.name}: {result.detail}")
        return result.to_dict()
