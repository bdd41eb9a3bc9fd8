"""The connection layer without servers: each type's declarative mapping (what the SDK gets, what Terraform gets)
from sample connections, the inside-Airflow path through the providers' hooks, and that no other module builds a
client. STS role assumption runs against moto's in-process AWS (`mock_aws`), not a server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from multicloud_dr import connections, secrets_backend
from multicloud_dr.connections import Endpoint
from multicloud_dr.connections.aws import AwsConnection, aws_client
from multicloud_dr.connections.gcp import GcpConnection, storage_client
from multicloud_dr.connections.http import HttpConnection, http_session
from multicloud_dr.connections.kubernetes import KubernetesConnection, api_client
from multicloud_dr.connections.wasb import CLIENT_OPTIONS, AzureConnection, WasbConnection, blob_service_client
from multicloud_dr.exceptions import ConfigError
from multicloud_dr.terraform.credentials import credentials_env

ROOT = Path(__file__).resolve().parents[2]
KEY = "c2VjcmV0LWFjY291bnQta2V5"          # base64, as an account key is
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"
CONN_STR = f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint={AZURITE};"


def wasb(**fields) -> WasbConnection:
    return WasbConnection(Endpoint("wasb", **fields))


# ------------------------------------------------------------------------------------------------ wasb / azure


def test_wasb_connection_string_gets_the_client_options_and_its_key_for_terraform():
    conn = wasb(extra={"extra__wasb__connection_string": CONN_STR})       # the provider's old prefixed spelling
    assert conn.mode.name == "connection_string"
    assert conn.client_kwargs() == {"conn_str": CONN_STR, **CLIENT_OPTIONS}
    assert conn.terraform_env() == {"ARM_ACCESS_KEY": KEY}
    client = conn.blob_service_client()
    assert client.url.startswith(AZURITE) and client.credential.account_key == KEY
    # The options survive: 1 s first retry and 3 retries (not 15 s and 10), 16 MiB reads, 20 s / 120 s timeouts.
    retry = client._config.retry_policy
    assert (retry.initial_backoff, retry.increment_base, retry.total_retries) == (1, 2, 3)
    assert client._config.max_chunk_get_size == 16 * 1024 * 1024


@pytest.mark.parametrize(("fields", "url"), [
    ({"host": "drbackups", "password": KEY}, "https://drbackups.blob.core.windows.net"),       # host = the name
    ({"login": "drbackups", "password": KEY}, "https://drbackups.blob.core.windows.net"),      # login = the name
    ({"host": AZURITE, "extra": {"account_key": KEY}}, AZURITE),                                # host = a URL
    ({"host": "drbackups.blob.core.windows.net", "password": KEY}, "https://drbackups.blob.core.windows.net"),
])
def test_wasb_account_key_with_the_account_as_name_or_url(fields, url):
    conn = wasb(**fields)
    assert conn.mode.name == "account_key"
    kwargs = conn.client_kwargs()
    assert kwargs["account_url"] == url and kwargs["credential"] == KEY
    assert conn.terraform_env() == {"ARM_ACCESS_KEY": KEY}


def test_wasb_sas_token_shared_key_and_connection_extras():
    from azure.core.credentials import AzureSasCredential

    sas = wasb(host=AZURITE, extra={"sas_token": "sv=2024&sig=abc", "read_timeout": 5})
    kwargs = sas.client_kwargs()
    assert isinstance(kwargs["credential"], AzureSasCredential) and kwargs["credential"].signature == "sv=2024&sig=abc"
    assert kwargs["read_timeout"] == 5            # the connection's own extras win over the defaults, as in the hook
    assert sas.terraform_env() == {"ARM_SAS_TOKEN": "sv=2024&sig=abc"}
    url_sas = wasb(extra={"sas_token": "https://acct.blob.core.windows.net/?sv=1&sig=x"})
    assert url_sas.client_kwargs()["account_url"] == "https://acct.blob.core.windows.net/?sv=1&sig=x"
    shared = wasb(login="acct", extra={"shared_access_key": KEY})
    assert shared.mode.name == "shared_access_key" and shared.client_kwargs()["credential"] == KEY


def test_wasb_service_principal_and_managed_identity():
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    sp = wasb(host="https://acct.blob.core.windows.net", login="app-id", password="app-secret",
              extra={"tenant_id": "tenant-1"})
    assert sp.mode.name == "service_principal"
    assert isinstance(sp.client_kwargs()["credential"], ClientSecretCredential)
    assert sp.terraform_env() == {"ARM_CLIENT_ID": "app-id", "ARM_CLIENT_SECRET": "app-secret",
                                  "ARM_TENANT_ID": "tenant-1"}
    with pytest.raises(ConfigError, match="client id"):
        wasb(host="https://acct.blob.core.windows.net", extra={"tenant_id": "t"}).client_kwargs()
    mi = wasb(host="https://acct.blob.core.windows.net", extra={"managed_identity_client_id": "mi-1"})
    assert mi.mode.name == "default_credential"
    assert isinstance(mi.client_kwargs()["credential"], DefaultAzureCredential)
    assert mi.terraform_env() == {}
    with pytest.raises(ConfigError, match="names no storage account"):
        wasb(password=KEY).client_kwargs()


def test_azure_connection_for_terraform():
    sp = AzureConnection(Endpoint("azure", login="client-id", password="s3cret",
                                  extra={"extra__azure__tenantId": "t-1", "subscription_id": "sub-1"}))
    assert sp.terraform_env() == {"ARM_CLIENT_ID": "client-id", "ARM_CLIENT_SECRET": "s3cret", "ARM_TENANT_ID": "t-1",
                                  "ARM_SUBSCRIPTION_ID": "sub-1"}
    mi = AzureConnection(Endpoint("azure", extra={"managed_identity_client_id": "mi-1", "tenantId": "t-1"}))
    assert mi.terraform_env() == {"ARM_CLIENT_ID": "mi-1", "ARM_TENANT_ID": "t-1", "ARM_USE_MSI": "true"}


# ------------------------------------------------------------------------------------------------ aws


def captured_request(client, method: str, **params):
    """The request `client.<method>` would send (stopped before it leaves: no server needed)."""
    seen = []

    def stop(request, **_):
        seen.append(request)
        raise RuntimeError("stopped before sending")

    client.meta.events.register("before-send", stop)
    with pytest.raises(RuntimeError, match="stopped before sending"):
        getattr(client, method)(**params)
    return seen[0]


def test_aws_keys_region_endpoint_and_terraform_env():
    conn = AwsConnection(Endpoint("aws", login="AKIAEXAMPLE", password="s3cret", extra={
        "aws_session_token": "tok", "region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"}))
    assert conn.session_kwargs() == {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3cret",
                                     "aws_session_token": "tok", "region_name": "eu-west-1"}
    assert conn.terraform_env() == {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cret",
                                    "AWS_SESSION_TOKEN": "tok", "AWS_REGION": "eu-west-1",
                                    "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}
    s3 = conn.client("s3")
    assert s3.meta.region_name == "eu-west-1" and s3.meta.endpoint_url == "http://127.0.0.1:1"
    request = captured_request(s3, "list_buckets")
    authorization = request.headers["Authorization"]
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    assert "/eu-west-1/s3/aws4_request" in authorization        # the signature's scope: the region requests use
    # The old spellings Terraform read before the table, and service_config's per-service endpoint.
    old = AwsConnection(Endpoint("aws", extra={"extra__aws__region": "ap-south-1",
                                               "service_config": {"sts": {"endpoint_url": "http://sts.local:1"}}}))
    assert old.session_kwargs() == {"region_name": "ap-south-1"}
    assert old.endpoint_url("sts") == "http://sts.local:1" and old.endpoint_url("s3") is None


def test_aws_region_is_never_forced_over_the_connection_or_the_environment(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    keys = {"login": "AKIAEXAMPLE", "password": "s3cret"}
    assert aws_client(Endpoint("aws", **keys), "dms").meta.region_name == "us-east-1"     # none anywhere
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert aws_client(Endpoint("aws", **keys), "dms").meta.region_name == "eu-central-1"  # the environment's
    connection = Endpoint("aws", **keys, extra={"region_name": "ap-southeast-2"})
    assert aws_client(connection, "dms").meta.region_name == "ap-southeast-2"             # the connection's


@pytest.mark.parametrize(("style", "url"), [("path", "http://localhost:1/bkt/k"), ("virtual", "http://bkt.localhost:1/k")])
def test_aws_config_kwargs_reach_botocore(style, url):
    # With a custom endpoint botocore addresses buckets by path unless told otherwise: "virtual" shows the
    # connection's config_kwargs (JSON text, as a URI's extra carries them) reached the client.
    conn = AwsConnection(Endpoint("aws", login="a", password="b", extra={
        "endpoint_url": "http://localhost:1", "config_kwargs": json.dumps({"s3": {"addressing_style": style}})}))
    s3 = conn.client("s3")
    assert s3.meta.config.s3 == {"addressing_style": style}
    assert captured_request(s3, "put_object", Bucket="bkt", Key="k", Body=b"x").url == url
    with pytest.raises(ConfigError, match="config_kwargs is not valid JSON") as bad:
        AwsConnection(Endpoint("aws", extra={"config_kwargs": "{'s3': secret"}))
    assert "secret" not in str(bad.value)


def test_aws_role_arn_assumes_the_role_through_sts(monkeypatch):
    from moto import mock_aws

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    role = "arn:aws:iam::123456789012:role/dr-deployer"
    endpoint = Endpoint("aws", login="AKIAEXAMPLEBASE", password="base-secret",
                        extra={"region_name": "eu-west-1", "role_arn": role,
                               "assume_role_kwargs": {"DurationSeconds": 900}})
    with mock_aws():
        conn = AwsConnection(endpoint)
        identity = conn.client("sts").get_caller_identity()
        assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/dr-deployer/multicloud-dr_")
        env = conn.terraform_env()
    assert env["AWS_ACCESS_KEY_ID"] not in ("", "AKIAEXAMPLEBASE") and env["AWS_SESSION_TOKEN"]
    assert env["AWS_SECRET_ACCESS_KEY"] != "base-secret" and env["AWS_REGION"] == "eu-west-1"
    saml = AwsConnection(Endpoint("aws", extra={"role_arn": role, "assume_role_method": "assume_role_with_saml"}))
    with pytest.raises(ConfigError, match="only inside Airflow"):
        saml.session()


# ------------------------------------------------------------------------------------------------ gcp


@pytest.fixture(scope="module")
def service_account_key() -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "key-project", "private_key_id": "1",
            "private_key": pem.replace("\n", "\\n"),     # escaped, as pasted into a connection form
            "client_email": "dr@key-project.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token"}


def test_gcp_keyfile_dict_key_path_and_terraform_env(service_account_key, tmp_path):
    from google.oauth2.service_account import Credentials

    text = json.dumps(service_account_key)
    conn = GcpConnection(Endpoint("google_cloud_platform", extra={
        "extra__google_cloud_platform__keyfile_dict": text, "project": "dr-project", "scope": "a, b"}))
    kwargs = conn.client_kwargs()
    assert isinstance(kwargs["credentials"], Credentials) and kwargs["project"] == "dr-project"
    assert kwargs["credentials"].service_account_email == "dr@key-project.iam.gserviceaccount.com"
    assert conn.scopes == ["a", "b"]
    assert conn.terraform_env() == {"GOOGLE_CREDENTIALS": text, "GOOGLE_PROJECT": "dr-project"}
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({**service_account_key,
                                    "private_key": service_account_key["private_key"].replace("\\n", "\n")}))
    by_path = GcpConnection(Endpoint("google_cloud_platform", extra={"key_path": str(key_file)}))
    assert by_path.client_kwargs()["project"] == "key-project"        # the key's own project
    assert by_path.terraform_env() == {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}
    with pytest.raises(ConfigError, match="exclude each other"):
        GcpConnection(Endpoint("google_cloud_platform", extra={"key_path": str(key_file), "keyfile_dict": text}))


def test_gcp_emulator_is_anonymous_at_its_url():
    from google.auth.credentials import AnonymousCredentials

    client = storage_client(Endpoint("google_cloud_platform", extra={"endpoint_url": "http://127.0.0.1:1",
                                                                     "project_id": "lab"}))
    assert client.api_endpoint == "http://127.0.0.1:1" and client.project == "lab"
    assert isinstance(client._credentials, AnonymousCredentials)


# ------------------------------------------------------------------------------------------------ kubernetes

KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "primary",
    "clusters": [{"name": "aks", "cluster": {"server": "https://aks.example:6443", "insecure-skip-tls-verify": True}},
                 {"name": "gke", "cluster": {"server": "https://gke.example:443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "dr", "user": {"token": "kube-token-1"}}],
    "contexts": [{"name": "primary", "context": {"cluster": "aks", "user": "dr"}},
                 {"name": "dr", "context": {"cluster": "gke", "user": "dr"}}],
}


def test_kubernetes_kube_config_context_namespace_and_path(tmp_path):
    import yaml

    conn = KubernetesConnection(Endpoint("kubernetes", extra={
        "extra__kubernetes__kube_config": yaml.safe_dump(KUBECONFIG), "cluster_context": "dr",
        "namespace": "petclinic"}))
    api = conn.api_client()
    assert api.configuration.host == "https://gke.example:443"
    assert api.configuration.api_key["BearerToken"] == "Bearer kube-token-1"
    assert conn.namespace == "petclinic"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(KUBECONFIG))
    by_path = api_client(Endpoint("kubernetes", extra={"kube_config_path": str(path)}))
    assert by_path.configuration.host == "https://aks.example:6443"      # its current context
    assert KubernetesConnection(Endpoint("kubernetes")).namespace == "default"
    with pytest.raises(ConfigError, match="exclude each other"):
        KubernetesConnection(Endpoint("kubernetes", extra={"in_cluster": "true", "kube_config_path": str(path)}))


# ------------------------------------------------------------------------------------------------ http


def test_http_base_url_basic_auth_and_headers():
    cloudflare = http_session(Endpoint("http", host="api.cloudflare.com", schema="https", extra={
        "Authorization": "Bearer cf-token", "timeout": 10, "verify": False}))
    assert cloudflare.base_url == "https://api.cloudflare.com"
    assert cloudflare.url("/client/v4/zones") == "https://api.cloudflare.com/client/v4/zones"
    assert cloudflare.session.headers["Authorization"] == "Bearer cf-token"
    assert "timeout" not in cloudflare.session.headers and cloudflare.timeout == 10
    assert cloudflare.session.verify is False and cloudflare.session.auth is None
    app = HttpConnection(Endpoint("http", host="127.0.0.1", port=8081, login="probe", password="pw"))
    session = app.http_session()
    assert session.base_url == "http://127.0.0.1:8081"
    assert (session.session.auth.username, session.session.auth.password) == ("probe", "pw")
    assert HttpConnection(Endpoint("http", host="https://h.example/api")).base_url == "https://h.example/api"


def test_an_authorization_header_is_masked_in_airflow_logs(monkeypatch):
    import airflow.sdk.log

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", masked.append)
    monkeypatch.setattr(connections, "running_in_airflow", lambda: True)
    connections.mask_in_airflow(Endpoint("http", extra={"Authorization": "Bearer cf-token", "timeout": "10"}))
    assert masked == ["Bearer cf-token"]


# ------------------------------------------------------------------------------------------------ types, refs


def test_a_connection_of_another_type_is_refused_with_what_to_pass():
    with pytest.raises(ConfigError, match="needs a connection of type wasb, got aws://"):
        blob_service_client(Endpoint("aws"))
    with pytest.raises(ConfigError, match="gs://b needs a connection of type gcp or gcs or google_cloud_platform"):
        GcpConnection.from_ref(Endpoint("wasb"), purpose="gs://b")


def test_terraform_credentials_come_from_the_same_mapping(monkeypatch, caplog):
    monkeypatch.setattr(connections, "running_in_airflow", lambda: False)   # drctl
    monkeypatch.setenv("AIRFLOW_CONN_TF_WASB", json.dumps({"conn_type": "wasb", "host": "tfstate",
                                                          "extra": {"sas_token": "sv=1&sig=secret-sig"}}))
    monkeypatch.setenv("AIRFLOW_CONN_TF_GCS", json.dumps({"conn_type": "google_cloud_platform"}))
    with caplog.at_level("INFO"):
        assert credentials_env("azure", "tf_wasb") == {"ARM_SAS_TOKEN": "sv=1&sig=secret-sig"}
        assert credentials_env("gcp", "tf_gcs") == {}
    assert "ARM_SAS_TOKEN" in caplog.text and "secret-sig" not in caplog.text
    assert "holds no gcp credentials" in caplog.text
    with pytest.raises(ConfigError, match=r"terraform\.credentials\.aws names connection 'tf_gcs'"):
        credentials_env("aws", "tf_gcs")


# ------------------------------------------------------------------------------------------------ inside Airflow


@pytest.fixture
def in_airflow(monkeypatch):
    """As in a task: airflow.sdk imported (not by drctl's secrets backend), connections from AIRFLOW_CONN_*."""
    import airflow.sdk  # noqa: F401

    monkeypatch.setattr(secrets_backend, "_state", {"imported_airflow": False})
    assert connections.hooks_apply("some_conn_id") and not connections.hooks_apply("wasb://uri")

    def define(conn_id: str, connection: dict) -> str:
        monkeypatch.setenv(connections.env_var_name(conn_id), json.dumps(connection))
        return conn_id

    return define


def recorded(monkeypatch, hook_class) -> list:
    """The hooks whose get_conn ran (the original still runs)."""
    calls: list = []
    original = hook_class.get_conn

    def get_conn(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(hook_class, "get_conn", get_conn)
    return calls


@pytest.mark.parametrize("connection", [
    {"conn_type": "wasb", "extra": {"connection_string": CONN_STR}},
    {"conn_type": "wasb", "host": "drbackups", "password": KEY},
    {"conn_type": "wasb", "host": AZURITE, "extra": {"sas_token": "sv=1&sig=abc"}},
])
def test_inside_airflow_wasb_clients_come_from_the_hook_tuned_like_ours(in_airflow, monkeypatch, connection):
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    calls = recorded(monkeypatch, WasbHook)
    conn_id = in_airflow("layer_wasb", connection)
    client = blob_service_client(conn_id)
    assert len(calls) == 1 and isinstance(calls[0], WasbHook) and calls[0].conn_id == conn_id
    assert client._config.retry_policy.initial_backoff == 1 and client._config.max_chunk_get_size == 16 * 2**20
    outside = blob_service_client(connections.parse_connection_value(json.dumps(connection)))
    assert len(calls) == 1                                           # an Endpoint never goes through the hook
    assert client.url == outside.url and type(client.credential) is type(outside.credential)


def test_inside_airflow_aws_clients_come_from_the_hook(in_airflow, monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    calls = recorded(monkeypatch, AwsBaseHook)
    conn_id = in_airflow("layer_aws", {"conn_type": "aws", "login": "AKIAEXAMPLE", "password": "s3cret", "extra": {
        "region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:1",
        "config_kwargs": {"s3": {"addressing_style": "path"}}}})
    s3 = aws_client(conn_id, "s3")
    assert [c.client_type for c in calls] == ["s3"] and calls[0].aws_conn_id == conn_id
    assert (s3.meta.region_name, s3.meta.endpoint_url, s3.meta.config.s3) == (
        "eu-west-1", "http://127.0.0.1:1", {"addressing_style": "path"})


def test_inside_airflow_gcs_clients_come_from_the_hook_except_for_an_emulator(in_airflow, monkeypatch):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook
    from google.auth.credentials import AnonymousCredentials

    calls = recorded(monkeypatch, GCSHook)
    client = storage_client(in_airflow("layer_gcs", {"conn_type": "google_cloud_platform",
                                                     "extra": {"is_anonymous": True, "project": "dr-project"}}))
    assert len(calls) == 1 and client.project == "dr-project"
    assert isinstance(client._credentials, AnonymousCredentials)
    emulator = storage_client(in_airflow("layer_gcs_lab", {"conn_type": "google_cloud_platform",
                                                           "extra": {"endpoint_url": "http://127.0.0.1:1"}}))
    assert len(calls) == 1 and emulator.api_endpoint == "http://127.0.0.1:1"


def test_inside_airflow_kubernetes_and_http_come_from_their_hooks(in_airflow, monkeypatch):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from airflow.providers.http.hooks.http import HttpHook

    kube_calls, http_calls = recorded(monkeypatch, KubernetesHook), recorded(monkeypatch, HttpHook)
    kube = api_client(in_airflow("layer_kube", {"conn_type": "kubernetes",
                                                "extra": {"kube_config": KUBECONFIG, "cluster_context": "dr"}}))
    assert len(kube_calls) == 1 and kube.configuration.host == "https://gke.example:443"
    api = http_session(in_airflow("layer_http", {"conn_type": "http", "host": "api.cloudflare.com", "schema": "https",
                                                 "extra": {"Authorization": "Bearer cf-token", "timeout": 10}}))
    assert len(http_calls) == 1 and api.base_url == "https://api.cloudflare.com"
    assert api.session.headers["Authorization"] == "Bearer cf-token" and api.timeout == 10


# ------------------------------------------------------------------------------------------------ one layer

# What builds an SDK client or a provider's hook: only the connection layer may.
CLIENT_CONSTRUCTION = re.compile(
    r"boto3\.client\(|boto3\.(?:session\.)?Session\(|BlobServiceClient(?:\.from_connection_string)?\(|"
    r"storage\.Client\(|ApiClient\(|requests\.Session\(|\b(?:Wasb|AwsBase|S3|Dms|GCS|Kubernetes|Http)Hook\(")
LAYER = ROOT / "plugins" / "multicloud_dr" / "connections"


def test_only_the_connection_layer_builds_clients():
    hits = {path: [n for n, line in enumerate(path.read_text().splitlines(), 1) if CLIENT_CONSTRUCTION.search(line)]
            for folder in ("plugins", "dags") for path in sorted((ROOT / folder).rglob("*.py"))}
    outside = {str(p.relative_to(ROOT)): lines for p, lines in hits.items() if lines and LAYER not in p.parents}
    assert outside == {}, f"clients built outside plugins/multicloud_dr/connections/: {outside}"
    inside = {p.name for p, lines in hits.items() if lines and LAYER in p.parents}
    assert {"wasb.py", "aws.py", "gcp.py", "kubernetes.py", "http.py"} <= inside   # the pattern does find them
