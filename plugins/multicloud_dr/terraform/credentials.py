"""An Airflow connection turned into the environment variables terraform's providers and state backends
read. They reach terraform only through its environment: never argv, never a log line, never XCom.

- aws (`aws` connection): login/password -> AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, extra
  `aws_session_token`, `region_name` -> AWS_REGION, `endpoint_url` -> AWS_ENDPOINT_URL;
- azure (`azure` connection, a service principal): login/password -> ARM_CLIENT_ID/ARM_CLIENT_SECRET,
  extra `tenantId` and `subscriptionId` -> ARM_TENANT_ID/ARM_SUBSCRIPTION_ID;
- gcp (`google_cloud_platform` connection): extra `keyfile_dict` -> GOOGLE_CREDENTIALS (the key's JSON),
  or `key_path` -> GOOGLE_APPLICATION_CREDENTIALS; `project` -> GOOGLE_PROJECT.

A connection without credentials (or no connection id) leaves terraform to the worker's own identity
(instance profile, managed identity, workload identity).
"""

from __future__ import annotations

import json
import logging

from multicloud_dr.connections import Endpoint, get_endpoint

log = logging.getLogger(__name__)


def _extra(endpoint: Endpoint, *names: str) -> str | None:
    for name in names:
        for key in (name, f"extra__{endpoint.conn_type}__{name}"):
            value = endpoint.extra.get(key)
            if value not in (None, ""):
                return value if isinstance(value, str) else json.dumps(value)
    return None


def _aws(endpoint: Endpoint) -> dict[str, str]:
    env = {}
    if endpoint.login and endpoint.password:
        env.update(AWS_ACCESS_KEY_ID=endpoint.login, AWS_SECRET_ACCESS_KEY=endpoint.password)
    if token := _extra(endpoint, "aws_session_token"):
        env["AWS_SESSION_TOKEN"] = token
    if region := _extra(endpoint, "region_name", "region"):
        env.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    if url := _extra(endpoint, "endpoint_url"):
        env["AWS_ENDPOINT_URL"] = url
    return env


def _azure(endpoint: Endpoint) -> dict[str, str]:
    env = {}
    if endpoint.login and endpoint.password:
        env.update(ARM_CLIENT_ID=endpoint.login, ARM_CLIENT_SECRET=endpoint.password)
    if tenant := _extra(endpoint, "tenantId", "tenant_id"):
        env["ARM_TENANT_ID"] = tenant
    if subscription := _extra(endpoint, "subscriptionId", "subscription_id"):
        env["ARM_SUBSCRIPTION_ID"] = subscription
    if _extra(endpoint, "managed_identity_client_id"):
        env.update(ARM_USE_MSI="true", ARM_CLIENT_ID=_extra(endpoint, "managed_identity_client_id") or "")
    return env


def _gcp(endpoint: Endpoint) -> dict[str, str]:
    env = {}
    if keyfile := _extra(endpoint, "keyfile_dict"):
        env["GOOGLE_CREDENTIALS"] = keyfile
    elif path := _extra(endpoint, "key_path"):
        env["GOOGLE_APPLICATION_CREDENTIALS"] = path
    if project := _extra(endpoint, "project", "project_id"):
        env["GOOGLE_PROJECT"] = project
    return env


_BY_CLOUD = {"aws": _aws, "azure": _azure, "gcp": _gcp}
_CREDENTIAL_NAMES = ("AWS_SECRET_ACCESS_KEY", "ARM_CLIENT_SECRET", "ARM_USE_MSI", "GOOGLE_CREDENTIALS",
                     "GOOGLE_APPLICATION_CREDENTIALS")


def credentials_env(cloud: str, conn_id: str | None) -> dict[str, str]:
    """The variables for `cloud` from connection `conn_id` (None: the worker's own identity)."""
    if conn_id is None:
        log.info("terraform for %s uses the worker's own identity (no credentials connection configured)", cloud)
        return {}
    env = _BY_CLOUD[cloud](get_endpoint(conn_id))
    if not any(name in env for name in _CREDENTIAL_NAMES):
        log.info("connection %s holds no %s credentials: terraform uses the worker's own identity", conn_id, cloud)
    else:
        # Names only: the values are secrets.
        log.info("terraform for %s authenticates with connection %s (%s)", cloud, conn_id, ", ".join(sorted(env)))
    return env
