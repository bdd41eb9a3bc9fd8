"""Wait until a site's application answers its health check.

Healthy: HTTP 200, and when the body is a JSON object with a "status" key, that status is "ok" (also "UP",
Spring Boot actuator's word, and "pass", the IETF health-check draft's; any case). Anything else (another status
code, {"status": "DOWN"}, no answer at all) is a failed attempt; attempts repeat every `interval` seconds, each
with its own short timeout, until `timeout` has passed; then HealthCheckError names the URL and the last failure.

The HTTP session is the connection layer's (`http_session`): inside Airflow the http provider's HttpHook makes
it, so the connection's headers, auth, TLS settings and proxies apply as they would to HttpSensor.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.http import HttpConnection, HttpSession, http_session
from multicloud_dr.exceptions import HealthCheckError

log = logging.getLogger(__name__)

HEALTHY_STATUSES = ("ok", "up", "pass")
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_INTERVAL_SECONDS = 2.0
ATTEMPT_TIMEOUT_SECONDS = 5.0
BODY_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class HealthResult:
    """A healthy answer: where, what it said, and how long it took to get it."""

    url: str
    status_code: int
    body: Any                   # the JSON body, or None when it was not JSON
    seconds: float              # from the first attempt to the healthy answer
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status_code": self.status_code, "body": self.body,
                "seconds": round(self.seconds, 3), "attempts": self.attempts, "healthy": True}


@dataclass(frozen=True)
class Attempt:
    """One GET of the health URL."""

    healthy: bool
    status_code: int | None = None   # None: no HTTP answer at all
    body: Any = None
    failure: str = ""                # why it is not healthy, for logs and the final error


def check_once(session: HttpSession, path: str, timeout: float) -> Attempt:
    """GET `path` once, with `timeout` for connecting and for reading."""
    import requests

    try:
        response = session.session.get(session.url(path), timeout=timeout, allow_redirects=session.allow_redirects)
    except requests.RequestException as err:
        return Attempt(False, failure=f"no answer: {describe_request_error(err, timeout)}")
    text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        return Attempt(False, response.status_code, body, f"HTTP {response.status_code}: {excerpt(text)}")
    if isinstance(body, dict) and "status" in body and str(body["status"]).lower() not in HEALTHY_STATUSES:
        return Attempt(False, 200, body, f"HTTP 200 but status {body['status']!r}: {excerpt(text)}")
    return Attempt(True, 200, body)


def wait_healthy(health_conn_id: str | Endpoint | HttpConnection, path: str = "/health", *,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, interval: float = DEFAULT_INTERVAL_SECONDS,
                 attempt_timeout: float | None = None, name: str | None = None) -> HealthResult:
    """Poll `path` below the http connection's base URL until it answers healthy, for at most `timeout` seconds.
    Each attempt waits at most `attempt_timeout` (default: the connection's `timeout` extra if it is a number,
    else 5 s). `name` (e.g. "site dr") opens the error message."""
    session = http_session(health_conn_id)
    url = session.url(path)
    per_attempt = attempt_timeout or _number(session.timeout) or ATTEMPT_TIMEOUT_SECONDS
    t0 = time.monotonic()
    deadline = t0 + timeout
    attempts, said = 0, None
    while True:
        attempts += 1
        left = deadline - time.monotonic()
        attempt = check_once(session, path, max(min(per_attempt, left), 0.1))
        if attempt.healthy:
            seconds = time.monotonic() - t0
            log.info("%s: healthy (HTTP 200) after %d attempt(s), %.1f s", url, attempts, seconds)
            return HealthResult(url, 200, attempt.body, seconds, attempts)
        if attempt.failure != said:        # progress: each new kind of failure once, not every attempt
            log.info("%s: not healthy yet (attempt %d): %s", url, attempts, attempt.failure)
            said = attempt.failure
        left = deadline - time.monotonic()
        if left <= 0:
            who = f"{name}: " if name else ""
            raise HealthCheckError(f"{who}{url} was not healthy within {timeout:g} s ({attempts} attempts); last "
                                   f"failure: {attempt.failure}. Check the app's pods and logs, and that the http "
                                   f"connection points at the app's load balancer")
        time.sleep(min(interval, left))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None


def excerpt(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A body, on one line, cut at `limit` characters."""
    flat = " ".join(text.split())
    if not flat:
        return "(empty body)"
    return flat if len(flat) <= limit else flat[:limit] + "..."


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def describe_request_error(err: Exception, timeout: float) -> str:
    """A short reason ("Connection refused", "read timed out after 5 s") instead of urllib3's paragraph."""
    import requests

    if isinstance(err, requests.ConnectTimeout):
        return f"connect timed out after {timeout:.1f} s"
    if isinstance(err, requests.ReadTimeout):
        return f"no response within {timeout:.1f} s"
    if isinstance(err, requests.exceptions.SSLError):
        return f"TLS failed: {excerpt(str(err), 160)}"
    match = _ERRNO.search(str(err))
    if match:
        return match.group(1).strip()
    return f"{type(err).__name__}: {excerpt(str(err), 160)}"
