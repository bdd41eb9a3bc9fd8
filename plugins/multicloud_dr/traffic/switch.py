"""Every traffic layer of the topology at once: `drctl traffic status|switch`, SwitchTrafficOperator, the failover.

A switch reads every layer first, checks that the target site's application is healthy (topology
`traffic.check_health`), then moves the layers one after another, each by compare-and-set against what was
read. A layer already on the target is left untouched, so a second run writes nothing, and a run that stopped
half-way (a conflict, a timeout, a killed worker) is finished by running it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from multicloud_dr.config import CloudflareLayer, CloudFrontLayer, Route53Layer, Topology
from multicloud_dr.exceptions import ConfigError, DrError, TrafficError
from multicloud_dr.traffic import LayerStatus, SwitchResult, TrafficLayer, check_site

log = logging.getLogger(__name__)
MIXED = "mixed"   # the layers disagree: some on one site, some on another


def build_layer(config: Route53Layer | CloudFrontLayer | CloudflareLayer) -> TrafficLayer:
    if isinstance(config, Route53Layer):
        from multicloud_dr.traffic.route53 import Route53Record

        return Route53Record(config)
    if isinstance(config, CloudFrontLayer):
        from multicloud_dr.traffic.cloudfront import CloudFrontDistribution

        return CloudFrontDistribution(config)
    from multicloud_dr.traffic.cloudflare import CloudflareLoadBalancer

    return CloudflareLoadBalancer(config)


def build_layers(topology: Topology, providers: list[str] | None = None) -> list[TrafficLayer]:
    configs = topology.traffic.layers
    if providers:
        unknown = set(providers) - {c.provider for c in configs}
        if unknown:
            raise ConfigError(f"the topology has no {', '.join(sorted(unknown))} traffic layer; it has: "
                              f"{', '.join(c.provider for c in configs) or 'none'}")
        configs = [c for c in configs if c.provider in providers]
    if not configs:
        raise ConfigError("the topology has no traffic layers: add a traffic section with layers (route53, "
                          "cloudfront, cloudflare); see include/topology.yaml")
    return [build_layer(c) for c in configs]


def overall_site(statuses: list[LayerStatus]) -> str | None:
    sites = {s.site for s in statuses}
    return sites.pop() if len(sites) == 1 else MIXED


@dataclass
class TrafficReport:
    site: str | None
    layers: list[LayerStatus]

    def to_dict(self) -> dict[str, Any]:
        return {"site": self.site, "layers": [s.to_dict() for s in self.layers]}


def traffic_status(topology: Topology, layers: list[TrafficLayer] | None = None) -> TrafficReport:
    layers = layers if layers is not None else build_layers(topology)
    statuses = [layer.status() for layer in layers]
    return TrafficReport(overall_site(statuses), statuses)


@dataclass
class SwitchReport:
    to_site: str
    from_site: str | None
    dry_run: bool
    results: list[SwitchResult] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to_site, "from": self.from_site, "dry_run": self.dry_run, "changed": self.changed,
                "layers": [r.to_dict() for r in self.results] if not self.dry_run else self.planned,
                "health": self.health, "seconds": round(self.seconds, 3)}


class PartialSwitchError(TrafficError):
    """Some layers moved, then one failed: the message says which; running the switch again finishes it."""


def check_target_health(topology: Topology, to_site: str) -> dict[str, Any] | None:
    """The target site's app must answer its health check before any layer sends users to it."""
    app = topology.site(to_site).app
    if app is None:
        raise ConfigError(f"traffic.check_health is on but site {to_site} has no app section (health_conn_id): "
                          f"add it, or set traffic.check_health: false")
    from multicloud_dr.kube.health import wait_healthy

    return wait_healthy(app.health_conn_id, path=app.health_path, timeout=app.health_timeout_seconds).to_dict()


def switch_traffic(topology: Topology, to_site: str, *, dry_run: bool = False,
                   layers: list[TrafficLayer] | None = None, check_health: bool | None = None) -> SwitchReport:
    check_site(to_site)
    t0 = time.monotonic()
    layers = layers if layers is not None else build_layers(topology)
    statuses = [layer.status() for layer in layers]
    report = SwitchReport(to_site, overall_site(statuses), dry_run)
    pending = [(layer, s) for layer, s in zip(layers, statuses, strict=True) if s.site != to_site]
    report.planned = [{"provider": s.provider, "from": s.site, "to": to_site, "would_change": s.site != to_site,
                       "status": s.to_dict()} for s in statuses]
    if dry_run:
        report.seconds = time.monotonic() - t0
        return report
    if pending and (topology.traffic.check_health if check_health is None else check_health):
        report.health = check_target_health(topology, to_site)
    for layer, status in zip(layers, statuses, strict=True):
        try:
            result = layer.switch(to_site, expect=status)
        except DrError as err:
            moved = [r.provider for r in report.results if r.changed]
            raise PartialSwitchError(
                f"{layer.describe()}: {err}; layers moved to {to_site} before it: {', '.join(moved) or 'none'} "
                f"(the others are untouched): fix the cause and run the switch again, it skips the layers already "
                f"on {to_site}") from None
        report.results.append(result)
        log.info("%s: %s", layer.describe(), f"{result.from_site} -> {to_site} in {result.seconds:.1f} s"
                 if result.changed else f"already on {to_site}, nothing written")
    report.seconds = time.monotonic() - t0
    log.info("traffic: %d of %d layers moved to %s in %.1f s", sum(r.changed for r in report.results),
             len(report.results), to_site, report.seconds)
    return report
