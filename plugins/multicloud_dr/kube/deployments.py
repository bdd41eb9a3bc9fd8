"""Scale deployments and wait for their rollout.

Scaling goes through the `scale` subresource (autoscaling/v1 Scale: what `kubectl scale` and an autoscaler
use), read first: a deployment already at the wanted count is not written at all (its resourceVersion stays), so
a second run changes nothing. The write carries the resourceVersion that was read, so a change made meanwhile
(an autoscaler, a person with kubectl) is a 409, after which the scale is read and decided again.

A rollout is done when the deployment controller has seen the latest spec (status.observedGeneration >=
metadata.generation) and the pods are there: updated, available and ready replicas equal to the count asked for,
no old pods left (status.replicas); for 0 replicas the API omits the counts, which reads as 0. That is
`kubectl rollout status`'s rule plus readiness.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from multicloud_dr.exceptions import KubernetesError
from multicloud_dr.kube.cluster import ApiUnreachableError, Cluster, ClusterRef, using_cluster

log = logging.getLogger(__name__)

CONFLICT_TRIES = 5
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class DeploymentScale:
    """What scaling did to one deployment."""

    name: str
    before: int
    after: int
    changed: bool                 # False: it was already at `after`, nothing was written
    resource_version: str
    attempts: int = 1

    @property
    def detail(self) -> str:
        if not self.changed:
            return f"already at {self.after}: nothing written"
        return f"scaled {self.before} -> {self.after}"


@dataclass(frozen=True)
class ScaleResult:
    namespace: str
    replicas: int
    deployments: tuple[DeploymentScale, ...]

    @property
    def changed(self) -> bool:
        return any(d.changed for d in self.deployments)

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "replicas": self.replicas, "changed": self.changed,
                "deployments": [{"name": d.name, "from": d.before, "to": d.after, "changed": d.changed,
                                 "detail": d.detail, "resource_version": d.resource_version}
                                for d in self.deployments]}


def scale_deployments(conn: ClusterRef | Cluster, namespace: str | None, deployments: Iterable[str],
                      replicas: int) -> ScaleResult:
    """Set spec.replicas of each deployment to `replicas` through its scale subresource; one already there is
    left untouched. `conn`: a kubernetes connection id, URI or Endpoint (or a Cluster); `namespace`: None for
    the connection's."""
    if replicas < 0:
        raise KubernetesError(f"cannot scale to {replicas} replicas: give 0 or more")
    with using_cluster(conn, namespace) as cluster:
        results = tuple(_scale_one(cluster, name, replicas) for name in deployments)
    return ScaleResult(cluster.namespace, replicas, results)


def _scale_one(cluster: Cluster, name: str, replicas: int) -> DeploymentScale:
    from kubernetes.client.exceptions import ApiException

    ns = cluster.namespace
    action = f"scale deployment {ns}/{name} to {replicas}"
    for attempt in range(1, CONFLICT_TRIES + 1):
        scale = cluster.call(action, cluster.apps.read_namespaced_deployment_scale, name, ns)
        before = scale.spec.replicas or 0
        version = scale.metadata.resource_version
        if before == replicas:
            log.info("deployment %s/%s: already at %d replicas: nothing written", ns, name, replicas)
            return DeploymentScale(name, before, replicas, False, version, attempt)
        body = {"metadata": {"resourceVersion": version}, "spec": {"replicas": replicas}}
        try:
            written = cluster.call(action, cluster.apps.patch_namespaced_deployment_scale, name, ns, body,
                                   passthrough=(409,))
        except ApiException:
            log.info("deployment %s/%s: its scale changed while we wrote (try %d of %d): reading it again",
                     ns, name, attempt, CONFLICT_TRIES)
            continue
        log.info("deployment %s/%s: scaled %d -> %d replicas", ns, name, before, replicas)
        return DeploymentScale(name, before, replicas, True, written.metadata.resource_version, attempt)
    raise KubernetesError(f"{action}: its scale kept changing under us ({CONFLICT_TRIES} tries): another writer "
                          f"(an autoscaler, a GitOps controller) is scaling it; stop that writer, then run this again")


