"""CloudFront: the distribution's default cache behaviour sends requests to the live site's origin.

The default cache behaviour targets either an origin (its TargetOriginId is the live site's origin id) or an
origin group, whose first member is the primary origin and the second the failover: then the live site is
the group's first member, and a switch reorders the members.

A switch reads the distribution config with its ETag and writes it back with `IfMatch`; CloudFront refuses
the write (PreconditionFailed) if the config changed in between. Then we read it again and decide again: if
the live origin is still the one we read, the other writer changed something else and our change is applied
on top of theirs (with the new ETag); if the live origin moved, we stop (TrafficConflictError) and never
overwrite it (F24). Then we wait for the distribution to be Deployed.

Only the target origin id (or the members' order) changes: every other field of the config is written back
as read. Both origins stay in the distribution, so there is always an origin serving (F24: the config never
names zero origins).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from multicloud_dr.config import CloudFrontLayer
from multicloud_dr.exceptions import InputError, TrafficConflictError
from multicloud_dr.traffic import AwsTrafficLayer, LayerStatus, SwitchResult, check_site, wait_for_aws

log = logging.getLogger(__name__)

DEPLOYED_POLL_SECONDS = 20    # CloudFront deploys a change in minutes; its own waiter polls every 60 s
PRECONDITION_RETRIES = 3      # re-reads after PreconditionFailed while the live origin is still the one we read


def live_origin(config: dict[str, Any]) -> tuple[str, str | None]:
    """(the origin id the default behaviour serves from, the origin group id if it goes through one)."""
    target = config["DefaultCacheBehavior"]["TargetOriginId"]
    for group in (config.get("OriginGroups") or {}).get("Items") or []:
        if group["Id"] == target:
            members = group["Members"]["Items"]
            return members[0]["OriginId"], target
    return target, None


def point_at(config: dict[str, Any], origin_id: str) -> dict[str, Any]:
    """The config with the default behaviour's live origin set to `origin_id` (a pure function)."""
    new = copy.deepcopy(config)
    origins = {o["Id"] for o in new["Origins"]["Items"]}
    if origin_id not in origins:
        raise InputError(f"the distribution has no origin {origin_id!r} (it has {', '.join(sorted(origins))}): fix the "
                         f"topology's cloudfront origins")
    _, group_id = live_origin(new)
    if group_id is None:
        new["DefaultCacheBehavior"]["TargetOriginId"] = origin_id
        return new
    group = next(g for g in new["OriginGroups"]["Items"] if g["Id"] == group_id)
    members = group["Members"]["Items"]
    if origin_id not in {m["OriginId"] for m in members}:
        raise InputError(f"origin group {group_id} of the distribution has no member {origin_id!r}: add it to the "
                         f"group, or point the topology's cloudfront origins at its members")
    group["Members"]["Items"] = ([m for m in members if m["OriginId"] == origin_id]
                                 + [m for m in members if m["OriginId"] != origin_id])
    return new


class CloudFrontDistribution(AwsTrafficLayer):
    provider = "cloudfront"
    service = "cloudfront"
    layer: CloudFrontLayer

    def __init__(self, layer: CloudFrontLayer, client: Any = None) -> None:
        super().__init__(layer, client)
        self._id = layer.distribution_id

    def describe(self) -> str:
        return f"CloudFront distribution {self._id or self.layer.alias}"

    def distribution_id(self) -> str:
        if self._id is None:
            alias = (self.layer.alias or "").lower().rstrip(".")
            found = []
            for page in self.client.get_paginator("list_distributions").paginate():
                for item in (page.get("DistributionList") or {}).get("Items") or []:
                    if alias in [a.lower() for a in (item.get("Aliases") or {}).get("Items") or []]:
                        found.append(item["Id"])
            if len(found) != 1:
                raise InputError(f"{'no' if not found else len(found)} CloudFront distributions have the alias "
                                 f"{self.layer.alias} (connection {self.layer.conn_id}): give the topology's "
                                 f"cloudfront distribution_id instead")
            self._id = found[0]
        return self._id

    def read(self) -> tuple[dict[str, Any], str]:
        reply = self.client.get_distribution_config(Id=self.distribution_id())
        return reply["DistributionConfig"], reply["ETag"]

    def site_of(self, origin_id: str) -> str | None:
        return next((site for site, oid in self.layer.origins.items() if oid == origin_id), None)

    def _status(self, config: dict[str, Any], etag: str) -> LayerStatus:
        origin, group = live_origin(config)
        site = self.site_of(origin)
        detail = {"distribution_id": self.distribution_id(), "origin": origin, "etag": etag}
        if group:
            detail["origin_group"] = group
        return LayerStatus(self.provider, site, etag, (site or origin,), detail)

    def status(self) -> LayerStatus:
        return self._status(*self.read())

    def switch(self, to_site: str, expect: LayerStatus) -> SwitchResult:
        check_site(to_site)
        t0 = time.monotonic()
        config, etag = self.read()
        now = self._status(config, etag)
        if etag != expect.version:
            raise TrafficConflictError(f"{self.describe()} changed since it was read (ETag {expect.version} -> {etag}, "
                                       f"live origin {now.detail['origin']}): nothing written; read the status again")
        if now.site == to_site:
            return SwitchResult(self.provider, now.site, to_site, False, seconds=time.monotonic() - t0, status=now)
        origin_read = now.detail["origin"]
        for attempt in range(PRECONDITION_RETRIES + 1):
            new = point_at(config, self.layer.origins[to_site])
            try:
                reply = self.client.update_distribution(Id=self.distribution_id(), IfMatch=etag, DistributionConfig=new)
                break
            except self.client.exceptions.PreconditionFailed:
                config, etag = self.read()
                again = self._status(config, etag)
                log.info("%s: changed by someone else while we wrote (now ETag %s, origin %s); deciding again",
                         self.describe(), etag, again.detail["origin"])
                if again.site == to_site:   # another switcher did it: nothing left to write
                    return SwitchResult(self.provider, now.site, to_site, False, ("already moved by another writer",),
                                        time.monotonic() - t0, self.verify(to_site))
                if again.detail["origin"] != origin_read:
                    raise TrafficConflictError(
                        f"{self.describe()}: its live origin moved to {again.detail['origin']} while we switched to "
                        f"{to_site}; nothing overwritten: read the status again and decide") from None
                if attempt == PRECONDITION_RETRIES:
                    raise TrafficConflictError(f"{self.describe()} keeps changing under us (ETag {etag}): nothing "
                                               f"written; try again when its other writer is done") from None
        log.info("%s: default origin %s -> %s (ETag %s -> %s), waiting for Deployed", self.describe(), origin_read,
                 self.layer.origins[to_site], etag, reply.get("ETag"))
        self.wait_deployed()
        after = self.verify(to_site)
        return SwitchResult(self.provider, now.site, to_site, True,
                            (f"default origin {origin_read} -> {self.layer.origins[to_site]}",),
                            time.monotonic() - t0, after)

    def wait_deployed(self) -> None:
        timeout = self.layer.timeout_seconds
        wait_for_aws(self.client, "distribution_deployed", Id=self.distribution_id(),
                     poll_seconds=DEPLOYED_POLL_SECONDS, timeout=timeout,
                     failure=f"{self.describe()} is not Deployed after {timeout} s (the change is saved; edge "
                             f"locations still roll it out): check its status in CloudFront, then run the switch "
                             f"again (it will find the origin moved)")

    def what_is_live(self, status: LayerStatus) -> str:
        return f"origin {status.detail['origin']}"
