"""Operator that moves users to a site: every traffic layer of the topology (Route 53, CloudFront, Cloudflare)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from multicloud_dr.operators import run_step


class SwitchTrafficOperator(BaseOperator):
    """Switch the topology's traffic layers to `to_site` ("primary" or "dr"), each by compare-and-set against
    what it read, after the target site's app answered its health check (topology traffic.check_health).

    Idempotent: layers already on the target are not written, so a retry after a failure part-way finishes
    the switch. A conflict (someone else changed a layer meanwhile) is retried by Airflow: the retry reads
    again and decides again. Returns {"to", "from", "changed", "layers": [...], "health", "seconds"}.
    `providers` limits the switch to some layers (e.g. ["route53"]); `dry_run` only reports what would move.
    """

    template_fields: Sequence[str] = ("to_site", "providers")

    def __init__(self, *, to_site: str, providers: list[str] | None = None, dry_run: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to_site = to_site
        self.providers = providers
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from multicloud_dr.config import load_topology
        from multicloud_dr.traffic.switch import build_layers, switch_traffic

        def switch() -> dict[str, Any]:
            topology = load_topology()
            report = switch_traffic(topology, self.to_site, dry_run=self.dry_run,
                                    layers=build_layers(topology, self.providers))
            return report.to_dict()

        result = run_step(switch)
        self.log.info("traffic %s -> %s: %s in %.1f s", result["from"], result["to"],
                      "moved" if result["changed"] else "nothing to move", result["seconds"])
        return result
