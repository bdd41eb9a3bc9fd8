"""A copy of a site's app in a drill namespace: what a failover drill scales, so the live DR app is never touched.

A drill proves that the DR app can be started on the DR cluster against restored data, without starting the live
DR deployments (a pilot-light site keeps them at 0, and a drill must not change that). So each deployment the
topology names is copied, spec and all, from the app's namespace into `<namespace><failover.drill.namespace_suffix>`
(default `petclinic-drill`), with its ConfigMap pointing at the drill's scratch database and its Secret from the
same connection as the live one; then the copies are scaled up and their rollouts waited for (kube/site.py).

Safety, because a teardown deletes things:
- the drill namespace must differ from the app's own namespace and end with the suffix, else nothing is written;
- every deployment written here carries the label `multicloud-dr/drill=true`; a deployment of that name found in
  the drill namespace without it is someone else's, and the drill refuses to touch it;
- the teardown deletes, in the drill namespace only, the labelled deployments and the ConfigMap and Secret the
  topology names. A missing object is fine (idempotent: a teardown runs again after a retry).

The cluster must let the connection's user create and delete deployments, configmaps and secrets in the drill
namespace, and the namespace must exist (this does not create namespaces: most clusters reserve that right).
"""

from __future__ import annotations

import logging
from typing import Any

from multicloud_dr.config import AppConfig
from multicloud_dr.exceptions import ConfigError, KubernetesError
from multicloud_dr.kube.cluster import Cluster

log = logging.getLogger(__name__)

DRILL_LABEL = "multicloud-dr/drill"
COPY_OF = "multicloud-dr/drill-copy-of"


def _live_namespace(app: AppConfig) -> str:
    """The app's own namespace: the topology's, else its connection's."""
    with Cluster(app.kubernetes_conn_id or "", app.namespace) as cluster:
        return cluster.namespace


def drill_namespace(app: AppConfig, suffix: str) -> str:
    """The namespace a drill runs the app of `app` in: the app's (or its connection's) namespace plus `suffix`."""
    name = f"{_live_namespace(app)}{suffix}"
    if len(name) > 63:
        raise ConfigError(f"the drill namespace {name!r} is longer than 63 characters: shorten "
                          f"failover.drill.namespace_suffix")
    return name


def _check(live: str, namespace: str, suffix: str) -> None:
    if namespace == live or not suffix or not namespace.endswith(suffix):
        raise ConfigError(f"namespace {namespace!r} is not a drill namespace of {live!r} (<namespace>{suffix}): "
                          f"a drill never writes to the live namespace; fix failover.drill.namespace_suffix")


def _copy_body(cluster: Cluster, source: Any, namespace: str, live: str) -> dict[str, Any]:
    """The live deployment as a new object of the drill namespace: its spec at 0 replicas, its labels plus ours;
    none of the server's fields (uid, resourceVersion, status)."""
    raw = cluster.api_client.sanitize_for_serialization(source)
    meta = raw.get("metadata") or {}
    spec = dict(raw.get("spec") or {})
    spec["replicas"] = 0
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": meta["name"], "namespace": namespace,
                         "labels": {**(meta.get("labels") or {}), DRILL_LABEL: "true"},
                         "annotations": {COPY_OF: f"{live}/{meta['name']}"}},
            "spec": spec}


