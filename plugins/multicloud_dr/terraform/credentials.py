"""An Airflow connection turned into the environment variables terraform's providers and state backends
read. They reach terraform only through its environment: never argv, never a log line, never XCom.

Which variables a connection gives is the connection layer's mapping (the same one drctl's clients use),
in `multicloud_dr.connections`:

- aws (`aws` connection, `connections.aws`): keys -> AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, extra
  `aws_session_token`, `profile_name` -> AWS_PROFILE, `region_name` -> AWS_REGION / AWS_DEFAULT_REGION,
  `endpoint_url` -> AWS_ENDPOINT_URL; with `role_arn`, the role's temporary credentials;
- azure (`connections.wasb`): an `azure` connection (a service principal: login/password ->
  ARM_CLIENT_ID / ARM_CLIENT_SECRET, extra `tenantId` / `subscriptionId` -> ARM_TENANT_ID /
  ARM_SUBSCRIPTION_ID; `managed_identity_client_id` -> ARM_USE_MSI + ARM_CLIENT_ID), or a `wasb` one
  (the account key -> ARM_ACCESS_KEY, a SAS -> ARM_SAS_TOKEN, for the azurerm state backend);
- gcp (`google_cloud_platform` connection, `connections.gcp`): extra `keyfile_dict` -> GOOGLE_CREDENTIALS
  (the key's JSON), or `key_path` -> GOOGLE_APPLICATION_CREDENTIALS; `project` -> GOOGLE_PROJECT.

A connection without credentials (or no connection id) leaves terraform to the worker's own identity
(instance profile, managed identity, workload identity).
"""

from __future__ import annotations

import logging

from multicloud_dr.connections import ConnectionType, get_endpoint
from multicloud_dr.exceptions import ConfigError

log = logging.getLogger(__name__)

_CREDENTIAL_NAMES = ("AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "ARM_CLIENT_SECRET", "ARM_USE_MSI", "ARM_ACCESS_KEY",
                     "ARM_SAS_TOKEN", "GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS")


def _connection_types(cloud: str) -> tuple[type[ConnectionType], ...]:
    from multicloud_dr.connections.aws import AwsConnection
    from multicloud_dr.connections.gcp import GcpConnection
    from multicloud_dr.connections.wasb import AzureConnection, WasbConnection

    return {"aws": (AwsConnection,), "azure": (AzureConnection, WasbConnection), "gcp": (GcpConnection,)}[cloud]


def connection_for(cloud: str, conn_id: str) -> ConnectionType:
    """The connection `conn_id` as the type terraform for `cloud` reads (by its conn_type)."""
    endpoint = get_endpoint(conn_id)
    types = _connection_types(cloud)
    for kind in types:
        if endpoint.conn_type in kind.table.conn_types:
            return kind(endpoint, conn_id)
    if not endpoint.conn_type:
        return types[0](endpoint, conn_id)
    names = sorted(t for kind in types for t in kind.table.conn_types)
    raise ConfigError(f"terraform.credentials.{cloud} names connection {conn_id!r} of type {endpoint.conn_type!r}: "
                      f"give a connection of type {' or '.join(names)}")


def credentials_env(cloud: str, conn_id: str | None) -> dict[str, str]:
    """The variables for `cloud` from connection `conn_id` (None: the worker's own identity)."""
    if conn_id is None:
        log.info("terraform for %s uses the worker's own identity (no credentials connection configured)", cloud)
        return {}
    env = connection_for(cloud, conn_id).terraform_env()
    if not any(name in env for name in _CREDENTIAL_NAMES):
        log.info("connection %s holds no %s credentials: terraform uses the worker's own identity", conn_id, cloud)
    else:
        # Names only: the values are secrets.
        log.info("terraform for %s authenticates with connection %s (%s)", cloud, conn_id, ", ".join(sorted(env)))
    return env
