"""Thin Airflow adapters over the library: one step each, no logic of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from multicloud_dr.exceptions import DrError, InputError

T = TypeVar("T")


def run_step(fn: Callable[[], T]) -> T:
    """Run a library step; an error that a retry cannot fix (bad input, missing prerequisite) fails
    the task at once instead of burning its retries. Other errors go to Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return fn()
    except InputError as err:
        if err.retry_may_help:
            raise
        raise AirflowFailException(str(err)) from err
    except DrError:
        raise