@dataclass(frozen=True)
class RolloutState:
    """A deployment's rollout as last read."""

    name: str
    namespace: str
    replicas: int                 # spec.replicas: what is asked for
    total: int                    # status.replicas: pods that exist (old and new)
    updated: int
    ready: int
    available: int
    generation: int
    observed: int
    conditions: tuple[str, ...] = ()   # the conditions that are not fine, e.g. "Available=False: ..."

    @classmethod
    def of(cls, deployment: Any) -> RolloutState:
        status, meta = deployment.status, deployment.metadata
        conditions = tuple(
            f"{c.type}={c.status}" + (f" ({c.reason})" if c.reason else "") + (f": {c.message}" if c.message else "")
            for c in (getattr(status, "conditions", None) or [])
            if (c.type, c.status) not in (("Available", "True"), ("Progressing", "True")))
        return cls(name=meta.name, namespace=meta.namespace, replicas=deployment.spec.replicas or 0,
                   total=getattr(status, "replicas", None) or 0, updated=getattr(status, "updated_replicas", None) or 0,
                   ready=getattr(status, "ready_replicas", None) or 0,
                   available=getattr(status, "available_replicas", None) or 0,
                   generation=meta.generation or 0, observed=getattr(status, "observed_generation", None) or 0,
                   conditions=conditions)

    def done(self, replicas: int) -> bool:
        return (self.observed >= self.generation and self.replicas == replicas and self.updated >= replicas
                and self.total <= self.updated and self.available >= self.updated and self.ready == replicas)

    def describe(self) -> str:
        text = (f"{self.ready} of {self.replicas} ready (updated {self.updated}, available {self.available}, pods "
                f"{self.total}), generation {self.generation} observed {self.observed}")
        return text + (f"; {'; '.join(self.conditions)}" if self.conditions else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conditions": list(self.conditions)}


def read_rollout(conn: ClusterRef | Cluster, namespace: str | None, deployment: str) -> RolloutState:
    with using_cluster(conn, namespace) as cluster:
        return _read(cluster, deployment)


def _read(cluster: Cluster, name: str, timeout: float | None = None) -> RolloutState:
    ns = cluster.namespace
    return RolloutState.of(cluster.call(f"read deployment {ns}/{name}",
                                        cluster.apps.read_namespaced_deployment_status, name, ns, timeout=timeout))


def wait_rollout(conn: ClusterRef | Cluster, namespace: str | None, deployment: str, replicas: int,
                 timeout: float, *, interval: float = POLL_SECONDS) -> RolloutState:
    """Poll the deployment until its rollout to `replicas` is done (see the module's docstring), at most `timeout`
    seconds; progress is logged when it changes. A refusal (401, 403, 404) fails at once; an API that does not
    answer for a moment is waited out until the deadline. On timeout a KubernetesError says the last state seen."""
    with using_cluster(conn, namespace) as cluster:
        return RolloutWait(cluster, deployment, replicas, timeout, interval).run()


class RolloutWait:
    """One bounded wait for one deployment's rollout."""

    def __init__(self, cluster: Cluster, deployment: str, replicas: int, timeout: float,
                 interval: float = POLL_SECONDS) -> None:
        self.cluster, self.deployment, self.replicas = cluster, deployment, replicas
        self.timeout, self.interval = timeout, interval
        self.last: RolloutState | None = None
        self.last_error: str | None = None

    def run(self) -> RolloutState:
        ns, name = self.cluster.namespace, self.deployment
        t0 = time.monotonic()
        deadline = t0 + self.timeout
        said = None
        while True:
            # The client retries a GET that timed out 3 times by itself: a hung API costs 4 request timeouts, so
            # a quarter of what is left keeps the wait near its deadline.
            left = deadline - time.monotonic()
            try:
                state = _read(self.cluster, name, timeout=max(min(self.cluster.request_timeout, left / 4), 0.5))
                self.last, self.last_error = state, None
                line = state.describe()
            except ApiUnreachableError as err:     # a blip of the control plane: wait it out, up to the deadline
                state, self.last_error, line = None, str(err), f"API not answering: {err}"
            if line != said:
                log.info("rollout of %s/%s to %d: %s", ns, name, self.replicas, line)
                said = line
            if state is not None and state.done(self.replicas):
                log.info("rollout of %s/%s to %d: done in %.1f s", ns, name, self.replicas, time.monotonic() - t0)
                return state
            left = deadline - time.monotonic()
            if left <= 0:     # still not answering at the deadline: unreachable, which a caller may tolerate
                raise (ApiUnreachableError if self.last_error else KubernetesError)(self._timeout_message())
            time.sleep(min(self.interval, left))

    def _timeout_message(self) -> str:
        ns, name, n = self.cluster.namespace, self.deployment, self.replicas
        seen = self.last.describe() if self.last else "never read"
        error = f"; then the API stopped answering: {self.last_error}" if self.last_error else ""
        if n == 0:
            what = (f"check for pods stuck terminating (`kubectl -n {ns} get pods`; finalizers, a long "
                    f"terminationGracePeriodSeconds)")
        elif self.last is not None and self.last.replicas != n:
            what = (f"its spec now asks for {self.last.replicas}: something else (an autoscaler, a GitOps "
                    f"controller) scaled it meanwhile; stop it, then scale again")
        else:
            what = (f"check `kubectl -n {ns} describe deployment {name}` and its pods' events and logs (image "
                    f"pulls, crash loops, readiness probes, quotas, nodes)")
        return (f"deployment {ns}/{name} on {self.cluster.where} did not roll out to {n} replicas within "
                f"{self.timeout:g} s: last seen {seen}{error}: {what}")
