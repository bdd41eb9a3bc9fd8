"""The lab's fake Kubernetes API server, driven by the official `kubernetes` client (what KubernetesHook returns).

The API server is faked (no Kubernetes can run here); its answers follow the shapes of the Kubernetes API
reference: apps/v1 Deployment, autoscaling/v1 Scale, v1 ConfigMap and Secret, v1 Status for errors. Each test runs
the fake in-process on a free port; a bound deployment's workload is a real HTTP server on a thread of this
process, so "ready" means it answers /health.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.kubernetes import KubernetesConnection
from multicloud_dr.lab.fake_kube import FakeKubeApi, kubeconfig

TOKEN = "fake-kube-token"
NS = "petclinic"
SEED = {
    "aks-dr/petclinic/deployments/petclinic-web": {"metadata": {"name": "petclinic-web"}, "spec": {"replicas": 0}},
    "aks-dr/petclinic/deployments/petclinic-api": {"metadata": {"name": "petclinic-api", "labels": {"tier": "api"}},
                                                   "spec": {"replicas": 1}},
    "eks-primary/petclinic/deployments/petclinic-web": {"metadata": {"name": "petclinic-web"}, "spec": {"replicas": 2}},
}


def api_clients(url: str, cluster: str, token: str = TOKEN) -> tuple[client.AppsV1Api, client.CoreV1Api]:
    conn = KubernetesConnection(Endpoint("kubernetes", extra={"kube_config": kubeconfig(url, cluster, token, NS)}))
    api = conn.api_client()
    return client.AppsV1Api(api_client=api), client.CoreV1Api(api_client=api)


def status_of(err: ApiException) -> dict:
    return json.loads(err.body)


@pytest.fixture
def fake(tmp_path):
    api = FakeKubeApi(token=TOKEN, state_file=tmp_path / "kube-state.json", seed=SEED)
    url = api.start_in_thread()
    yield api, url
    api.shutdown()


def eventually(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_scale_subresource_bumps_generation_and_an_unbound_deployment_is_ready_at_once(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    before = apps.read_namespaced_deployment("petclinic-web", NS)
    scale = apps.read_namespaced_deployment_scale("petclinic-web", NS)
    assert (scale.kind, scale.api_version, scale.spec.replicas, scale.status.replicas) == ("Scale", "autoscaling/v1",
                                                                                           0, 0)
    assert scale.status.selector == "app=petclinic-web"

    written = apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 3}})
    after = apps.read_namespaced_deployment_status("petclinic-web", NS)
    assert written.spec.replicas == 3 and int(written.metadata.resource_version) > int(before.metadata.resource_version)
    assert after.metadata.generation == before.metadata.generation + 1
    assert (after.status.observed_generation, after.status.ready_replicas, after.status.available_replicas,
            after.status.updated_replicas) == (after.metadata.generation, 3, 3, 3)
    # Zero counts are omitted, as the real API omits them: the client reads None.
    assert before.status.ready_replicas is None and before.status.observed_generation == before.metadata.generation

    # The other cluster served by the same process is untouched.
    other, _ = api_clients(url, "eks-primary")
    assert other.read_namespaced_deployment_scale("petclinic-web", NS).spec.replicas == 2


def test_a_write_that_changes_nothing_keeps_the_resource_version(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    first = apps.patch_namespaced_deployment_scale("petclinic-api", NS, {"spec": {"replicas": 1}})
    again = apps.replace_namespaced_deployment_scale("petclinic-api", NS, {"spec": {"replicas": 1}})
    deployment = apps.read_namespaced_deployment("petclinic-api", NS)
    assert first.metadata.resource_version == again.metadata.resource_version == deployment.metadata.resource_version
    assert deployment.metadata.generation == 1


def test_list_deployments_and_select_by_label(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    listed = apps.list_namespaced_deployment(NS)
    assert sorted(d.metadata.name for d in listed.items) == ["petclinic-api", "petclinic-web"]
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS, label_selector="tier=api").items] == [
        "petclinic-api"]
    assert apps.list_namespaced_deployment("other-namespace").items == []


def test_json_patch_and_a_scale_below_zero(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    # A list body makes the client send application/json-patch+json.
    patched = apps.patch_namespaced_deployment_scale("petclinic-web", NS, [
        {"op": "test", "path": "/spec/replicas", "value": 0}, {"op": "replace", "path": "/spec/replicas", "value": 2}])
    assert patched.spec.replicas == 2
    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": -1}})
    assert refused.value.status == 422 and status_of(refused.value)["reason"] == "Invalid"
    response = requests.patch(f"{url}/clusters/aks-dr/apis/apps/v1/namespaces/{NS}/deployments/petclinic-web/scale",
                              data="spec: {replicas: 1}", headers={"Authorization": f"Bearer {TOKEN}",
                                                                    "Content-Type": "application/yaml"}, timeout=5)
    assert response.status_code == 415 and response.json()["reason"] == "UnsupportedMediaType"


def test_config_map_create_replace_and_conflicts(fake):
    _, url = fake
    _, core = api_clients(url, "aks-dr")
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="petclinic-db"), data={"DB_HOST": "10.0.0.5"})
    created = core.create_namespaced_config_map(NS, body)
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(NS, body)
    assert exists.value.status == 409 and status_of(exists.value)["reason"] == "AlreadyExists"

    created.data["DB_NAME"] = "petclinic"
    replaced = core.replace_namespaced_config_map("petclinic-db", NS, created)   # carries the version it read
    assert replaced.data == {"DB_HOST": "10.0.0.5", "DB_NAME": "petclinic"}
    assert replaced.metadata.resource_version != created.metadata.resource_version

    created.data["DB_HOST"] = "stale"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("petclinic-db", NS, created)         # the version it read is gone
    status = status_of(conflict.value)
    assert (conflict.value.status, status["kind"], status["reason"], status["code"]) == (409, "Status", "Conflict", 409)
    assert "the object has been modified" in status["message"]
    assert core.read_namespaced_config_map("petclinic-db", NS).data["DB_HOST"] == "10.0.0.5"
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == ["petclinic-db"]


def test_secret_string_data_is_stored_base64_and_delete_then_404(fake):
    _, url = fake
    _, core = api_clients(url, "aks-dr")
    core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="db-credentials"),
                                                      string_data={"DB_USER": "app", "DB_PASSWORD": "s3cret"}))
    secret = core.read_namespaced_secret("db-credentials", NS)
    assert secret.type == "Opaque" and secret.string_data is None
    assert {k: base64.b64decode(v).decode() for k, v in secret.data.items()} == {"DB_USER": "app",
                                                                                 "DB_PASSWORD": "s3cret"}
    core.patch_namespaced_secret("db-credentials", NS, {"stringData": {"DB_PASSWORD": "n3w"}})
    assert base64.b64decode(core.read_namespaced_secret("db-credentials", NS).data["DB_PASSWORD"]) == b"n3w"

    deleted = core.delete_namespaced_secret("db-credentials", NS)
    assert deleted.status == "Success" and deleted.details.name == "db-credentials"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("db-credentials", NS)
    status = status_of(missing.value)
    assert (missing.value.status, status["reason"], status["details"]["kind"]) == (404, "NotFound", "secrets")
    assert status["message"] == 'secrets "db-credentials" not found'


def test_unknown_objects_and_paths_are_404(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment_scale("no-such-app", NS)
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'deployments.apps "no-such-app" not found'
    response = requests.get(f"{url}/clusters/aks-dr/apis/batch/v1/namespaces/{NS}/jobs",
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code == 404 and response.json()["kind"] == "Status"


def test_a_wrong_or_missing_token_is_401(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr", token="not-the-token")
    with pytest.raises(ApiException) as refused:
        apps.read_namespaced_deployment("petclinic-web", NS)
    assert refused.value.status == 401 and status_of(refused.value)["reason"] == "Unauthorized"
    bare = requests.get(f"{url}/clusters/aks-dr/version", timeout=5)
    assert bare.status_code == 401 and bare.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                       "status": "Failure", "message": "Unauthorized",
                                                       "reason": "Unauthorized", "code": 401}
    ok = requests.get(f"{url}/clusters/aks-dr/version", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert ok.json()["major"] == "1"


def test_objects_survive_a_restart_and_the_seed_does_not_overwrite_them(tmp_path):
    state = tmp_path / "kube-state.json"
    api = FakeKubeApi(token=TOKEN, state_file=state, seed=SEED)
    url = api.start_in_thread()
    apps, core = api_clients(url, "aks-dr")
    apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 4}})
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept"),
                                                             data={"k": "v"}))
    version = core.read_namespaced_config_map("kept", NS).metadata.resource_version
    api.shutdown()
    assert state.stat().st_mode & 0o777 == 0o600          # it holds the secrets, as etcd does

    again = FakeKubeApi(token=TOKEN, state_file=state, seed=SEED)
    url = again.start_in_thread()
    try:
        apps, core = api_clients(url, "aks-dr")
        assert apps.read_namespaced_deployment_scale("petclinic-web", NS).spec.replicas == 4   # not the seed's 0
        kept = core.read_namespaced_config_map("kept", NS)
        assert (kept.data, kept.metadata.resource_version) == ({"k": "v"}, version)
        kept.data["k"] = "w"
        assert int(core.replace_namespaced_config_map("kept", NS, kept).metadata.resource_version) > int(version)
    finally:
        again.shutdown()


def test_a_bound_deployment_scales_its_workload_and_is_ready_when_it_answers(tmp_path, health_app):
    workload = health_app(running=False)
    api = FakeKubeApi(token=TOKEN, state_file=tmp_path / "s.json", seed=SEED,
                      workloads={"aks-dr/petclinic/petclinic-web": workload})
    url = api.start_in_thread()
    try:
        apps, _ = api_clients(url, "aks-dr")
        eventually(lambda: workload.calls == [0])            # once at start, for the seeded replicas
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 1}})

        def rolled_out() -> bool:
            d = apps.read_namespaced_deployment_status("petclinic-web", NS)
            return d.status.observed_generation == d.metadata.generation and d.status.ready_replicas == 1

        eventually(rolled_out)
        assert workload.ready()                              # a real server answers /health
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 0}})
        eventually(lambda: not workload.ready())
        d = apps.read_namespaced_deployment_status("petclinic-web", NS)
        eventually(lambda: apps.read_namespaced_deployment_status("petclinic-web", NS).status.observed_generation
                   == d.metadata.generation)
        assert apps.read_namespaced_deployment_status("petclinic-web", NS).status.ready_replicas is None
        assert workload.calls == [0, 1, 0]
    finally:
        api.shutdown()


def test_a_bound_deployment_whose_workload_is_down_reports_not_ready(tmp_path):
    class Broken:
        def scale(self, replicas: int) -> None:
            raise RuntimeError("app-dr exited with status 1")

        def ready(self) -> bool:
            return False

    api = FakeKubeApi(token=TOKEN, state_file=tmp_path / "s.json", seed=SEED,
                      workloads={"aks-dr/petclinic/petclinic-api": Broken()})
    url = api.start_in_thread()
    try:
        apps, _ = api_clients(url, "aks-dr")

        def failed() -> bool:
            conditions = apps.read_namespaced_deployment_status("petclinic-api", NS).status.conditions or []
            return any(c.type == "ReplicaFailure" for c in conditions)

        eventually(failed)
        status = apps.read_namespaced_deployment_status("petclinic-api", NS).status
        assert status.ready_replicas is None and status.unavailable_replicas == 1
        assert any("app-dr exited" in (c.message or "") for c in status.conditions)
    finally:
        api.shutdown()


def test_a_scale_write_with_a_stale_resource_version_is_a_conflict(fake):
    _, url = fake
    apps, _ = api_clients(url, "aks-dr")
    read = apps.read_namespaced_deployment_scale("petclinic-web", NS)
    apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 2}})
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {
            "metadata": {"resourceVersion": read.metadata.resource_version}, "spec": {"replicas": 7}})
    assert conflict.value.status == 409 and status_of(conflict.value)["reason"] == "Conflict"
    assert apps.read_namespaced_deployment_scale("petclinic-web", NS).spec.replicas == 2


class EnvRecorder:
    """A workload that takes its pod's environment (as the lab's apps do): records what each start got."""

    takes_pod_env = True

    def __init__(self) -> None:
        self.starts: list[dict | None] = []

    def scale(self, replicas: int, env: dict | None = None) -> None:
        if replicas:
            self.starts.append(env)

    def ready(self) -> bool:
        return bool(self.starts)


def test_a_pod_gets_its_config_map_and_secret_as_environment_when_it_starts(tmp_path):
    deployment = {"metadata": {"name": "petclinic-web"}, "spec": {"replicas": 0, "template": {"spec": {
        "containers": [{"name": "web", "envFrom": [{"configMapRef": {"name": "petclinic-db"}},
                                                   {"secretRef": {"name": "petclinic-db-credentials",
                                                                  "optional": True}}],
                        "env": [{"name": "SITE", "value": "dr"}]}]}}}}
    workload = EnvRecorder()
    api = FakeKubeApi(token=TOKEN, state_file=tmp_path / "s.json",
                      workloads={"aks-dr/petclinic/petclinic-web": workload},
                      seed={"aks-dr/petclinic/deployments/petclinic-web": deployment,
                            "aks-dr/petclinic/configmaps/petclinic-db": {"metadata": {"name": "petclinic-db"},
                                                                         "data": {"DB_HOST": "db.internal"}}})
    url = api.start_in_thread()
    try:
        apps, core = api_clients(url, "aks-dr")
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 1}})
        eventually(lambda: len(workload.starts) == 1)
        assert workload.starts[0] == {"DB_HOST": "db.internal", "SITE": "dr"}     # the optional Secret is absent
        core.create_namespaced_secret(NS, {"metadata": {"name": "petclinic-db-credentials"},
                                           "stringData": {"DB_USER": "app", "DB_PASSWORD": "s3cret"}})
        apps.patch_namespaced_deployment_scale("petclinic-web", NS, {"spec": {"replicas": 2}})
        eventually(lambda: len(workload.starts) == 2)
        assert workload.starts[1] == {"DB_HOST": "db.internal", "DB_USER": "app", "DB_PASSWORD": "s3cret",
                                      "SITE": "dr"}
    finally:
        api.shutdown()
