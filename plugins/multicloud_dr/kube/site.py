"""The application of one site on its cluster: scale it up (pointed at its database first), scale it down, read it.

`SiteApp` is built from the topology's `sites.<site>.app` (config.AppConfig). Scaling up writes the ConfigMap
(`config_map` <- `config`) and the Secret (`secret` <- DB_USER / DB_PASSWORD from `secret_from_conn_id`) before
any pod starts, so the first pod already reads the DR database; then every deployment is scaled to `replicas` and
the rollouts are waited for, within `rollout_timeout_seconds` in all. Each step is idempotent: a second run writes
nothing and waits for nothing that is already there.

`scale_down_if_reachable` is for the old primary during a failover: its region may be down, and a failover must
not wait on it or fail because of it. If its API answers a short probe it is scaled to 0 (and the pods' end is
waited for); if not, the result says "unreachable: not scaled" and nothing is raised. A refusal (401, 403, a
deployment that does not exist) is still an error: the API answered, and the fence it is part of must not be
skipped silently.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import Any

from multicloud_dr.config import AppConfig, Topology
from multicloud_dr.exceptions import ConfigError
from multicloud_dr.kube.cluster import PROBE_TIMEOUT_SECONDS, REQUEST_TIMEOUT_SECONDS, ApiUnreachableError, Cluster
from multicloud_dr.kube.deployments import POLL_SECONDS, RolloutState, RolloutWait, read_rollout, scale_deployments
from multicloud_dr.kube.objects import WriteResult, set_config_map, set_secret

log = logging.getLogger(__name__)

MIN_WAIT_SECONDS = 1.0


class SiteApp:
    """The app of one site (`site` names it in messages and results)."""

    def __init__(self, app: AppConfig, site: str | None = None, *, request_timeout: float = REQUEST_TIMEOUT_SECONDS,
                 poll_interval: float = POLL_SECONDS) -> None:
        self.app = app
        self.site = site
        self.label = f"site {site}" if site else "the app"
        if not app.kubernetes_conn_id:
            raise ConfigError(f"{self.label}: its app has no kubernetes_conn_id, so there is nothing to scale: add "
                              f"the site's cluster connection (and its deployments) to the topology")
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval

    @classmethod
    def from_topology(cls, topology: Topology, site: str) -> SiteApp:
        app = topology.site(site).app
        if app is None:
            raise ConfigError(f"site {site} has no app section: add sites.{site}.app (health_conn_id, "
                              f"kubernetes_conn_id, namespace, deployments) to the topology")
        return cls(app, site)

    @cached_property
    def cluster(self) -> Cluster:
        return Cluster(self.app.kubernetes_conn_id or "", self.app.namespace, request_timeout=self.request_timeout)

    def close(self) -> None:
        if "cluster" in self.__dict__:
            self.cluster.close()
            del self.__dict__["cluster"]

    def __enter__(self) -> SiteApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ---------------------------------------------------------------------------------------------

    def write_config(self) -> dict[str, WriteResult | None]:
        """The ConfigMap and the Secret the app reads its database from (each only when the topology names it)."""
        config_map = secret = None
        if self.app.config_map and self.app.config:
            config_map = set_config_map(self.cluster, None, self.app.config_map, self.app.config)
        if self.app.secret and self.app.secret_from_conn_id:
            secret = set_secret(self.cluster, None, self.app.secret, self.database_credentials())
        return {"config_map": config_map, "secret": secret}

    def database_credentials(self) -> dict[str, str]:
        """DB_USER / DB_PASSWORD from the `secret_from_conn_id` connection (masked in Airflow's logs)."""
        from multicloud_dr.connections import get_endpoint

        conn_id = self.app.secret_from_conn_id or ""
        endpoint = get_endpoint(conn_id)
        if not endpoint.login or endpoint.password is None:
            raise ConfigError(f"{self.label}: connection {conn_id} has no login or no password, which the app's "
                              f"Secret {self.app.secret} takes as DB_USER / DB_PASSWORD: set both in the connection")
        return {"DB_USER": endpoint.login, "DB_PASSWORD": endpoint.password}

    def scale_up(self, replicas: int | None = None) -> dict[str, Any]:
        """Config and secret first, then every deployment to `replicas` (default: the topology's), then wait."""
        t0 = time.monotonic()
        replicas = self.app.replicas if replicas is None else replicas
        if replicas < 1:
            raise ConfigError(f"{self.label}: scale up to {replicas}? give 1 or more (or scale down)")
        written = self.write_config()
        result = self.scale_to(replicas)
        return {**result, "config_map": _dict(written["config_map"]), "secret": _dict(written["secret"]),
                "seconds": round(time.monotonic() - t0, 3)}

    def scale_down(self, *, rollout_timeout: float | None = None) -> dict[str, Any]:
        """Every deployment to 0, and wait until no pod is left (the config and the secret stay)."""
        t0 = time.monotonic()
        result = self.scale_to(0, rollout_timeout=rollout_timeout)
        return {**result, "seconds": round(time.monotonic() - t0, 3)}

    def scale_to(self, replicas: int, *, rollout_timeout: float | None = None) -> dict[str, Any]:
        """Scale every deployment to `replicas` and wait for the rollouts, within one deadline for all."""
        if not self.app.deployments:
            log.info("%s: no deployments in the topology: nothing to scale", self.label)
        timeout = rollout_timeout if rollout_timeout is not None else self.app.rollout_timeout_seconds
        scale = scale_deployments(self.cluster, None, self.app.deployments, replicas)
        deadline = time.monotonic() + timeout
        states: list[RolloutState] = []
        for name in self.app.deployments:
            left = max(deadline - time.monotonic(), MIN_WAIT_SECONDS)
            states.append(RolloutWait(self.cluster, name, replicas, left, self.poll_interval).run())
        return {"site": self.site, "namespace": self.cluster.namespace, "replicas": replicas,
                "changed": scale.changed, "scale": scale.to_dict(), "rollout": [s.to_dict() for s in states]}

    def status(self) -> dict[str, Any]:
        """Each deployment as it is now: replicas asked for, ready, updated, available, generation, observed."""
        deployments = {}
        for name in self.app.deployments:
            state = read_rollout(self.cluster, None, name)
            deployments[name] = {"replicas": state.replicas, "ready": state.ready, "updated": state.updated,
                                 "available": state.available, "generation": state.generation,
                                 "observed": state.observed, "rolled_out": state.done(state.replicas),
                                 "conditions": list(state.conditions)}
        return {"site": self.site, "namespace": self.cluster.namespace, "deployments": deployments}


def scale_down_if_reachable(app: AppConfig, timeout: float = PROBE_TIMEOUT_SECONDS, *, site: str | None = None,
                            rollout_timeout: float | None = None,
                            poll_interval: float = POLL_SECONDS) -> dict[str, Any]:
    """Scale the (old primary) site's app to 0 if its cluster's API answers within `timeout`; if it does not,
    return {"reachable": False, "scaled": False, "detail": "unreachable: not scaled (...)"} without raising. Also
    when the API stops answering half-way (then some deployments may be at 0 already: the detail says so)."""
    with SiteApp(app, site, poll_interval=poll_interval) as target:
        why = target.cluster.probe(timeout)
        if why is not None:
            log.warning("%s: its cluster's API is unreachable, so its app was not scaled down: %s", target.label, why)
            return {"site": site, "reachable": False, "scaled": False, "detail": f"unreachable: not scaled ({why})"}
        try:
            result = target.scale_down(rollout_timeout=rollout_timeout)
        except ApiUnreachableError as err:
            log.warning("%s: its cluster's API stopped answering while its app was scaled down: %s", target.label, err)
            return {"site": site, "reachable": False, "scaled": False,
                    "detail": f"unreachable: not scaled, or not all of it (the API stopped answering: {err})"}
    detail = "scaled to 0" if result["changed"] else "already at 0: nothing written"
    return {**result, "reachable": True, "scaled": True, "detail": detail}


def _dict(result: WriteResult | None) -> dict[str, Any] | None:
    return result.to_dict() if result is not None else None
