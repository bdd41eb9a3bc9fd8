"""Waiting for a site's app to answer its health check (multicloud_dr.kube.health), and the app operators.

The apps are real HTTP servers on threads of this process (healthy, failing with 500, hanging, or a closed port);
the cluster for ScaleAppOperator is the lab's fake Kubernetes API server in-process (faked: no Kubernetes runs
here; shapes from the Kubernetes API reference, see tests/unit/test_fake_kube.py).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import HealthCheckError
from multicloud_dr.kube.health import wait_healthy
from multicloud_dr.lab.fake_kube import FakeKubeApi, kubeconfig


class App:
    """An app on 127.0.0.1 answering each GET with the next of `answers` (status, body, delay), the last forever."""

    def __init__(self, *answers: tuple[int, str, float]) -> None:
        self.answers = list(answers)
        self.hits = 0
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, delay = app.answers[min(app.hits, len(app.answers) - 1)]
                app.hits += 1
                time.sleep(delay)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:      # the client gave up waiting
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def endpoint(self) -> Endpoint:
        return Endpoint("http", host="127.0.0.1", port=self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_server():
    apps: list[App] = []

    def start(*answers: tuple[int, str, float]) -> App:
        apps.append(App(*answers))
        return apps[-1]

    yield start
    for app in apps:
        app.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_healthy_app_answers_at_once(app_server):
    app = app_server((200, '{"status": "ok", "db": "mysql-dr"}', 0))
    result = wait_healthy(app.endpoint(), "/health", timeout=5)
    assert (result.status_code, result.attempts, result.body) == (200, 1, {"status": "ok", "db": "mysql-dr"})
    assert result.url == f"http://127.0.0.1:{app.port}/health"
    assert result.to_dict()["healthy"] is True


def test_an_app_that_comes_up_is_waited_for(app_server):
    app = app_server((503, "starting", 0), (503, "starting", 0), (200, '{"status": "UP"}', 0))
    result = wait_healthy(app.endpoint(), timeout=5, interval=0.05)
    assert result.attempts == 3 and result.body == {"status": "UP"}


def test_an_app_answering_500_fails_with_its_status_and_body(app_server):
    app = app_server((500, '{"error": "cannot reach database mysql-dr:3306"}', 0))
    t0 = time.monotonic()
    with pytest.raises(HealthCheckError) as failed:
        wait_healthy(app.endpoint(), "/health", timeout=0.6, interval=0.1, name="site dr")
    message = str(failed.value)
    assert time.monotonic() - t0 < 3
    assert message.startswith(f"site dr: http://127.0.0.1:{app.port}/health was not healthy within 0.6 s")
    assert 'last failure: HTTP 500: {"error": "cannot reach database mysql-dr:3306"}' in message
    assert app.hits >= 2


def test_a_200_that_says_it_is_down_is_not_healthy(app_server):
    app = app_server((200, '{"status": "DOWN"}', 0))
    with pytest.raises(HealthCheckError, match="HTTP 200 but status 'DOWN'"):
        wait_healthy(app.endpoint(), timeout=0.3, interval=0.1)


def test_a_closed_port_fails_with_the_connection_error():
    port = closed_port()
    with pytest.raises(HealthCheckError) as failed:
        wait_healthy(Endpoint("http", host="127.0.0.1", port=port), timeout=0.5, interval=0.1)
    assert f"http://127.0.0.1:{port}/health" in str(failed.value)
    assert "last failure: no answer: Connection refused" in str(failed.value)


def test_each_attempt_has_its_own_short_timeout(app_server):
    app = app_server((200, '{"status": "ok"}', 3.0))            # answers, but too late
    t0 = time.monotonic()
    with pytest.raises(HealthCheckError, match=r"no answer: no response within 0\.[1-3] s"):
        wait_healthy(app.endpoint(), timeout=1.0, interval=0.1, attempt_timeout=0.3)
    assert time.monotonic() - t0 < 2.0                           # bounded by the wait, not by the slow app


# ------------------------------------------------------------------------------------------------- operators


def write_topology(path) -> None:
    topology = {
        "environment": "test",
        "databases": [{"name": "petclinic", "engine": "mysql", "primary_conn_id": "mysql_primary"}],
        "backup": {"storage_conn_id": "azure_blob_dr", "location": "wasb://dr-backups/mysql"},
        "targets": {"rpo_seconds": 60, "rto_seconds": 600},
        "sites": {
            "primary": {"cloud": "aws", "app": {"health_conn_id": "app_primary", "kubernetes_conn_id": "eks_primary",
                                                "namespace": "petclinic", "deployments": ["petclinic-web"],
                                                "replicas": 1, "rollout_timeout_seconds": 10}},
            "dr": {"cloud": "azure", "app": {"health_conn_id": "app_dr", "kubernetes_conn_id": "aks_dr",
                                             "namespace": "petclinic", "deployments": ["petclinic-web"],
                                             "replicas": 2, "health_timeout_seconds": 1,
                                             "rollout_timeout_seconds": 10}},
        },
    }
    path.write_text(json.dumps(topology))   # JSON is YAML


@pytest.fixture
def topology(tmp_path, monkeypatch, app_server):
    """A topology whose dr app answers 500 and whose clusters are the fake's; connections as AIRFLOW_CONN_*."""
    dr = app_server((500, '{"status": "error", "detail": "no database"}', 0))
    primary = app_server((200, '{"status": "ok"}', 0))
    path = tmp_path / "topology.yaml"
    write_topology(path)
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_APP_DR", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": dr.port}))
    monkeypatch.setenv("AIRFLOW_CONN_APP_PRIMARY", json.dumps({"conn_type": "http", "host": "127.0.0.1",
                                                               "port": primary.port}))
    fake = FakeKubeApi(token="t", state_file=tmp_path / "kube.json", seed={
        "aks-dr/petclinic/deployments/petclinic-web": {"spec": {"replicas": 0}},
        "eks-primary/petclinic/deployments/petclinic-web": {"spec": {"replicas": 1}}})
    url = fake.start_in_thread()
    for conn_id, cluster in (("aks_dr", "aks-dr"), ("eks_primary", "eks-primary")):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(url, cluster, "t", "petclinic")}}))
    yield {"dr": dr, "primary": primary}
    fake.shutdown()


