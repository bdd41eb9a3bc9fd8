"""The lab's `kube-api` service: the AKS and EKS API servers, faked at their HTTP boundary.

No Kubernetes API server can run on this machine, so the lab runs `FakeKubeApi` (lab/fake_kube.py: the
shapes of the Kubernetes API, for the official client) with two clusters, `eks-primary` (the primary site)
and `aks-dr` (the DR site). In each, namespace `petclinic` holds:

- Deployment `petclinic-web`, BOUND to that site's app process (`AppService`, the Workload): scaling the
  deployment to 0 stops the process, to 1 or more starts it, and its ready replicas are the app's /health
  answering 200. So a failover that scales the DR deployment up really brings the DR application up.
- ConfigMap `petclinic-db`: DB_HOST, DB_PORT and DB_NAME of that site's database.

Objects are seeded when absent from the state file; what a run changed (replicas, config maps) stays across
restarts. Run by the lab as

    python -m multicloud_dr.lab.kube_api --port PORT --state FILE --token-file FILE

with the lab's settings (DRLAB_HOME, the DRLAB_*_PORT variables) in the environment, as `drctl lab up` does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from multicloud_dr.lab.services import AppService, MySQLDR, MySQLPrimary
from multicloud_dr.lab.settings import (
    APP_CONFIG_MAP,
    APP_DEPLOYMENT,
    APP_NAMESPACE,
    APP_SITES,
    KUBE_CLUSTERS,
    SAMPLE_DATABASE,
    LabSettings,
)

CONTAINER_IMAGE = "ghcr.io/multicloud-dr/petclinic-web:lab"
APP_SECRET = "petclinic-db-credentials"  # noqa: S105 (a Secret's name; the dr site writes the DR login into it)


def app_services(settings: LabSettings) -> dict[str, AppService]:
    """site -> the app process its cluster's deployment is bound to."""
    return {"primary": AppService(settings, "primary", MySQLPrimary(settings)),
            "dr": AppService(settings, "dr", MySQLDR(settings))}


def workloads(apps: dict[str, AppService]) -> dict[str, AppService]:
    """The deployments bound to a local process, keyed cluster/namespace/deployment (FakeKubeApi's keys)."""
    return {app.deployment_key: app for app in apps.values()}


def deployment(app: AppService, replicas: int = 1) -> dict:
    """An apps/v1 Deployment as a cluster would hold it for the app (server-set fields left to the fake)."""
    labels = {"app": APP_DEPLOYMENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP_DEPLOYMENT, "namespace": APP_NAMESPACE,
                     "labels": {**labels, "app.kubernetes.io/part-of": "petclinic"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": CONTAINER_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"name": "http", "containerPort": app.port, "protocol": "TCP"}],
                        "envFrom": [{"configMapRef": {"name": APP_CONFIG_MAP}},
                                    {"secretRef": {"name": APP_SECRET, "optional": True}}],
                        "readinessProbe": {"httpGet": {"path": "/health", "port": "http", "scheme": "HTTP"},
                                           "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"memory": "256Mi"}},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                },
            },
        },
    }


def config_map(app: AppService) -> dict:
    """The v1 ConfigMap that points the site's app at its database."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": APP_CONFIG_MAP, "namespace": APP_NAMESPACE, "labels": {"app": APP_DEPLOYMENT}},
            "data": {"DB_HOST": "127.0.0.1", "DB_PORT": str(app.database.port), "DB_NAME": SAMPLE_DATABASE}}


def seed_objects(apps: dict[str, AppService]) -> dict[str, dict]:
    """FakeKubeApi's seed: "cluster/namespace/kind/name" -> object, created when absent from its state."""
    objects: dict[str, dict] = {}
    for site in APP_SITES:
        app, cluster = apps[site], KUBE_CLUSTERS[site]
        objects[f"{cluster}/{APP_NAMESPACE}/deployments/{APP_DEPLOYMENT}"] = deployment(app)
        objects[f"{cluster}/{APP_NAMESPACE}/configmaps/{APP_CONFIG_MAP}"] = config_map(app)
    return objects


def main(argv: list[str] | None = None) -> int:
    settings = LabSettings.from_env()
    parser = argparse.ArgumentParser(prog="python -m multicloud_dr.lab.kube_api", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=settings.port("kube-api"))
    parser.add_argument("--state", type=Path, default=settings.service_dir("kube-api") / "state.json")
    parser.add_argument("--token-file", type=Path, default=settings.service_dir("kube-api") / "token",
                        help="a file holding the bearer token clients must send (never argv)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from multicloud_dr.lab.fake_kube import FakeKubeApi

    apps = app_services(settings)
    api = FakeKubeApi(token=args.token_file.read_text().strip(), state_file=args.state,
                      workloads=workloads(apps), seed=seed_objects(apps))
    logging.getLogger(__name__).info("fake Kubernetes API on http://127.0.0.1:%d/clusters/{%s}", args.port,
                                     ",".join(KUBE_CLUSTERS.values()))
    api.serve_forever("127.0.0.1", args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
