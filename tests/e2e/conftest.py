"""`airflow standalone` for e2e tests that need the real scheduler, executor and execution API
(tasks in their own processes, plugins loaded the way workers load them), not `dag.test()`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
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
                time.sleep(1)

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 180.0) -> dict:
        """Trigger a run through the REST API and wait for it to finish; returns the run and its tasks."""
        deadline = time.monotonic() + timeout
        self.unpause(dag_id, timeout)
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        run_id = run["dag_run_id"]
        while run["state"] not in TERMINAL:
            assert time.monotonic() < deadline, f"{dag_id} run {run_id} still {run['state']} after {timeout} s"
            time.sleep(1)
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        tasks = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {"run": run, "tasks": {t["task_id"]: t["state"] for t in tasks}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"airflow standalone exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:  # noqa: S310
                health = json.loads(response.read())
            if all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler",
                                                                            "triggerer", "dag_processor")):
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"airflow standalone not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _running_standalone(home: Path, extra_env: dict[str, str]):
    """`airflow standalone` in `home` with `extra_env` over the session's environment (which its workers inherit)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        **extra_env,
    }
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # standalone starts `airflow ...`
    log = home / "standalone.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=home)
    try:
        _wait_healthy(url, proc, log)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        request = urllib.request.Request(  # noqa: S310
            f"{url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": "admin", "password": password}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            token = json.loads(response.read())["access_token"]
        yield AirflowApi(url, token)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Children that outlived the group leader (scheduler, workers) are still in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def airflow_standalone(lab, tmp_path_factory):
    with _running_standalone(tmp_path_factory.mktemp("airflow-standalone"), {}) as api:
        yield api


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

    port = _free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    connection = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                             "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "dr@example.com",
                                       "retry_limit": 0}})
    yield SimpleNamespace(port=port, messages=received, connection=connection)
    controller.stop()


@pytest.fixture(scope="session")
def slack_webhook():
    """A fake Slack incoming webhook at the HTTP boundary (no Slack here): answers 200 "ok" as Slack's
    documented webhook API does, and keeps each posted JSON payload: `.payloads`, `.connection`."""
    import http.server
    import threading
    from types import SimpleNamespace

    payloads: list = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            payloads.append({"path": self.path, **json.loads(body or b"{}")})
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/services/T0000000/B0000000/lab"
    yield SimpleNamespace(payloads=payloads,
                          connection=json.dumps({"conn_type": "slackwebhook", "password": url}))
    server.shutdown()
