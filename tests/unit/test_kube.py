"""The application layer on Kubernetes (multicloud_dr.kube) against the lab's fake Kubernetes API server.

The API server is faked (no Kubernetes can run here), in-process, with the shapes of the Kubernetes API reference
(see tests/unit/test_fake_kube.py). A bound deployment's workload is a real HTTP server on a thread of this
process: "ready" means it answers /health, so a rollout wait really waits for the app.
"""

from __future__ import annotations

import base64
import json
import logging
import socket

import pytest
import requests
import yaml
from kubernetes import client

from multicloud_dr import connections, secrets_backend
from multicloud_dr.config import AppConfig
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, KubernetesError
from multicloud_dr.kube.cluster import Cluster
from multicloud_dr.kube.deployments import read_rollout, scale_deployments, wait_rollout
from multicloud_dr.kube.objects import set_config_map, set_secret
from multicloud_dr.kube.site import SiteApp, scale_down_if_reachable
from multicloud_dr.lab.fake_kube import FakeKubeApi, kubeconfig

TOKEN = "lab-kube-token"
NS = "petclinic"
WEB = "petclinic-web"
SEED = {
    "aks-dr/petclinic/deployments/petclinic-web": {"metadata": {"name": WEB}, "spec": {"replicas": 0}},
    "eks-primary/petclinic/deployments/petclinic-web": {"metadata": {"name": WEB}, "spec": {"replicas": 1}},
}
DB_PASSWORD = "Tr0ub4dor&3-dr"


class NeverReady:
    def scale(self, replicas: int) -> None:
        pass

    def ready(self) -> bool:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint(url: str, cluster: str = "aks-dr", token: str = TOKEN) -> Endpoint:
    return Endpoint("kubernetes", extra={"kube_config": kubeconfig(url, cluster, token, NS), "namespace": NS})


@pytest.fixture
def lab_kube(tmp_path, health_app):
    """The fake with aks-dr/petclinic/petclinic-web bound to a real HTTP app; yields (url, app, fake)."""
    app = health_app(running=False)
    fake = FakeKubeApi(token=TOKEN, state_file=tmp_path / "kube.json", seed=SEED,
                       workloads={"aks-dr/petclinic/petclinic-web": app})
    url = fake.start_in_thread()
    yield url, app, fake
    fake.shutdown()


@pytest.fixture
def kube_conn(lab_kube, monkeypatch):
    """Connection ids aks_dr / eks_primary for the fake's clusters, and mysql_dr for the DR database's login."""
    url = lab_kube[0]
    for conn_id, cluster in (("aks_dr", "aks-dr"), ("eks_primary", "eks-primary")):
        monkeypatch.setenv(connections.env_var_name(conn_id), json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(url, cluster, TOKEN, NS),
                                                  "namespace": NS}}))
    monkeypatch.setenv("AIRFLOW_CONN_MYSQL_DR", json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": 3306,
                                                            "login": "petclinic_app", "password": DB_PASSWORD}))
    return lab_kube


def deployment(url: str, cluster: str = "aks-dr"):
    return read_rollout(endpoint(url, cluster), NS, WEB)


def resource_version(url: str, cluster: str = "aks-dr") -> str:
    with Cluster(endpoint(url, cluster)) as c:
        return c.apps.read_namespaced_deployment(WEB, NS).metadata.resource_version


# ---------------------------------------------------------------------------------------------------- scaling


def test_scaling_twice_writes_once_and_says_so(lab_kube):
    url, _, _ = lab_kube
    primary = endpoint(url, "eks-primary")
    first = scale_deployments(primary, None, [WEB], 3)
    version = resource_version(url, "eks-primary")
    second = scale_deployments(primary, None, [WEB], 3)
    assert first.changed and first.to_dict()["deployments"][0]["detail"] == "scaled 1 -> 3"
    assert not second.changed and second.to_dict()["deployments"][0]["detail"] == "already at 3: nothing written"
    assert resource_version(url, "eks-primary") == version     # nothing written the second time
    assert deployment(url, "eks-primary").replicas == 3


