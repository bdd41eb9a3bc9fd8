"""Test session setup.

- Airflow reads its configuration when first imported, so a throwaway AIRFLOW_HOME (SQLite) is set
  here, before any test module imports Airflow; e2e tests migrate it once per session.
- Tests under tests/integration and tests/e2e use the lab's real servers: the `lab` fixture brings
  up whatever is not already running (once per session) and, at the end, stops only what it
  started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="multicloud-dr-test-airflow-"))
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
})

_KIND_BY_DIR = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets the marker of its directory, so `-m unit` needs no discipline to stay right."""
    for item in items:
        kind = _KIND_BY_DIR.get(Path(item.fspath).relative_to(ROOT / "tests").parts[0])
        if kind:
            item.add_marker(kind)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def lab():
    """The lab, up for the whole session; its connection settings exported into os.environ."""
    from multicloud_dr.lab.airflow_run import read_env_file
    from multicloud_dr.lab.core import Lab

    lab = Lab()
    running_before = {service.name for service in lab.services if service.pid() is not None}
    try:
        outcomes = lab.up(report=lambda line: print(line, file=sys.stderr))
    except BaseException:
        # A failed start must not leave half a lab behind it for the next run (its ports would be taken).
        lab.stop([s.name for s in lab.services if s.pid() is not None and s.name not in running_before])
        raise
    started = [name for name, outcome in outcomes.items() if outcome == "started"]
    for key, value in read_env_file(lab.settings.env_file).items():
        # The lab's Airflow home is for `make airflow`; the tests keep their own (set above).
        if not key.startswith("AIRFLOW__") and key != "AIRFLOW_HOME":
            os.environ[key] = value
    yield lab
    if started:
        lab.stop(started)


@pytest.fixture(scope="session")
def mysql_primary_admin(lab) -> dict:
    """pymysql.connect kwargs of a MySQL user with every privilege on the lab's primary (for scratch
    databases): host, port, user, password and ssl (the lab's CA, verified)."""
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connections.mysql import MySqlConnection

    return MySqlConnection(get_endpoint(os.environ["LAB_MYSQL_PRIMARY_URI"])).connect_kwargs()


@pytest.fixture(scope="session")
def airflow_db(lab) -> Path:
    """The session's Airflow metadata DB, migrated once (SQLite; seconds)."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"airflow db migrate failed:\n{result.stderr[-3000:]}"
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def delete_blob_prefix(lab):
    """delete_blob_prefix(service, root): empty a test's storage prefix."""
    from multicloud_dr.lab.core import delete_blob_prefix

    return delete_blob_prefix


@pytest.fixture(scope="session")
def verified_petclinic_backup(lab, delete_blob_prefix):
    """verified_petclinic_backup(prefix, logical_date) -> (root, manifest record, store): a verified backup
    of the lab's petclinic under a prefix of its own (wasb://dr-backups/<prefix>-<random>), deleted at the
    end of the session."""
    import uuid

    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.backup.verify import verify_backup
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connections.wasb import blob_service_client

    service = blob_service_client(get_endpoint("azure_blob_dr"))
    store = BackupStore(service, "dr-backups")
    made: list = []

    def make(prefix: str, logical_date):
        root = StorageUrl("wasb", "dr-backups", f"{prefix}-{uuid.uuid4().hex[:8]}")
        made.append(root)
        result = run_backup(BackupRequest(source=get_endpoint("mysql_primary"), database="petclinic", root=root,
                                          logical_date=logical_date), service)
        assert verify_backup(store, result.manifest_url).status == "verified"
        return root, store.read_manifest(result.manifest_url), store

    yield make
    for root in made:
        delete_blob_prefix(service, root)


class HealthApp:
    """A stand-in for a site's app on 127.0.0.1: GET /health answers `status` (settable while it runs) with a
    JSON body; other paths 404. Also a Workload of the fake Kubernetes API: scale(0) stops the server, scale(n)
    starts it again on the same port; `calls` records each scale. Start it with `health_app` (stops at teardown)."""

    def __init__(self, status: int = 200, *, running: bool = True) -> None:
        import socket

        self.status = status
        self.calls: list[int] = []
        self.server = None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        if running:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        if self.server is not None:
            return
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = app.status if self.path == "/health" else 404
                body = json.dumps({"status": "ok" if code == 200 else "failing"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def scale(self, replicas: int) -> None:
        self.calls.append(replicas)
        self.start() if replicas > 0 else self.close()

    def ready(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False


@pytest.fixture
def health_app():
    """health_app(status=200, running=True) -> a HealthApp, stopped at the end of the test."""
    apps: list[HealthApp] = []

    def start(status: int = 200, *, running: bool = True) -> HealthApp:
        apps.append(HealthApp(status, running=running))
        return apps[-1]

    yield start
    for app in apps:
        app.close()