def test_wait_healthy_operator_names_the_site_url_and_last_failure(topology):
    from multicloud_dr.operators.app import WaitHealthyOperator

    healthy = WaitHealthyOperator(task_id="primary_healthy", site="primary").execute({})
    assert healthy["site"] == "primary" and healthy["status_code"] == 200
    with pytest.raises(HealthCheckError) as failed:   # retried by Airflow: the app may still come up
        WaitHealthyOperator(task_id="dr_healthy", site="dr", interval=0.2).execute({})
    message = str(failed.value)
    assert message.startswith(f"site dr: http://127.0.0.1:{topology['dr'].port}/health was not healthy within 1 s")
    assert "HTTP 500" in message and "no database" in message
    with pytest.raises(ValueError, match="exactly one of site and health_conn_id"):
        WaitHealthyOperator(task_id="both", site="dr", health_conn_id="app_dr")


def test_scale_app_operator_scales_up_and_down(topology):
    from multicloud_dr.operators.app import ScaleAppOperator

    up = ScaleAppOperator(task_id="dr_up", site="dr", direction="up").execute({})
    assert up["replicas"] == 2 and up["changed"] and up["rollout"][0]["ready"] == 2
    down = ScaleAppOperator(task_id="primary_down", site="primary", direction="down", if_reachable=True).execute({})
    assert (down["reachable"], down["detail"]) == (True, "scaled to 0")
    again = ScaleAppOperator(task_id="dr_three", site="dr", replicas="2").execute({})
    assert not again["changed"]
    with pytest.raises(ValueError, match="exactly one of direction"):
        ScaleAppOperator(task_id="neither", site="dr")
