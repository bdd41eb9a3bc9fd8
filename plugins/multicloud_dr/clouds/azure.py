"""Azure Blob clients from a `wasb` connection, reading the extras the way Airflow's WasbHook does:
`connection_string` first, else the account URL (host) with the account key (password)."""

from __future__ import annotations

from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError


def blob_service_client(endpoint: Endpoint):
    from azure.storage.blob import BlobServiceClient

    conn_str = endpoint.extra.get("connection_string")
    if conn_str:
        return BlobServiceClient.from_connection_string(conn_str)
    if endpoint.host and endpoint.password:
        account_url = endpoint.host if "://" in endpoint.host else f"https://{endpoint.host}.blob.core.windows.net"
        return BlobServiceClient(account_url=account_url, credential=endpoint.password)
    if endpoint.host:
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(account_url=endpoint.host, credential=DefaultAzureCredential())
    raise ConfigError("the wasb connection has neither extra.connection_string nor a host (account URL): "
                      "set one of them on the connection")