def test_rollout_wait_sees_the_app_come_up_and_go_away(lab_kube):
    url, app, _ = lab_kube
    conn = endpoint(url)
    scale_deployments(conn, NS, [WEB], 1)
    state = wait_rollout(conn, NS, WEB, 1, timeout=10, interval=0.05)
    assert state.ready == 1 and state.observed >= state.generation
    assert requests.get(f"http://127.0.0.1:{app.port}/health", timeout=2).json() == {"status": "ok"}

    scale_deployments(conn, NS, [WEB], 0)
    down = wait_rollout(conn, NS, WEB, 0, timeout=10, interval=0.05)
    assert down.ready == 0 and not app.ready()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{app.port}/health", timeout=2)


def test_rollout_wait_times_out_with_the_last_state_and_what_to_check(tmp_path, caplog):
    fake = FakeKubeApi(token=TOKEN, state_file=tmp_path / "kube.json", seed=SEED,
                       workloads={"aks-dr/petclinic/petclinic-web": NeverReady()})
    url = fake.start_in_thread()
    try:
        scale_deployments(endpoint(url), NS, [WEB], 2)
        with caplog.at_level(logging.INFO, logger="multicloud_dr.kube"), \
                pytest.raises(KubernetesError) as timed_out:
            wait_rollout(endpoint(url), NS, WEB, 2, timeout=0.5, interval=0.05)
    finally:
        fake.shutdown()
    message = str(timed_out.value)
    assert "deployment petclinic/petclinic-web" in message and "did not roll out to 2 replicas within 0.5 s" in message
    assert "last seen 0 of 2 ready" in message and "Available=False" in message
    assert "kubectl -n petclinic describe deployment petclinic-web" in message
    assert "rollout of petclinic/petclinic-web to 2: 0 of 2 ready" in caplog.text      # progress in the log


def test_refusals_say_what_to_fix(lab_kube):
    url, _, _ = lab_kube
    with pytest.raises(ConfigError, match=r"not found in namespace petclinic.*check the topology's namespace"):
        scale_deployments(endpoint(url), NS, ["no-such-deployment"], 1)
    with pytest.raises(KubernetesError, match=r"refused its credentials .*401 Unauthorized.*renew the token"):
        scale_deployments(endpoint(url, token="expired"), NS, [WEB], 1)


# ------------------------------------------------------------------------------------- config maps and secrets


def test_config_map_is_created_then_left_alone_then_updated(lab_kube):
    url, _, _ = lab_kube
    conn = endpoint(url)
    created = set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "10.1.0.4", "DB_NAME": "petclinic"})
    same = set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "10.1.0.4"})
    moved = set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "10.1.0.9"})
    assert (created.action, same.action, moved.action) == ("created", "unchanged", "updated")
    assert same.resource_version == created.resource_version and moved.changed_keys == ("DB_HOST",)
    with Cluster(conn) as c:
        assert c.core.read_namespaced_config_map("petclinic-db", NS).data == {"DB_HOST": "10.1.0.9",
                                                                              "DB_NAME": "petclinic"}


def test_a_concurrent_writer_makes_the_write_retry_and_both_writes_survive(lab_kube, monkeypatch):
    """Between our read and our replace another writer changes the ConfigMap: our replace carries the version we
    read, gets 409 Conflict, re-reads and writes again. Semantics: our keys are merged in, so the other writer's
    key stays, and our value wins for the key we both set."""
    url, _, _ = lab_kube
    conn = endpoint(url)
    set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "old"})
    original = client.CoreV1Api.replace_namespaced_config_map
    raced = []

    def replace_after_a_rival(self, name, namespace, body, **kwargs):
        if not raced:
            raced.append(True)
            rival = self.read_namespaced_config_map(name, namespace)
            rival.data |= {"FEATURE_FLAG": "on", "DB_HOST": "rival"}
            original(self, name, namespace, rival)
        return original(self, name, namespace, body, **kwargs)

    monkeypatch.setattr(client.CoreV1Api, "replace_namespaced_config_map", replace_after_a_rival)
    result = set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "10.1.0.4"})
    assert result.action == "updated" and result.attempts == 2
    with Cluster(conn) as c:
        assert c.core.read_namespaced_config_map("petclinic-db", NS).data == {"DB_HOST": "10.1.0.4",
                                                                              "FEATURE_FLAG": "on"}


