"""Unit-test session setup: the checkov scan (tests/unit/test_terraform_checkov.py) starts in the background as
soon as the session is collected, if any of its tests was selected, so that it overlaps the e2e and integration
tests that run first instead of adding its 20-30 s to the session."""

from __future__ import annotations

import pytest

_started: list = []


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        start = getattr(getattr(item, "module", None), "start_checkov", None)
        if start is not None and "checkov_report" in getattr(item, "fixturenames", ()):
            _started.append(start())
            return


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A session that ended before the scan's tests ran (-x, Ctrl-C) does not leave checkov running."""
    for proc in _started:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
