"""Google Cloud connections (`google_cloud_platform`): GCS clients, and Terraform's google provider.

A connection id inside Airflow gets its client from the Google provider's `GCSHook`. Everywhere else the table
below reads the extras the provider reads (each also as `extra__google_cloud_platform__<name>`), at most one
of: `keyfile_dict` (a service-account key, JSON), `key_path` (its file, .json), `credential_config_file`
(workload identity federation), `is_anonymous`; with none of them, Application Default Credentials (the
metadata server, workload identity on GKE, GOOGLE_APPLICATION_CREDENTIALS). `project` (or `project_id`)
names the project, `scope` the OAuth scopes (comma-separated). `key_secret_name` and `impersonation_chain`
work only inside Airflow (the provider reads the key from Secret Manager / impersonates).

`endpoint_url` points at a storage emulator (the lab's gcp-storage-emulator) with anonymous credentials. No
provider supports an emulator URL (GCSHook has no endpoint setting), so that path is taken in and out of
Airflow.

Terraform gets `keyfile_dict` as GOOGLE_CREDENTIALS, `key_path` as GOOGLE_APPLICATION_CREDENTIALS, `project`
as GOOGLE_PROJECT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multicloud_dr.connections import ConnectionType, Endpoint, Mode, Setting, Table
from multicloud_dr.exceptions import ConfigError

if TYPE_CHECKING:
    from google.cloud.storage import Client

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)   # the provider's default too
EMULATOR_PROJECT = "lab"

GCP = Table(
    conn_types=("google_cloud_platform", "gcp", "gcs"),
    settings=(
        Setting("endpoint_url"),
        Setting("keyfile_dict", kind=dict, env=("GOOGLE_CREDENTIALS",)),
        Setting("key_path", env=("GOOGLE_APPLICATION_CREDENTIALS",)),
        Setting("credential_config_file", kind=object),
        Setting("is_anonymous", kind=bool),
        Setting("key_secret_name"),
        Setting("impersonation_chain", kind=object),
        Setting("project", aliases=("project_id",), kwarg="project", env=("GOOGLE_PROJECT",)),
        Setting("scope"),
    ),
    modes=(
        Mode("emulator", requires=("endpoint_url",)),
        Mode("keyfile_dict", requires=("keyfile_dict",)),
        Mode("key_path", requires=("key_path",)),
        Mode("credential_config_file", requires=("credential_config_file",)),
        Mode("anonymous", requires=("is_anonymous",)),
        Mode("key_secret_name", requires=("key_secret_name",)),
        Mode("application_default"),
    ),
)
_EXCLUSIVE = ("keyfile_dict", "key_path", "credential_config_file", "is_anonymous", "key_secret_name")


class GcpConnection(ConnectionType):
    table = GCP
    needs = "a Google Cloud (google_cloud_platform) connection"

    def __init__(self, endpoint: Endpoint, conn_id: str | None = None, *, through_hook: bool = False) -> None:
        super().__init__(endpoint, conn_id, through_hook=through_hook)
        if self.mode.name == "emulator":
            self.through_hook = False   # GCSHook has no endpoint setting: our client, in Airflow too
            return
        given = [name for name in _EXCLUSIVE if self.values.get(name)]
        if len(given) > 1:
            raise ConfigError(f"{endpoint.describe()}: extras {', '.join(given)} exclude each other (as in the "
                              f"Google provider): keep one")

    @property
    def scopes(self) -> list[str]:
        scope = self.values.get("scope")
        return [s.strip() for s in scope.split(",")] if scope else list(DEFAULT_SCOPES)

    def storage_client(self) -> Client:
        from google.cloud import storage

        if self.through_hook:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            return GCSHook(gcp_conn_id=self.conn_id).get_conn()
        return storage.Client(**self.client_kwargs())

    def client_kwargs(self) -> dict[str, Any]:
        """What storage.Client gets outside Airflow (and, for an emulator, inside it too)."""
        if self.mode.name == "emulator":
            from google.auth.credentials import AnonymousCredentials

            return {"project": self.values.get("project") or EMULATOR_PROJECT, "credentials": AnonymousCredentials(),
                    "client_options": {"api_endpoint": self.values["endpoint_url"]}}
        credentials, project = self.credentials()
        return {"project": self.values.get("project") or project, "credentials": credentials}

    def credentials(self) -> tuple[Any, str | None]:
        """The credentials and the project they belong to, as the provider would find them."""
        import google.auth
        from google.oauth2 import service_account

        mode, values = self.mode.name, self.values
        if mode == "keyfile_dict":
            info = dict(values["keyfile_dict"])
            # Keys pasted into a connection form often carry the private key's newlines escaped.
            if isinstance(info.get("private_key"), str):
                info["private_key"] = info["private_key"].replace("\\n", "\n")
            credentials = service_account.Credentials.from_service_account_info(info, scopes=self.scopes)
            return credentials, credentials.project_id
        if mode == "key_path":
            if not values["key_path"].endswith(".json"):
                raise ConfigError(f"{self.endpoint.describe()}: extra key_path must name a JSON key file (.json)")
            credentials = service_account.Credentials.from_service_account_file(values["key_path"], scopes=self.scopes)
            return credentials, credentials.project_id
        if mode == "credential_config_file":
            return self._from_credential_config(values["credential_config_file"])
        if mode == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials(), None
        if mode == "key_secret_name" or values.get("impersonation_chain"):
            raise ConfigError(f"{self.endpoint.describe()}: key_secret_name and impersonation_chain are read only "
                              f"inside Airflow (the Google provider): outside it, give keyfile_dict or key_path")
        return google.auth.default(scopes=self.scopes)

    def _from_credential_config(self, config: Any) -> tuple[Any, str | None]:
        import json
        import os
        import tempfile

        import google.auth

        if isinstance(config, str) and os.path.exists(config):
            return google.auth.load_credentials_from_file(config, scopes=self.scopes)
        with tempfile.NamedTemporaryFile("w+t", suffix=".json") as handle:
            handle.write(config if isinstance(config, str) else json.dumps(config))
            handle.flush()
            return google.auth.load_credentials_from_file(handle.name, scopes=self.scopes)


def storage_client(ref: str | Endpoint | GcpConnection) -> Client:
    """A GCS client from a google_cloud_platform connection id, URI or Endpoint."""
    return GcpConnection.from_ref(ref).storage_client()
