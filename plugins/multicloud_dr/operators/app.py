"""Operators for the application at a site: scale it on its cluster, wait until it answers its health check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step

DIRECTIONS = ("up", "down")


class ScaleAppOperator(BaseOperator):
    """Scale one site's application (its deployments on EKS, AKS or GKE), as the topology describes it.

    - `direction="up"` (or `replicas=N`, N >= 1): write the ConfigMap and the Secret that point the app at its
      database, then scale every deployment to the topology's `replicas` (or N), then wait for the rollouts;
    - `direction="down"` (or `replicas=0`): scale to 0 and wait until no pod is left;
    - `if_reachable=True` with down: the old primary during a failover. If its cluster's API does not answer a
      `probe_timeout` probe, the task succeeds with "unreachable: not scaled" in its result (a refusal, 401/403,
      still fails it).

    Idempotent: a deployment already at the count is not written, an unchanged config is not rewritten. Returns
    the counts, resourceVersions and rollout states (key names, never secret values). Nothing to stop on kill: the
    work is API calls, and the cluster keeps whatever scale was last asked for.
    """

    template_fields: Sequence[str] = ("site", "direction", "replicas")
    ui_color = "#dff0ff"

    def __init__(self, *, site: str, direction: str | None = None, replicas: int | str | None = None,
                 if_reachable: bool = False, probe_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (direction is None) == (replicas is None):
            raise ValueError(f"{kwargs.get('task_id')}: give exactly one of direction ('up' or 'down') and replicas")
        self.site = site
        self.direction = direction
        self.replicas = replicas
        self.if_reachable = if_reachable
        self.probe_timeout = probe_timeout

    def _wanted(self) -> int | None:
        """The replicas asked for once templates are rendered: None for the topology's (up), 0 for down."""
        from multicloud_dr.exceptions import ConfigError

        if self.replicas is not None:
            try:
                replicas = int(self.replicas)
            except (TypeError, ValueError):
                raise ConfigError(f"replicas {self.replicas!r} is not a whole number") from None
            if replicas < 0:
                raise ConfigError(f"replicas is {replicas}: give 0 or more")
            return replicas
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction {self.direction!r}: give 'up' or 'down'")
        return None if self.direction == "up" else 0

    def execute(self, context: Context) -> dict:
        from multicloud_dr.config import load_topology
        from multicloud_dr.kube.site import SiteApp, scale_down_if_reachable

        def step() -> dict:
            replicas = self._wanted()
            topology = load_topology()      # a local file
            app = SiteApp.from_topology(topology, self.site)
            if replicas == 0 and self.if_reachable:
                return scale_down_if_reachable(app.app, self.probe_timeout, site=self.site)
            with app:
                return app.scale_down() if replicas == 0 else app.scale_up(replicas)

        result = run_step(step)
        self.log.info("site %s: %s", self.site, result.get("detail") or
                      f"{result['replicas']} replicas, changed: {result['changed']}")
        return result


class WaitHealthyOperator(BaseOperator):
    """Wait until a site's application answers its health check (HTTP 200, and a JSON "status" of "ok" when the
    body has one), for at most `timeout` seconds (default: the topology's `health_timeout_seconds`).

    Give `site` (its `health_conn_id`, `health_path` and timeout come from the topology) or a `health_conn_id`
    of its own. On timeout the task fails with the site, the URL and the last failure (status and body excerpt, or
    the connection error).

    Why the library and not HttpSensor: the same check then runs from drctl and before a traffic switch
    (`traffic.check_health`), with one rule for "healthy" and one failure message, as a check that lives in the
    library must; and the wait sits on the failover's critical path, where it answers within seconds of the app,
    while a rescheduled sensor adds a scheduler round trip to every poke and so to the RTO. The HTTP session is
    still the http provider's: the connection layer takes it from HttpHook inside Airflow.
    """

    template_fields: Sequence[str] = ("site", "health_conn_id", "path")
    ui_color = "#e3f7e3"

    def __init__(self, *, site: str | None = None, health_conn_id: str | None = None, path: str | None = None,
                 timeout: float | None = None, interval: float = 2.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (site is None) == (health_conn_id is None):
            raise ValueError(f"{kwargs.get('task_id')}: give exactly one of site and health_conn_id")
        self.site = site
        self.health_conn_id = health_conn_id
        self.path = path
        self.timeout = timeout
        self.interval = interval

    def execute(self, context: Context) -> dict:
        from multicloud_dr.kube.health import DEFAULT_TIMEOUT_SECONDS, wait_healthy

        def step() -> dict:
            conn_id, path, timeout = self.health_conn_id, self.path, self.timeout
            if self.site is not None:
                from multicloud_dr.config import load_topology
                from multicloud_dr.exceptions import ConfigError

                app = load_topology().site(self.site).app
                if app is None:
                    raise ConfigError(f"site {self.site} has no app section (health_conn_id): add it to the topology")
                conn_id, path = app.health_conn_id, path or app.health_path
                timeout = timeout or app.health_timeout_seconds
            name = f"site {self.site}" if self.site else f"connection {conn_id}"
            result = wait_healthy(conn_id or "", path or "/health", timeout=timeout or DEFAULT_TIMEOUT_SECONDS,
                                  interval=self.interval, name=name)
            return {"site": self.site, **result.to_dict()}

        return run_step(step)
