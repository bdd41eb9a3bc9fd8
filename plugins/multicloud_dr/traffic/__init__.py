"""The traffic layer: which site (primary or dr) users reach, and moving them, one provider per module.

Every layer (Route 53 record, CloudFront distribution, Cloudflare load balancer) offers the same three calls:

- `status()`: which site is live, with the version it read (an ETag, the record's exact value, the pools'
  states), so that a later change can be refused if what is live moved meanwhile;
- `switch(to_site, expect=status)`: compare-and-set. If the live state is no longer `expect`, nothing is
  written and `TrafficConflictError` says so; if the layer is already on `to_site`, nothing is written;
- `verify(to_site)`: read back from the provider's API that the layer serves `to_site`.

F24 (traffic switch races: a stale read must fail and be re-read, never clobber a change made meanwhile; a
second run is a no-op; no layer may ever have zero active targets) is what the order of each layer's steps
serves: the new target is enabled and healthy before the old one is disabled, and every change is one
atomic API call or a sequence in which each intermediate state still has an active target (the pure
`plan_*` functions of each module, driven by tests/unit/test_traffic_never_zero.py).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from multicloud_dr.config import SITES

BOTH = "both"   # an active-active layer with weight on every site


@dataclass(frozen=True)
class LayerStatus:
    """One layer as read from its provider."""

    provider: str                     # "route53", "cloudfront", "cloudflare"
    site: str | None                  # "primary", "dr", "both" (active-active), None: the live value names no site
    version: str                      # compared by switch(expect=...): ETag, record values, pool states
    active: tuple[str, ...]           # the sites that get traffic now (never empty when the layer is sane)
    detail: dict[str, Any] = field(default_factory=dict)   # provider fields for `drctl traffic status --json`

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, **self.detail, "site": self.site}


@dataclass(frozen=True)
class SwitchResult:
    provider: str
    from_site: str | None
    to_site: str
    changed: bool                     # False: it was already there, nothing was written
    steps: tuple[str, ...] = ()       # what was done, in order ("enable pool dr", "default pools -> dr, primary")
    seconds: float = 0.0
    status: LayerStatus | None = None  # read back after the switch

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "from": self.from_site, "to": self.to_site, "changed": self.changed,
                "steps": list(self.steps), "seconds": round(self.seconds, 3),
                "status": self.status.to_dict() if self.status else None}


class TrafficLayer(abc.ABC):
    """One provider's layer, built from its topology section (config.Route53Layer, ...)."""

    provider: str = ""

    @abc.abstractmethod
    def status(self) -> LayerStatus:
        """Read the layer: which site is live, and the version of what was read."""

    @abc.abstractmethod
    def switch(self, to_site: str, expect: LayerStatus) -> SwitchResult:
        """Move the layer to `to_site` if it still is as `expect` says; a no-op if it is there already."""

    def verify(self, to_site: str) -> LayerStatus:
        """Read back from the API that the layer serves `to_site`; raise TrafficError if it does not."""
        from multicloud_dr.exceptions import TrafficError

        now = self.status()
        if now.site != to_site:
            raise TrafficError(f"{self.describe()} serves {now.site or 'no site of the topology'} "
                               f"({self.what_is_live(now)}) after the switch to {to_site}")
        return now

    def what_is_live(self, status: LayerStatus) -> str:
        """The provider's words for what a status says is live (a record value, an origin, pools)."""
        return ", ".join(f"{k} {v}" for k, v in status.detail.items())

    def describe(self) -> str:
        return self.provider


class AwsTrafficLayer(TrafficLayer):
    """A layer behind an AWS API: its boto3 client comes from the layer's `aws` connection, made on first use
    (inside Airflow through AwsBaseHook), unless one is given (tests: moto, botocore's Stubber)."""

    service = ""

    def __init__(self, layer: Any, client: Any = None) -> None:
        self.layer = layer
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from multicloud_dr.connections.aws import aws_client

            self._client = aws_client(self.layer.conn_id, self.service)
        return self._client


def wait_for_aws(client: Any, waiter: str, *, poll_seconds: int, timeout: int, failure: str, **params: Any) -> None:
    """Wait with boto3's own waiter (Route 53's INSYNC, CloudFront's Deployed), polling every `poll_seconds` for at
    most `timeout` seconds; on timeout a TrafficError with `failure`, which says what to check."""
    import math

    from botocore.exceptions import WaiterError

    from multicloud_dr.exceptions import TrafficError

    config = {"Delay": min(poll_seconds, timeout), "MaxAttempts": max(1, math.ceil(timeout / poll_seconds))}
    try:
        client.get_waiter(waiter).wait(**params, WaiterConfig=config)
    except WaiterError:
        raise TrafficError(failure) from None


def check_site(site: str) -> str:
    if site not in SITES:
        from multicloud_dr.exceptions import InputError

        raise InputError(f"no site {site!r}: traffic goes to {' or '.join(SITES)}")
    return site
