"""The connection layer against the lab's real servers: Azure Blob (Azurite) by connection string, account key
and SAS token; S3 (moto) with a region and path-style addressing; GCS (the emulator). Each by a connection id,
as drctl resolves it (the layer's own table) and as an Airflow task does (the provider's hook)."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from multicloud_dr import connections, secrets_backend
from multicloud_dr.connections.aws import AwsConnection
from multicloud_dr.connections.gcp import GcpConnection
from multicloud_dr.connections.wasb import WasbConnection
from multicloud_dr.lab.settings import AZURITE_ACCOUNT, AZURITE_KEY

PATHS = ("drctl", "airflow")
DATA = os.urandom(300 * 1024)


@pytest.fixture
def define(lab, monkeypatch):
    """define(path, connection) -> a connection id, resolved as drctl does (outside Airflow) or as a task does
    (airflow.sdk imported: the provider's hook makes the client)."""

    def make(path: str, connection: dict) -> str:
        if path == "airflow":
            import airflow.sdk  # noqa: F401

            monkeypatch.setattr(secrets_backend, "_state", {"imported_airflow": False})
        else:
            monkeypatch.setattr(connections, "running_in_airflow", lambda: False)
        conn_id = f"layer_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(connections.env_var_name(conn_id), json.dumps(connection))
        return conn_id

    return make


# ------------------------------------------------------------------------------------------------ Azure Blob


@pytest.fixture
def container(lab):
    from azure.storage.blob import BlobServiceClient

    name = f"layer-{uuid.uuid4().hex[:10]}"
    admin = BlobServiceClient.from_connection_string(lab.azurite.connection_string())
    admin.create_container(name)
    yield name
    admin.delete_container(name)


def blob_endpoint(lab) -> str:
    return f"http://127.0.0.1:{lab.azurite.port}/{AZURITE_ACCOUNT}"


def account_sas(permission: str = "rwdlc") -> str:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(AZURITE_ACCOUNT, AZURITE_KEY, ResourceTypes(container=True, object=True),
                                AccountSasPermissions.from_string(permission), datetime.now(UTC) + timedelta(hours=1))


def wasb_connection(lab, mode: str, key: str = AZURITE_KEY) -> dict:
    if mode == "connection_string":
        return {"conn_type": "wasb", "extra": {"connection_string": lab.azurite.connection_string()}}
    if mode == "account_key":
        return {"conn_type": "wasb", "host": blob_endpoint(lab), "password": key}
    return {"conn_type": "wasb", "host": blob_endpoint(lab), "extra": {"extra__wasb__sas_token": account_sas()}}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["connection_string", "account_key", "sas_token"])
def test_wasb_blob_round_trip(lab, define, container, path, mode):
    conn = WasbConnection.from_ref(define(path, wasb_connection(lab, mode)))
    assert conn.mode.name == mode and conn.through_hook == (path == "airflow")
    blob = conn.blob_service_client().get_blob_client(container, f"{mode}/{path}.bin")
    blob.upload_blob(DATA)
    assert blob.download_blob().readall() == DATA
    # The tuned options hold on either path: one second before the first retry, 16 MiB reads.
    assert blob._config.retry_policy.initial_backoff == 1 and blob._config.max_chunk_get_size == 16 * 2**20


@pytest.mark.parametrize("path", PATHS)
def test_wasb_credentials_are_what_authenticates(lab, define, container, path):
    """A wrong account key and a read-only SAS are refused by the server: the connection's own credential is used."""
    from azure.core.exceptions import HttpResponseError

    wrong_key = WasbConnection.from_ref(define(path, wasb_connection(lab, "account_key", key="d3Jvbmcta2V5")))
    with pytest.raises(HttpResponseError) as refused:
        wrong_key.blob_service_client().get_blob_client(container, "wrong-key.bin").upload_blob(b"x")
    assert refused.value.status_code == 403
    seeded = WasbConnection.from_ref(define(path, wasb_connection(lab, "connection_string"))).blob_service_client()
    seeded.get_blob_client(container, "seeded.bin").upload_blob(DATA)
    read_only = {"conn_type": "wasb", "host": blob_endpoint(lab), "extra": {"sas_token": account_sas("rl")}}
    client = WasbConnection.from_ref(define(path, read_only)).blob_service_client()
    with pytest.raises(HttpResponseError) as refused:
        client.get_blob_client(container, "read-only.bin").upload_blob(b"x")
    assert refused.value.status_code == 403
    assert client.get_blob_client(container, "seeded.bin").download_blob().readall() == DATA   # what it may do


# ------------------------------------------------------------------------------------------------ S3 (moto)


@pytest.mark.parametrize("path", PATHS)
def test_s3_round_trip_in_the_connections_region_with_path_style(lab, define, path):
    endpoint = lab.moto.endpoint()
    conn = AwsConnection.from_ref(define(path, {
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "eu-west-1",
                  "config_kwargs": {"s3": {"addressing_style": "path"}}}}))
    assert conn.through_hook == (path == "airflow")
    s3 = conn.client("s3")
    sent: list[tuple[str, str]] = []

    def record(request, **_):
        authorization = request.headers.get("Authorization", b"")
        sent.append((request.url, authorization.decode() if isinstance(authorization, bytes) else authorization))

    s3.meta.events.register("before-send.s3", record)
    bucket = f"layer-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        s3.put_object(Bucket=bucket, Key="round/trip.bin", Body=DATA)
        assert s3.get_object(Bucket=bucket, Key="round/trip.bin")["Body"].read() == DATA
        assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
    finally:
        s3.delete_object(Bucket=bucket, Key="round/trip.bin")
        s3.delete_bucket(Bucket=bucket)
    assert s3.meta.region_name == "eu-west-1" and s3.meta.config.s3 == {"addressing_style": "path"}
    assert sent and all(url.startswith(f"{endpoint}/{bucket}") for url, _ in sent), sent
    assert all("/eu-west-1/s3/aws4_request" in auth for _, auth in sent)


# ------------------------------------------------------------------------------------------------ GCS (emulator)


@pytest.mark.parametrize("path", PATHS)
def test_gcs_round_trip_on_the_emulator(lab, define, path):
    conn = GcpConnection.from_ref(define(path, {"conn_type": "google_cloud_platform",
                                                "extra": {"project": "lab", "endpoint_url": lab.gcs.endpoint()}}))
    assert not conn.through_hook     # no provider reads an emulator URL: our client on both paths
    client = conn.storage_client()
    bucket = client.create_bucket(f"layer-{uuid.uuid4().hex[:10]}")
    try:
        blob = bucket.blob("round/trip.bin")
        blob.upload_from_string(DATA)
        assert bucket.blob("round/trip.bin").download_as_bytes() == DATA
    finally:
        bucket.delete(force=True)