def test_a_writer_that_never_stops_conflicting_fails_after_bounded_tries(lab_kube, monkeypatch):
    url, _, _ = lab_kube
    conn = endpoint(url)
    set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "old"})
    original = client.CoreV1Api.replace_namespaced_config_map

    def always_raced(self, name, namespace, body, **kwargs):
        rival = self.read_namespaced_config_map(name, namespace)
        rival.data["TICK"] = str(int(rival.data.get("TICK", "0")) + 1)
        original(self, name, namespace, rival)
        return original(self, name, namespace, body, **kwargs)

    monkeypatch.setattr(client.CoreV1Api, "replace_namespaced_config_map", always_raced)
    with pytest.raises(KubernetesError, match=r"kept changing between our read and our write \(5 tries\)"):
        set_config_map(conn, NS, "petclinic-db", {"DB_HOST": "new"})


def test_secret_values_are_stored_base64_and_never_logged(lab_kube, caplog):
    url, _, _ = lab_kube
    conn = endpoint(url)
    with caplog.at_level(logging.DEBUG):
        created = set_secret(conn, NS, "db-credentials", {"DB_USER": "petclinic_app", "DB_PASSWORD": DB_PASSWORD})
        same = set_secret(conn, NS, "db-credentials", {"DB_PASSWORD": DB_PASSWORD})
        rotated = set_secret(conn, NS, "db-credentials", {"DB_PASSWORD": DB_PASSWORD + "-rotated"})
    assert (created.action, same.action, rotated.action) == ("created", "unchanged", "updated")
    assert DB_PASSWORD not in caplog.text and DB_PASSWORD not in json.dumps(rotated.to_dict())
    with Cluster(conn) as c:
        data = c.core.read_namespaced_secret("db-credentials", NS).data
    assert {k: base64.b64decode(v).decode() for k, v in data.items()} == {
        "DB_USER": "petclinic_app", "DB_PASSWORD": DB_PASSWORD + "-rotated"}


# ------------------------------------------------------------------------------------------------- a site's app


DR_APP = AppConfig(health_conn_id="app_dr", kubernetes_conn_id="aks_dr", namespace=NS, deployments=[WEB], replicas=1,
                   config_map="petclinic-db", config={"DB_HOST": "127.0.0.1", "DB_NAME": "petclinic"},
                   secret="petclinic-db-credentials", secret_from_conn_id="mysql_dr", rollout_timeout_seconds=10)
PRIMARY_APP = AppConfig(health_conn_id="app_primary", kubernetes_conn_id="eks_primary", namespace=NS,
                        deployments=[WEB], replicas=1, rollout_timeout_seconds=10)


