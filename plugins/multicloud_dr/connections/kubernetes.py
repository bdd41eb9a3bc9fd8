"""Kubernetes connections (`kubernetes`): API clients for AKS / GKE / EKS (scaling the DR app).

A connection id inside Airflow gets its client from the cncf-kubernetes provider's `KubernetesHook`. Everywhere
else the table below reads the extras the provider reads (each also as `extra__kubernetes__<name>`), at most
one of: `in_cluster` (the pod's service account), `kube_config_path` (a kubeconfig file), `kube_config` (a
kubeconfig's content: YAML or JSON text, or an object); with none of them the pod's service account if there
is one, else the default kubeconfig (KUBECONFIG, ~/.kube/config). `cluster_context` picks a context,
`namespace` is the namespace the connection's users work in (default "default"), `disable_verify_ssl` turns
certificate checks off. (The hook's TCP keepalive tuning applies only inside Airflow.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multicloud_dr.connections import ConnectionType, Endpoint, Mode, Setting, Table
from multicloud_dr.exceptions import ConfigError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api

DEFAULT_NAMESPACE = "default"

KUBERNETES = Table(
    conn_types=("kubernetes",),
    settings=(
        Setting("in_cluster", kind=bool),
        Setting("kube_config_path", kwarg="config_file"),
        Setting("kube_config", kind=object),
        Setting("cluster_context", kwarg="context"),
        Setting("namespace"),
        Setting("disable_verify_ssl", kind=bool),
    ),
    modes=(
        Mode("in_cluster", requires=("in_cluster",)),
        Mode("kube_config_path", requires=("kube_config_path",), uses=("cluster_context",)),
        Mode("kube_config", requires=("kube_config",), uses=("cluster_context",)),
        Mode("default", uses=("cluster_context",)),
    ),
)
_EXCLUSIVE = ("in_cluster", "kube_config_path", "kube_config")


class KubernetesConnection(ConnectionType):
    table = KUBERNETES
    needs = "a Kubernetes (kubernetes) connection"

    def __init__(self, endpoint: Endpoint, conn_id: str | None = None, *, through_hook: bool = False) -> None:
        super().__init__(endpoint, conn_id, through_hook=through_hook)
        given = [name for name in _EXCLUSIVE if self.values.get(name)]
        if len(given) > 1:
            raise ConfigError(f"{endpoint.describe()}: extras {', '.join(given)} exclude each other (as in the "
                              f"Kubernetes provider): keep one")

    @property
    def namespace(self) -> str:
        return self.values.get("namespace") or DEFAULT_NAMESPACE

    def api_client(self) -> ApiClient:
        if self.through_hook:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            return KubernetesHook(conn_id=self.conn_id).get_conn()
        from kubernetes import client

        configuration = client.Configuration()
        self.load_into(configuration)
        if self.values.get("disable_verify_ssl"):
            configuration.verify_ssl = False
        return client.ApiClient(configuration)

    def load_into(self, configuration: Any) -> None:
        """Fill a kubernetes Configuration (host, credentials, CA) from the connection, outside Airflow."""
        import yaml
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        mode = self.mode
        kwargs = self.table.kwargs(self.values, mode)
        if mode.name == "in_cluster":
            config.load_incluster_config(client_configuration=configuration)
        elif mode.name == "kube_config_path":
            config.load_kube_config(client_configuration=configuration, **kwargs)
        elif mode.name == "kube_config":
            content = self.values["kube_config"]
            data = content if isinstance(content, dict) else yaml.safe_load(content)
            if not isinstance(data, dict):
                raise ConfigError(f"{self.endpoint.describe()}: extra kube_config is not a kubeconfig (YAML or JSON)")
            config.load_kube_config_from_dict(data, client_configuration=configuration, **kwargs)
        else:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                config.load_kube_config(client_configuration=configuration, **kwargs)

    def core_v1(self) -> CoreV1Api:
        from kubernetes import client

        return client.CoreV1Api(api_client=self.api_client())

    def apps_v1(self) -> AppsV1Api:
        from kubernetes import client

        return client.AppsV1Api(api_client=self.api_client())


def api_client(ref: str | Endpoint | KubernetesConnection) -> ApiClient:
    """A Kubernetes ApiClient from a kubernetes connection id, URI or Endpoint."""
    return KubernetesConnection.from_ref(ref).api_client()
