"""Static checks of deploy/helm/values.yaml, the production values for the official Airflow Helm chart.

No Kubernetes cluster (and no helm binary) exists on CI, so the chart is never installed or rendered here. These
tests read the values file and check it against the key paths that chart version documents (the list copied into
deploy/helm/chart-1.22.0-parameters.txt from its Parameters reference) and against what production needs: the
project image pinned, the KubernetesExecutor, workload identity on the workers, a secrets backend, remote task
logs, StatsD, the topology mounted from a ConfigMap, and no credential written in the file.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
HELM_DIR = REPO_ROOT / "deploy" / "helm"
VALUES_FILE = HELM_DIR / "values.yaml"
CHART_VERSION = "1.22.0"
PARAMETERS_FILE = HELM_DIR / f"chart-{CHART_VERSION}-parameters.txt"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
README = REPO_ROOT / "README.md"

AWS_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
AZURE_CLIENT_ANNOTATION = "azure.workload.identity/client-id"
AZURE_USE_LABEL = "azure.workload.identity/use"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Parameters that hold a credential themselves: setting any of them writes a secret into the values file. The
# chart offers a *SecretName (or an existing Secret) for each; that is what a production values file uses.
SECRET_PARAMETERS = re.compile(
    r"(^|\.)(fernetKey|jwtSecret|apiSecretKey|webserverSecretKey|pass|password|postgresPassword|sshKey|"
    r"brokerUrl|keytabBase64Content)$"
)
URI_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]+:[^@/\s]+@", re.IGNORECASE)
# A long run of base64/hex characters: a key or token pasted in (UUIDs and ARNs contain '-' or ':').
KEY_LIKE = re.compile(r"[A-Za-z0-9+/=]{32,}")


# --------------------------------------------------------------------------------------------------- helpers ---
@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    assert VALUES_FILE.is_file(), f"{VALUES_FILE} is missing"
    data = yaml.safe_load(VALUES_FILE.read_text())
    assert isinstance(data, dict) and data, f"{VALUES_FILE} does not parse to a non-empty mapping"
    return data


@pytest.fixture(scope="module")
def documented() -> frozenset[str]:
    return _documented_paths(PARAMETERS_FILE)


def _documented_paths(path: Path) -> frozenset[str]:
    assert path.is_file(), f"{path} is missing"
    lines = [line.strip() for line in path.read_text().splitlines()]
    paths = frozenset(line for line in lines if line and not line.startswith("#"))
    assert paths, f"{path} lists no parameter paths"
    return paths


def _undocumented(node: Any, documented: frozenset[str], prefix: str = "") -> list[str]:
    """Key paths of `node` that the chart does not document.

    A path is accepted when the chart documents it. If the chart documents nothing below it, its value is
    opaque to the chart's reference (a free-form map such as config, labels, annotations or extraConfigMaps, a
    list such as env or volumes, a Kubernetes object such as resources) and is not walked further; otherwise its
    children must be documented in turn. A mapping the chart does not document is walked, a scalar or list the
    chart does not document is reported.
    """
    if prefix and prefix in documented and not any(p.startswith(prefix + ".") for p in documented):
        return []
    if isinstance(node, dict) and node:
        problems = []
        for key, child in node.items():
            problems += _undocumented(child, documented, f"{prefix}.{key}" if prefix else str(key))
        return problems
    return [] if prefix in documented else [prefix]


def _get(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{VALUES_FILE.name} does not set {dotted}"
        node = node[part]
    return node


def _flatten(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for key, child in node.items() for item in _flatten(child, f"{prefix}.{key}" if prefix else key)]
    if isinstance(node, list):
        return [item for i, child in enumerate(node) for item in _flatten(child, f"{prefix}[{i}]")]
    return [(prefix, node)]


def _credential_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    for path, value in _flatten(values):
        plain = re.sub(r"\[\d+\]", "", path)
        if SECRET_PARAMETERS.search(plain) and value not in (None, ""):
            problems.append(f"{path} holds a credential; create a Secret and use the chart's *SecretName instead")
        if isinstance(value, str) and URI_WITH_PASSWORD.search(value):
            problems.append(f"{path} holds a URI with a password")
        if isinstance(value, str) and KEY_LIKE.search(value):
            problems.append(f"{path} holds what looks like a key or token")
    return problems


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _requirements_airflow_pin() -> str:
    match = re.search(r"^apache-airflow==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, f"{REQUIREMENTS} has no apache-airflow== pin"
    return match.group(1)


def _production_readme_section() -> str:
    text = README.read_text()
    match = re.search(r"^## Running it: one machine, a team, production\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Running it: one machine, a team, production' section"
    return match.group(1)


# ------------------------------------------------------------------------------------------------- the keys ---
def test_every_key_path_is_documented_by_the_chart(values: dict[str, Any], documented: frozenset[str]) -> None:
    problems = _undocumented(values, documented)
    assert not problems, (
        f"{VALUES_FILE.name} sets key paths that Airflow Helm chart {CHART_VERSION} does not document "
        f"(see {PARAMETERS_FILE.name}): {problems}"
    )


def test_the_walker_reports_what_the_chart_does_not_know() -> None:
    """The check above must be able to fail: typos, invented keys and keys under documented leaves."""
    documented = frozenset({"config", "images.airflow.tag", "workers.kubernetes.serviceAccount.annotations",
                            "data.metadataConnection", "data.metadataConnection.user"})
    assert _undocumented({"images": {"airflow": {"tagg": "1"}}}, documented) == ["images.airflow.tagg"]
    assert _undocumented({"workers": {"kubernetes": {"serviceAcount": {"name": "x"}}}}, documented) == [
        "workers.kubernetes.serviceAcount.name"
    ]
    assert _undocumented({"executor": "KubernetesExecutor"}, documented) == ["executor"]
    assert _undocumented({"data": {"metadataConnection": {"usr": "x"}}}, documented) == [
        "data.metadataConnection.usr"
    ]
    assert not _undocumented({"config": {"any_section": {"any_key": "x"}}}, documented)
    assert not _undocumented({"workers": {"kubernetes": {"serviceAccount": {"annotations": {"a/b": "c"}}}}},
                             documented)


def test_the_parameter_list_is_for_the_chart_version_the_values_name() -> None:
    header = PARAMETERS_FILE.read_text().split("\n\n", 1)[0]
    assert f"version {CHART_VERSION}" in header and f"helm-chart/{CHART_VERSION}/parameters-ref" in header, (
        f"{PARAMETERS_FILE.name} does not say it was copied from chart {CHART_VERSION}'s Parameters reference"
    )
    assert f"chart, version {CHART_VERSION}" in VALUES_FILE.read_text().split("\n\n", 1)[0], (
        f"{VALUES_FILE.name}'s header does not name chart version {CHART_VERSION}"
    )
    assert f"--version {CHART_VERSION}" in _production_readme_section(), (
        f"README's production section does not install chart version {CHART_VERSION}"
    )


# ---------------------------------------------------------------------------------------- what it must set ---
def test_project_image_is_pinned_and_used_everywhere(values: dict[str, Any]) -> None:
    repository = _get(values, "images.airflow.repository")
    tag = str(_get(values, "images.airflow.tag"))
    assert repository and "/" in repository, f"images.airflow.repository {repository!r} is not a registry image"
    assert not repository.startswith("apache/airflow"), "images.airflow must be the project image, not apache/airflow"
    assert tag and tag.lower() != "latest" and re.fullmatch(r"\d+\.\d+\.\d+([-.+][\w.-]+)?", tag), (
        f"images.airflow.tag {tag!r} is not a pinned release tag"
    )
    # The KubernetesExecutor's task pods take their image from the default* keys (images.pod_template unset).
    assert values.get("defaultAirflowRepository") == repository, "defaultAirflowRepository differs from images.airflow"
    assert str(values.get("defaultAirflowTag")) == tag, "defaultAirflowTag differs from images.airflow.tag"
    assert not (values.get("images", {}).get("pod_template") or {}).get("repository"), (
        "images.pod_template.repository is set: task pods would not run the project image"
    )
    project_version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert tag == project_version or tag.startswith(f"{project_version}-"), (
        f"images.airflow.tag {tag!r} does not name the release in pyproject.toml ({project_version})"
    )


def test_airflow_version_matches_the_image(values: dict[str, Any]) -> None:
    assert str(values.get("airflowVersion")) == _requirements_airflow_pin(), (
        "airflowVersion (the chart's switches for the Airflow it deploys) differs from requirements.txt's pin"
    )


def test_executor_is_kubernetes(values: dict[str, Any]) -> None:
    assert values.get("executor") == "KubernetesExecutor"


def test_workers_have_aws_and_azure_workload_identity(values: dict[str, Any]) -> None:
    annotations = _get(values, "workers.kubernetes.serviceAccount.annotations")
    role = annotations.get(AWS_ROLE_ANNOTATION, "")
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", role), (
        f"workers' {AWS_ROLE_ANNOTATION} {role!r} is not an IAM role ARN (EKS IRSA)"
    )
    client_id = annotations.get(AZURE_CLIENT_ANNOTATION, "")
    assert UUID_RE.fullmatch(client_id), (
        f"workers' {AZURE_CLIENT_ANNOTATION} {client_id!r} is not a managed identity's client id "
        "(Azure Workload Identity)"
    )
    assert _get(values, "workers.kubernetes.serviceAccount.create") is True, (
        "the workers' service account is not created"
    )
    # Azure Workload Identity only mutates pods with this label, and the label value is the string "true".
    assert _get(values, "workers.kubernetes.labels").get(AZURE_USE_LABEL) == "true", (
        f"the task pods lack the label {AZURE_USE_LABEL}: \"true\""
    )


def test_every_azure_identity_comes_with_its_pod_label(values: dict[str, Any]) -> None:
    """A service account with an Azure client id is useless if its pods are not labelled, and vice versa."""
    for component, node in values.items():
        if not isinstance(node, dict):
            continue
        for base in (node, node.get("kubernetes") or {}, node.get("celery") or {}):
            account = (base.get("serviceAccount") or {}).get("annotations") or {}
            labels = base.get("labels") or {}
            if AZURE_CLIENT_ANNOTATION in account:
                assert labels.get(AZURE_USE_LABEL) == "true", f"{component}: client id without the pod label"
            if AZURE_USE_LABEL in labels:
                assert AZURE_CLIENT_ANNOTATION in account, f"{component}: pod label without a client id"


def test_secrets_backend_is_a_real_backend(values: dict[str, Any]) -> None:
    secrets = _get(values, "config.secrets")
    module_name, _, class_name = str(secrets.get("backend", "")).rpartition(".")
    assert module_name, "config.secrets.backend is not a class path"
    backend = getattr(importlib.import_module(module_name), class_name, None)
    assert backend is not None, f"config.secrets.backend {secrets['backend']!r} does not exist in the image's providers"
    from airflow.secrets import BaseSecretsBackend

    assert issubclass(backend, BaseSecretsBackend), f"{secrets['backend']} is not a secrets backend"
    kwargs = json.loads(secrets.get("backend_kwargs", ""))
    assert isinstance(kwargs, dict) and kwargs.get("connections_prefix"), (
        "config.secrets.backend_kwargs must be a JSON object naming connections_prefix"
    )
    if class_name == "AzureKeyVaultBackend":
        assert str(kwargs.get("vault_url", "")).startswith("https://"), "the Key Vault backend needs an https vault_url"


def test_task_logs_go_to_object_storage(values: dict[str, Any]) -> None:
    logging_cfg = _get(values, "config.logging")
    assert _truthy(logging_cfg.get("remote_logging")), "config.logging.remote_logging is not True"
    folder = str(logging_cfg.get("remote_base_log_folder", ""))
    assert folder.startswith(("wasb://", "s3://")), f"remote_base_log_folder {folder!r} is not wasb:// or s3://"
    assert logging_cfg.get("remote_log_conn_id"), "config.logging.remote_log_conn_id is not set"
    if folder.startswith("wasb://"):
        assert _get(values, "config.azure_remote_logging.remote_wasb_log_container"), (
            "Blob logs need [azure_remote_logging] remote_wasb_log_container"
        )


def test_statsd_is_on_for_the_chart_exporter(values: dict[str, Any]) -> None:
    assert _get(values, "statsd.enabled") is True, "statsd.enabled must be true (the chart's statsd-exporter)"
    assert _truthy(_get(values, "config.metrics.statsd_on")), "config.metrics.statsd_on must be True"


def test_config_keys_are_airflow_options(values: dict[str, Any]) -> None:
    from airflow.configuration import conf

    unknown = [
        f"{section}.{key}"
        for section, options in (values.get("config") or {}).items()
        for key in options
        if not conf.has_option(section, key)
    ]
    assert not unknown, f"config sets options Airflow (with the image's providers) does not have: {unknown}"


def test_topology_comes_from_a_configmap_mount(values: dict[str, Any]) -> None:
    env = {item["name"]: item.get("value") for item in values.get("env") or []}
    topology = env.get("MULTICLOUD_DR_TOPOLOGY")
    assert topology, "env does not set MULTICLOUD_DR_TOPOLOGY for the Airflow containers"
    topology_path = PurePosixPath(topology)
    mounts = [m for m in values.get("volumeMounts") or [] if topology_path.is_relative_to(m["mountPath"])]
    assert mounts, f"no volumeMount contains MULTICLOUD_DR_TOPOLOGY ({topology})"
    mount = mounts[0]
    assert mount.get("readOnly") is True, f"the topology mount {mount['mountPath']} is not read-only"
    assert not PurePosixPath("/opt/airflow/include").is_relative_to(mount["mountPath"]) and not PurePosixPath(
        mount["mountPath"]
    ).is_relative_to("/opt/airflow/include"), "the topology mount must not shadow the image's include/ (SQL, Terraform)"
    volumes = {v["name"]: v for v in values.get("volumes") or []}
    volume = volumes.get(mount["name"])
    assert volume and (volume.get("configMap") or {}).get("name"), (
        f"volume {mount['name']!r} of the topology mount is not a ConfigMap"
    )
    configmap = volume["configMap"]["name"]
    key = str(topology_path.relative_to(mount["mountPath"]))
    managed = values.get("extraConfigMaps") or {}
    if configmap in managed:
        assert f"{key}:" in str(managed[configmap].get("data", "")), f"extraConfigMaps {configmap} has no key {key}"
    else:
        assert re.search(rf"kubectl create configmap {re.escape(configmap)}\b.*--from-file={re.escape(key)}=",
                         _production_readme_section()), (
            f"ConfigMap {configmap} is neither managed with extraConfigMaps nor created in the README "
            f"(kubectl create configmap {configmap} --from-file={key}=...)"
        )


def test_no_credentials_in_the_values_file(values: dict[str, Any]) -> None:
    problems = _credential_problems(values)
    assert not problems, "credentials in deploy/helm/values.yaml:\n" + "\n".join(problems)
    assert values.get("postgresql", {}).get("enabled") is False, "the chart's bundled PostgreSQL is not for production"
    for name in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName"):
        assert values.get(name), f"{name} is not set: the chart would generate (and on upgrade rotate) that secret"
    assert _get(values, "data.metadataSecretName"), "data.metadataSecretName is not set"


def test_credential_checker_catches_literals() -> None:
    assert _credential_problems({"fernetKey": "abc"})
    assert _credential_problems({"data": {"metadataConnection": {"pass": "hunter2"}}})
    assert _credential_problems({"env": [{"name": "X", "value": "postgresql://u:p@db:5432/airflow"}]})
    assert _credential_problems({"env": [{"name": "X", "value": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6"}]})
    assert not _credential_problems({"fernetKeySecretName": "airflow-fernet", "data": {"metadataSecretName": "db"}})
    assert not _credential_problems({"a": {AZURE_CLIENT_ANNOTATION: "00000000-0000-0000-0000-000000000000"}})
    assert not _credential_problems({"a": {AWS_ROLE_ANNOTATION: "arn:aws:iam::111122223333:role/x"}})


def test_readme_walks_through_the_install() -> None:
    section = _production_readme_section()
    for needle in ("helm repo add apache-airflow https://airflow.apache.org", "-f deploy/helm/values.yaml",
                   "docker build", "docker push", "kubectl create secret", "federated", "IRSA", "Key Vault"):
        assert needle in section, f"README's production section does not mention {needle!r}"