def test_site_scale_up_points_the_app_at_its_database_then_waits_for_it(kube_conn):
    url, app, _ = kube_conn
    with SiteApp(DR_APP, "dr", poll_interval=0.05) as site:
        up = site.scale_up()
        again = site.scale_up()
        status = site.status()
    assert up["changed"] and up["config_map"]["action"] == "created" and up["secret"]["action"] == "created"
    assert up["rollout"][0]["ready"] == 1 and app.ready()
    assert not again["changed"] and again["config_map"]["action"] == again["secret"]["action"] == "unchanged"
    assert status["deployments"][WEB] | {"conditions": []} == {
        "replicas": 1, "ready": 1, "updated": 1, "available": 1, "generation": 2, "observed": 2, "rolled_out": True,
        "conditions": []}
    with Cluster(endpoint(url)) as c:
        secret = c.core.read_namespaced_secret("petclinic-db-credentials", NS).data
        config = c.core.read_namespaced_config_map("petclinic-db", NS).data
    assert base64.b64decode(secret["DB_PASSWORD"]).decode() == DB_PASSWORD
    assert base64.b64decode(secret["DB_USER"]).decode() == "petclinic_app"
    assert config == {"DB_HOST": "127.0.0.1", "DB_NAME": "petclinic"}
    assert DB_PASSWORD not in json.dumps(up)

    with SiteApp(DR_APP, "dr", poll_interval=0.05) as site:
        down = site.scale_down()
    assert down["rollout"][0]["ready"] == 0 and not app.ready()


def test_old_primary_is_scaled_down_when_its_api_answers(kube_conn):
    url, _, _ = kube_conn
    result = scale_down_if_reachable(PRIMARY_APP, timeout=5, site="primary")
    assert (result["reachable"], result["scaled"], result["detail"]) == (True, True, "scaled to 0")
    assert deployment(url, "eks-primary").replicas == 0
    assert scale_down_if_reachable(PRIMARY_APP, timeout=5, site="primary")["detail"] == "already at 0: nothing written"


def test_old_primary_that_is_unreachable_is_reported_not_raised(monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"       # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_EKS_PRIMARY", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(closed, "eks-primary", TOKEN, NS)}}))
    result = scale_down_if_reachable(PRIMARY_APP, timeout=2, site="primary")
    assert (result["reachable"], result["scaled"]) == (False, False)
    assert result["detail"].startswith("unreachable: not scaled") and "Connection refused" in result["detail"]


def test_old_primary_that_refuses_the_credentials_is_an_error(kube_conn, monkeypatch):
    url = kube_conn[0]
    monkeypatch.setenv("AIRFLOW_CONN_EKS_PRIMARY", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(url, "eks-primary", "revoked", NS)}}))
    with pytest.raises(KubernetesError, match="401 Unauthorized"):
        scale_down_if_reachable(PRIMARY_APP, timeout=5, site="primary")


# ------------------------------------------------------------------------- the connection, both ways it is given


def kube_config_forms(url: str) -> dict:
    config = kubeconfig(url, "eks-primary", TOKEN, NS)
    return {"dict": config, "json": json.dumps(config), "yaml": yaml.safe_dump(config)}


@pytest.mark.parametrize("form", ["dict", "json", "yaml"])
@pytest.mark.parametrize("inside_airflow", [False, True])
def test_kube_config_as_an_object_or_as_text_outside_and_inside_airflow(lab_kube, monkeypatch, form, inside_airflow):
    """Our connection layer and the provider's KubernetesHook (which writes a dict as JSON to a temporary file)
    both take the kube_config extra as an object or as JSON/YAML text."""
    url = lab_kube[0]
    if inside_airflow:
        import airflow.sdk  # noqa: F401   (as in a task: Airflow's lookup and hooks apply)

        monkeypatch.setattr(secrets_backend, "_state", {"imported_airflow": False})
    else:                   # as in drctl, even when an earlier test imported Airflow into this process
        monkeypatch.setattr(connections, "running_in_airflow", lambda: False)
    conn_id = f"kube_{form}"
    monkeypatch.setenv(connections.env_var_name(conn_id), json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube_config_forms(url)[form], "namespace": NS}}))
    assert connections.hooks_apply(conn_id) is inside_airflow
    result = scale_deployments(conn_id, None, [WEB], 2)
    assert result.namespace == NS and result.changed
    assert deployment(url, "eks-primary").replicas == 2


