"""Azure connections: `wasb` (Blob Storage: backups, the DR state, saved plans) and `azure` (a service
principal or a managed identity; here only Terraform's azurerm provider uses it).

A `wasb` connection id inside Airflow gets its client from the Azure provider's `WasbHook`. Everywhere else
the table below reads the same extras, in the order the hook tries them:

1. `connection_string`
2. `tenant_id`: a service principal, login = client id, password = client secret
   (extra `client_secret_auth_config`: more ClientSecretCredential arguments)
3. `shared_access_key`
4. `sas_token`: a token, or an account URL that carries one
5. the account key: password, or extra `account_key`
6. `managed_identity_client_id` (with `workload_identity_tenant_id`), or nothing: DefaultAzureCredential

Each also as `extra__wasb__<name>`. The account URL is the host (a URL, or a DNS name), else
`https://<login>.blob.core.windows.net`; a host with no dot and no login is the account's name. Any other
extra is passed to BlobServiceClient, as the hook does.

Terraform (the azurerm backend) gets the account key as ARM_ACCESS_KEY, a SAS as ARM_SAS_TOKEN (also those
inside a connection string), a service principal as ARM_CLIENT_ID / ARM_CLIENT_SECRET / ARM_TENANT_ID.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from typing import TYPE_CHECKING, Any

from multicloud_dr.connections import ConnectionType, Endpoint, Mode, Setting, Table
from multicloud_dr.exceptions import ConfigError

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

# The SDK logs every request and response header at INFO: thousands of lines per backup in a task log.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)

# Options of every BlobServiceClient made here, through the hook or not (a connection's own extras win):
# - the SDK's default retry waits 15 s before its first retry; a lost connection during a block upload should
#   cost about a second (our per-block retry adds more attempts on top): 1 s, then x2, 3 retries;
# - a connection that stops answering fails in 20 s (connect) or 120 s (a read), not the SDK's 300 s reads;
# - downloads in 16 MiB requests, not the SDK's 4 MiB: a restore reads hundreds of MB, and each request costs
#   the storage service (and the SDK) per call; measured on Azurite, reading a 350 MB backup took 2.1 s of its
#   CPU instead of 5.3 s, and half the client's.
# Plain keywords, not an ExponentialRetry object, so that they fit in a connection's JSON extras (the hook
# passes extras to the client): the SDK builds its ExponentialRetry from initial_backoff, increment_base and
# retry_total.
CLIENT_OPTIONS: dict[str, Any] = {"initial_backoff": 1, "increment_base": 2, "retry_total": 3,
                                  "connection_timeout": 20, "read_timeout": 120,
                                  "max_chunk_get_size": 16 * 1024 * 1024}

WASB = Table(
    conn_types=("wasb",),
    settings=(
        Setting("connection_string"),
        Setting("tenant_id", env=("ARM_TENANT_ID",)),
        Setting("client_id", field="login", kwarg="client_id", env=("ARM_CLIENT_ID",)),
        Setting("client_secret", field="password", kwarg="client_secret", env=("ARM_CLIENT_SECRET",)),
        Setting("client_secret_auth_config", kind=dict),
        Setting("shared_access_key", env=("ARM_ACCESS_KEY",)),
        Setting("sas_token", env=("ARM_SAS_TOKEN",)),
        Setting("account_key", field="password", env=("ARM_ACCESS_KEY",)),
        Setting("managed_identity_client_id", kwarg="managed_identity_client_id"),
        Setting("workload_identity_tenant_id", kwarg="workload_identity_tenant_id"),
    ),
    modes=(
        Mode("connection_string", requires=("connection_string",)),
        Mode("service_principal", requires=("tenant_id",), uses=("client_id", "client_secret",
                                                                  "client_secret_auth_config")),
        Mode("shared_access_key", requires=("shared_access_key",)),
        Mode("sas_token", requires=("sas_token",)),
        Mode("account_key", requires=("account_key",)),
        Mode("default_credential", uses=("managed_identity_client_id", "workload_identity_tenant_id")),
    ),
)

# The Azure provider's `azure` connection (AzureBaseHook) as azurerm reads it. The old prefixed spellings
# (extra__azure__tenantId) and tenant_id / subscription_id are accepted too, as before this table.
AZURE = Table(
    conn_types=("azure",),
    settings=(
        Setting("client_id", field="login", env=("ARM_CLIENT_ID",)),
        Setting("client_secret", field="password", env=("ARM_CLIENT_SECRET",)),
        Setting("tenantId", aliases=("tenant_id",), env=("ARM_TENANT_ID",)),
        Setting("subscriptionId", aliases=("subscription_id",), env=("ARM_SUBSCRIPTION_ID",)),
        Setting("managed_identity_client_id", env=("ARM_CLIENT_ID",)),
    ),
    modes=(
        Mode("service_principal", requires=("client_id", "client_secret")),
        Mode("managed_identity", requires=("managed_identity_client_id",), env=(("ARM_USE_MSI", "true"),)),
        Mode("default_credential"),
    ),
)


def account_url(endpoint: Endpoint) -> str:
    """The account's Blob endpoint from the connection's host and login (see the module's docstring)."""
    host, login = (endpoint.host or "").strip(), (endpoint.login or "").strip()
    if "://" in host:
        return host
    if "." in host:
        return f"https://{host}"
    name = login or host
    if not name:
        raise ConfigError(f"the wasb connection {endpoint.describe()} names no storage account: set extra "
                          f"connection_string, or host = the account URL (or login = the account name)")
    return f"https://{name}.blob.core.windows.net"


class WasbConnection(ConnectionType):
    table = WASB
    needs = "an Azure Blob Storage (wasb) connection"

    def blob_service_client(self) -> BlobServiceClient:
        if self.through_hook:
            return _tuned_hook_class()(wasb_conn_id=self.conn_id).get_conn()
        from azure.storage.blob import BlobServiceClient

        kwargs = self.client_kwargs()
        if "conn_str" in kwargs:
            return BlobServiceClient.from_connection_string(**kwargs)
        return BlobServiceClient(**kwargs)

    def client_kwargs(self) -> dict[str, Any]:
        """What BlobServiceClient (or its from_connection_string) gets outside Airflow."""
        values, mode = self.values, self.mode.name
        passthrough = {k: v for k, v in self.endpoint.extra.items() if k not in self.table.extra_keys()}
        options = {**CLIENT_OPTIONS, **passthrough}
        if mode == "connection_string":
            return {"conn_str": values["connection_string"], **options}
        if mode == "sas_token" and values["sas_token"].startswith("https"):
            return {"account_url": values["sas_token"], **options}
        return {"account_url": account_url(self.endpoint), "credential": self._credential(), **options}

    def _credential(self) -> Any:
        values, mode = self.values, self.mode
        if mode.name == "service_principal":
            from azure.identity import ClientSecretCredential

            if not (values.get("client_id") and values.get("client_secret")):
                raise ConfigError(f"{self.endpoint.describe()}: extra tenant_id means a service principal: set "
                                  f"login = its client id and password = its secret")
            return ClientSecretCredential(tenant_id=values["tenant_id"], **self.table.kwargs(values, mode),
                                          **values.get("client_secret_auth_config", {}))
        if mode.name in ("shared_access_key", "account_key"):
            return values[mode.name]
        if mode.name == "sas_token":
            from azure.core.credentials import AzureSasCredential

            return AzureSasCredential(values["sas_token"])
        from azure.identity import DefaultAzureCredential

        kwargs = self.table.kwargs(values, mode)
        if "workload_identity_tenant_id" in kwargs:
            kwargs["additionally_allowed_tenants"] = [kwargs["workload_identity_tenant_id"]]
        return DefaultAzureCredential(**kwargs)

    def terraform_env(self) -> dict[str, str]:
        if self.mode.name != "connection_string":
            return super().terraform_env()
        parts = dict(p.split("=", 1) for p in self.values["connection_string"].split(";") if "=" in p)
        names = {"AccountKey": "ARM_ACCESS_KEY", "SharedAccessSignature": "ARM_SAS_TOKEN"}
        return {names[k]: v for k, v in parts.items() if k in names and v}


class AzureConnection(ConnectionType):
    table = AZURE
    needs = "an Azure (azure) connection"


@functools.cache
def _tuned_hook_class():
    """WasbHook, with CLIENT_OPTIONS under the connection's extras and the account URL resolved as above, so that
    the provider's own construction (every authentication it supports) makes a client tuned like ours."""
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    class TunedWasbHook(WasbHook):
        @classmethod
        def get_connection(cls, conn_id: str):
            conn = copy.copy(super().get_connection(conn_id))   # a copy: Airflow may cache the one it returned
            extra = conn.extra_dejson
            if not (extra.get("connection_string") or extra.get("extra__wasb__connection_string")):
                conn.host = account_url(Endpoint("wasb", host=conn.host, login=conn.login))
            conn.extra = json.dumps({**CLIENT_OPTIONS, **extra})
            return conn

    return TunedWasbHook


def blob_service_client(ref: str | Endpoint | WasbConnection) -> BlobServiceClient:
    """A BlobServiceClient for a wasb connection id, URI or Endpoint."""
    return WasbConnection.from_ref(ref).blob_service_client()