def copy_deployments(app: AppConfig, namespace: str, suffix: str) -> list[dict[str, Any]]:
    """Copy each deployment of `app` into `namespace` (at 0 replicas), or bring an earlier drill's copy up to the
    live spec. Returns what was done per deployment."""
    from kubernetes.client.exceptions import ApiException

    done = []
    with Cluster(app.kubernetes_conn_id or "", app.namespace) as source, \
            Cluster(app.kubernetes_conn_id or "", namespace) as dst:
        live = source.namespace
        _check(live, namespace, suffix)
        for name in app.deployments:
            deployment = source.call(f"read deployment {live}/{name}", source.apps.read_namespaced_deployment,
                                     name, live)
            body = _copy_body(source, deployment, namespace, live)
            action = f"copy deployment {live}/{name} into {namespace}"
            try:
                dst.call(action, dst.apps.create_namespaced_deployment, namespace, body, passthrough=(409,))
                done.append({"deployment": name, "namespace": namespace, "action": "created"})
                log.info("drill: deployment %s copied into namespace %s", name, namespace)
                continue
            except ApiException:
                pass    # there already: ours from an earlier try, or someone else's
            existing = dst.call(f"read deployment {namespace}/{name}", dst.apps.read_namespaced_deployment,
                                name, namespace)
            if (existing.metadata.labels or {}).get(DRILL_LABEL) != "true":
                raise ConfigError(f"deployment {namespace}/{name} exists and was not made by a drill (no "
                                  f"{DRILL_LABEL} label): a drill will not touch it; choose another "
                                  f"failover.drill.namespace_suffix or remove it")
            body["metadata"]["resourceVersion"] = existing.metadata.resource_version
            body["spec"]["replicas"] = existing.spec.replicas or 0
            dst.call(action, dst.apps.replace_namespaced_deployment, name, namespace, body)
            done.append({"deployment": name, "namespace": namespace, "action": "updated"})
    return done


def remove_drill_copy(app: AppConfig, namespace: str, suffix: str) -> dict[str, Any]:
    """Delete, in the drill namespace only, the labelled deployment copies and the app's ConfigMap and Secret;
    then read the namespace again: anything of the copy still there is an error (the teardown must not pass)."""
    from kubernetes.client.exceptions import ApiException

    _check(_live_namespace(app), namespace, suffix)
    deleted: list[str] = []
    with Cluster(app.kubernetes_conn_id or "", namespace) as cluster:
        for name in app.deployments:
            try:
                found = cluster.call(f"read deployment {namespace}/{name}", cluster.apps.read_namespaced_deployment,
                                     name, namespace, passthrough=(404,))
            except ApiException:
                continue
            if (found.metadata.labels or {}).get(DRILL_LABEL) != "true":
                log.warning("drill teardown: deployment %s/%s has no %s label: left alone", namespace, name,
                            DRILL_LABEL)
                continue
            _delete(cluster, f"deployment {namespace}/{name}", cluster.apps.delete_namespaced_deployment, name,
                    deleted)
        if app.config_map:
            _delete(cluster, f"configmap {namespace}/{app.config_map}", cluster.core.delete_namespaced_config_map,
                    app.config_map, deleted)
        if app.secret:
            _delete(cluster, f"secret {namespace}/{app.secret}", cluster.core.delete_namespaced_secret, app.secret,
                    deleted)
    left = drill_objects(app, namespace)
    if left:
        raise KubernetesError(f"drill teardown in namespace {namespace}: still there after the delete: "
                              f"{', '.join(left)}; delete them by hand (`kubectl -n {namespace} delete ...`)")
    log.info("drill teardown in namespace %s: deleted %s", namespace, ", ".join(deleted) or "nothing (clean)")
    return {"namespace": namespace, "deleted": deleted, "already": not deleted}


def _delete(cluster: Cluster, what: str, fn: Any, name: str, deleted: list[str]) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        cluster.call(f"delete {what}", fn, name, cluster.namespace, passthrough=(404,), quote=False)
        deleted.append(what)
    except ApiException:
        pass    # gone already


def drill_objects(app: AppConfig, namespace: str) -> list[str]:
    """What of a drill copy is in `namespace` now (deployments with the label, the ConfigMap, the Secret)."""
    from kubernetes.client.exceptions import ApiException

    found = []
    with Cluster(app.kubernetes_conn_id or "", namespace) as cluster:
        listed = cluster.call(f"list deployments in {namespace}", cluster.apps.list_namespaced_deployment,
                              namespace, label_selector=f"{DRILL_LABEL}=true")
        found += [f"deployment {namespace}/{d.metadata.name}" for d in listed.items]
        for kind, fn, name in (("configmap", cluster.core.read_namespaced_config_map, app.config_map),
                               ("secret", cluster.core.read_namespaced_secret, app.secret)):
            if not name:
                continue
            try:
                cluster.call(f"read {kind} {namespace}/{name}", fn, name, namespace, passthrough=(404,), quote=False)
                found.append(f"{kind} {namespace}/{name}")
            except ApiException:
                pass
    return found