def test_a_scale_changed_between_read_and_write_is_read_again(lab_kube, monkeypatch):
    """Someone scales the deployment between our read and our write: the write carries the resourceVersion we read,
    gets 409 Conflict, and the decision is made again from what is there now."""
    url, _, _ = lab_kube
    original = client.AppsV1Api.patch_namespaced_deployment_scale
    raced = []

    def patch_after_a_rival(self, name, namespace, body, **kwargs):
        if not raced:
            raced.append(True)
            original(self, name, namespace, {"spec": {"replicas": 5}})      # an autoscaler, a person with kubectl
        return original(self, name, namespace, body, **kwargs)

    monkeypatch.setattr(client.AppsV1Api, "patch_namespaced_deployment_scale", patch_after_a_rival)
    result = scale_deployments(endpoint(url, "eks-primary"), NS, [WEB], 3).deployments[0]
    assert (result.before, result.after, result.attempts, result.changed) == (5, 3, 2, True)
    assert deployment(url, "eks-primary").replicas == 3


# -- a drill's copy of the app (kube/drill_app.py) --------------------------------------------------------------------


def test_a_drill_copy_runs_beside_the_live_app_and_its_teardown_removes_only_the_copy(kube_conn):
    from multicloud_dr.kube.drill_app import copy_deployments, drill_objects, remove_drill_copy

    url = kube_conn[0]
    app = AppConfig(health_conn_id="app_dr", kubernetes_conn_id="aks_dr", namespace=NS, deployments=[WEB],
                    config_map="petclinic-db", config={"DB_NAME": "petclinic_drill"}, secret="petclinic-db-credentials",
                    secret_from_conn_id="mysql_dr")
    live_version = resource_version(url)
    first = copy_deployments(app, "petclinic-drill", "-drill")
    again = copy_deployments(app, "petclinic-drill", "-drill")          # a retried step: updated in place
    assert [d["action"] for d in first + again] == ["created", "updated"]
    with SiteApp(app.model_copy(update={"namespace": "petclinic-drill"}), "dr") as copy:
        copy.scale_up(1)
    assert sorted(drill_objects(app, "petclinic-drill")) == [
        "configmap petclinic-drill/petclinic-db", f"deployment petclinic-drill/{WEB}",
        "secret petclinic-drill/petclinic-db-credentials"]
    assert resource_version(url) == live_version                    # the live deployment was not written
    assert remove_drill_copy(app, "petclinic-drill", "-drill")["deleted"] == [
        f"deployment petclinic-drill/{WEB}", "configmap petclinic-drill/petclinic-db",
        "secret petclinic-drill/petclinic-db-credentials"]
    assert drill_objects(app, "petclinic-drill") == []
    assert remove_drill_copy(app, "petclinic-drill", "-drill")["already"]      # idempotent
    assert deployment(url).replicas == 0                             # the live one as it was


def test_a_drill_never_writes_to_the_live_namespace_or_someone_elses_deployment(kube_conn):
    from multicloud_dr.kube.drill_app import copy_deployments, remove_drill_copy

    app = AppConfig(health_conn_id="app_dr", kubernetes_conn_id="aks_dr", namespace=NS, deployments=[WEB])
    with pytest.raises(ConfigError, match="not a drill namespace"):
        remove_drill_copy(app, NS, "-drill")
    with pytest.raises(ConfigError, match="not a drill namespace"):
        copy_deployments(app, NS, "")
    with Cluster("aks_dr", "petclinic-x") as cluster:              # someone's own deployment where a copy would go
        cluster.apps.create_namespaced_deployment("petclinic-x", {
            "metadata": {"name": WEB}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                                                "template": {"metadata": {"labels": {"app": "x"}},
                                                             "spec": {"containers": [{"name": "x", "image": "x"}]}}}})
    with pytest.raises(ConfigError, match="not made by a drill"):
        copy_deployments(app, "petclinic-x", "-x")
    assert remove_drill_copy(app, "petclinic-x", "-x")["deleted"] == []   # and the teardown leaves it
    with Cluster("aks_dr", "petclinic-x") as cluster:
        assert cluster.apps.read_namespaced_deployment(WEB, "petclinic-x").spec.replicas == 1
