"""`airflow standalone` for e2e tests that need the real scheduler, executor and execution API
(tasks in their own processes, plugins loaded the way workers load them), not `dag.test()`."""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"success", "failed"}


class AirflowApi:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 (loopback URL built by the fixture)
            f"{self.base_url}/api/v2{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def unpause(self, dag_id: str, timeout: float = 120.0) -> None:
        """Unpause a DAG, waiting for the dag-processor to have parsed its file first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
                return
            except urllib.error.HTTPError as err:
                if err.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 180.0) -> dict:
        """Trigger a run through the REST API and wait for it to finish; returns the run and its tasks."""
        deadline = time.monotonic() + timeout
        self.unpause(dag_id, timeout)
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        run_id = run["dag_run_id"]
        while run["state"] not in TERMINAL:
            assert time.monotonic() < deadline, f"{dag_id} run {run_id} still {run['state']} after {timeout} s"
            time.sleep(0.5)
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        tasks = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {"run": run, "tasks": {t["task_id"]: t["state"] for t in tasks}}


def _wait_healthy(url: str, proc, log: Path, timeout: float = 150.0) -> None:
    from multicloud_dr.exceptions import LabError
    from multicloud_dr.lab.airflow_run import wait_healthy

    try:
        wait_healthy(url, proc, log, timeout)
    except LabError as err:
        pytest.fail(str(err))


# A test's Airflow parses each DAG file once, at its start (no test edits a DAG file under a running Airflow);
# the dag-processor's default re-parse of every file each 30 s cost an idle standalone ~9 CPU-seconds a minute
# (3 with this), taken from the tests running beside it on this 2-core machine.
QUIET_DAG_PROCESSOR = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600"}


@contextlib.contextmanager
def _running_standalone(home: Path, extra_env: dict[str, str]):
    """`airflow standalone` in `home` with `extra_env` over the session's environment (which its workers inherit)."""
    from multicloud_dr.lab.airflow_run import airflow_token, own_standalone

    with own_standalone(home, ROOT, dict(os.environ), {**QUIET_DAG_PROCESSOR, **extra_env}, timeout=150,
                        grace=10) as (url, passwords, _):
        api = AirflowApi(url, airflow_token(url, "admin", passwords["admin"]))
        api.passwords = passwords   # the browser test signs in through the login page
        yield api


_session_standalone = contextlib.ExitStack()


@pytest.fixture(scope="session")
def airflow_standalone(lab, tmp_path_factory):
    """The session's `airflow standalone`, stopped as soon as no test left to run uses it (see below)."""
    with _session_standalone:
        yield _session_standalone.enter_context(
            _running_standalone(tmp_path_factory.mktemp("airflow-standalone"), {}))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the session's standalone after the last test that uses it: the integration and unit tests after the
    e2e ones would otherwise share the two cores with its idle scheduler, dag-processor and api-server until the
    session ends."""
    if "airflow_standalone" not in getattr(item, "fixturenames", ()):
        return
    later = item.session.items[item.session.items.index(item) + 1:]
    if not any("airflow_standalone" in getattr(other, "fixturenames", ()) for other in later):
        _session_standalone.close()


@pytest.fixture(scope="module")
def standalone_extra_env() -> dict[str, str]:
    """Override in a test module: environment for `airflow_standalone_custom` (e.g. a fake binary first on
    PATH, another topology file or dags folder)."""
    return {}


@pytest.fixture(scope="module")
def airflow_standalone_custom(lab, tmp_path_factory, standalone_extra_env):
    """An `airflow standalone` of the test module's own, started with `standalone_extra_env`: the session's
    `airflow_standalone` keeps the environment it started with, so settings its workers must see go here."""
    with _running_standalone(tmp_path_factory.mktemp("airflow-standalone-custom"), standalone_extra_env) as api:
        yield api


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd) that keeps the messages it receives: `.messages`, and
    `.connection`, an AIRFLOW_CONN_* value for it (plain SMTP, no login)."""
    from email import message_from_bytes
    from types import SimpleNamespace

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list = []

    class Keep(Message):
        def handle_message(self, message) -> None:
            received.append(message)

        def prepare_message(self, session, envelope):
            return message_from_bytes(envelope.content)

    from multicloud_dr.lab.airflow_run import free_port

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    connection = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                             "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "dr@example.com",
                                       "retry_limit": 0}})
    yield SimpleNamespace(port=port, messages=received, connection=connection)
    controller.stop()


@contextlib.contextmanager
def _json_receiver(status: int, content_type: str, answer, tls=None):
    """An HTTP server on loopback that keeps every POSTed JSON payload (with its path) and answers each with
    `status` and `answer(payload)` (bytes): the shape of a real webhook API, for its client to talk to.
    With `tls` (the lab's LabTls) it serves HTTPS with the lab's server certificate."""
    import http.server
    import ssl
    import threading

    payloads: list = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payload = {"path": self.path, **json.loads(body or b"{}")}
            payloads.append(payload)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(answer(payload))

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls.cert, tls.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://localhost:{server.server_address[1]}", payloads
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def slack_webhook():
    """A fake Slack incoming webhook at the HTTP boundary (no Slack here): answers 200 "ok" as Slack's
    documented webhook API does, and keeps each posted JSON payload: `.payloads`, `.connection`."""
    from types import SimpleNamespace

    with _json_receiver(200, "text/html", lambda payload: b"ok") as (base, payloads):
        url = f"{base}/services/T0000000/B0000000/lab"
        yield SimpleNamespace(payloads=payloads,
                              connection=json.dumps({"conn_type": "slackwebhook", "password": url}))


@pytest.fixture(scope="session")
def pagerduty_events(lab):
    """A fake PagerDuty Events API v2 at the HTTP boundary (no PagerDuty here): POST /v2/enqueue answers 202
    with {"status": "success", "message": "Event processed", "dedup_key": ...} as the documented API does.
    HTTPS only, as the client insists, with the lab's certificate (`.ca` to trust). `.payloads`,
    `.connection` (a pagerduty_events connection whose password is the routing key), `.base_url`: the
    provider's client has no setting for its URL, so a test points the client's default at it."""
    from types import SimpleNamespace

    def accepted(payload: dict) -> bytes:
        return json.dumps({"status": "success", "message": "Event processed",
                           "dedup_key": payload.get("dedup_key") or "generated-by-fake"}).encode()

    tls, key = lab.settings.tls, "R0ut1ngKeyOfTheLabService00000"
    with _json_receiver(202, "application/json", accepted, tls) as (base, payloads):
        yield SimpleNamespace(payloads=payloads, base_url=base, ca=str(tls.ca), routing_key=key,
                              connection=json.dumps({"conn_type": "pagerduty_events", "password": key}))
