"""Route 53: the DNS record users resolve names the live site.

A simple record holds one value, the live site's target. A weighted record (an active-active setup, e.g.
50/50 AWS/GCP) is one record set per site, told apart by SetIdentifier; the live site has the weight and the
other sites 0, and "both" means more than one site has weight.

A switch is ONE change batch: for every record set it changes, DELETE with the exact values read (name, type,
TTL, values, weight, set identifier) and CREATE the new one. Route 53 applies a batch atomically and refuses
a DELETE that does not match the live record exactly, so a record changed by someone else between our read
and our write makes the batch fail (InvalidChangeBatch) instead of being clobbered; and because the batch is
atomic, no resolver ever sees a state between the two halves (F24: never zero active targets). Then it waits
for the change to be INSYNC on Route 53's name servers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from multicloud_dr.config import SITES, Route53Layer
from multicloud_dr.exceptions import InputError, TrafficConflictError, TrafficError
from multicloud_dr.traffic import BOTH, AwsTrafficLayer, LayerStatus, SwitchResult, check_site, wait_for_aws

log = logging.getLogger(__name__)

INSYNC_POLL_SECONDS = 5   # Route 53 usually propagates within 60 s; its own waiter polls every 30 s


def _name(value: str) -> str:
    """A DNS name as Route 53 returns it: lower case, with the final dot; '*' as Route 53 escapes it."""
    return value.strip().lower().rstrip(".").replace("*", "\\052") + "."


def _same_host(a: str, b: str) -> bool:
    return a.strip().lower().rstrip(".") == b.strip().lower().rstrip(".")


@dataclass(frozen=True)
class RecordState:
    """What the record's sets say, per site: its weight (simple records: 1 for the live site). The pure model
    that the switch plans on and the property test drives."""

    weights: tuple[tuple[str, int], ...]     # (site, weight) for every site that has a record set

    def active(self) -> tuple[str, ...]:
        return tuple(site for site, weight in self.weights if weight > 0)


def plan_weights(state: RecordState, to_site: str, active_weight: int) -> RecordState:
    """The record after a switch to `to_site`: it alone has weight. One atomic change batch takes the record
    from `state` to this, so there is no intermediate state to check."""
    return RecordState(tuple((site, active_weight if site == to_site else 0) for site in SITES))


class Route53Record(AwsTrafficLayer):
    provider = "route53"
    service = "route53"
    layer: Route53Layer

    def __init__(self, layer: Route53Layer, client: Any = None) -> None:
        super().__init__(layer, client)
        self._zone_id: str | None = None

    def describe(self) -> str:
        return f"Route 53 record {self.layer.record} ({self.layer.type})"

    # -- reading ----------------------------------------------------------------------------------
    @property
    def weighted(self) -> bool:
        return self.layer.set_identifiers is not None

    def zone_id(self) -> str:
        if self._zone_id is None:
            zone = self.layer.zone.strip()
            if "." not in zone:      # an id (Z0123...): a zone's name always has a dot
                self._zone_id = zone
            else:
                found = self.client.list_hosted_zones_by_name(DNSName=zone).get("HostedZones", [])
                matches = [z for z in found if _same_host(z["Name"], zone)]
                if not matches:
                    raise InputError(f"Route 53 has no hosted zone named {zone} for connection "
                                     f"{self.layer.conn_id}: check the topology's traffic zone (a name or a Z... id)")
                if len(matches) > 1:
                    ids = ", ".join(z["Id"].split("/")[-1] for z in matches)
                    raise InputError(f"Route 53 has {len(matches)} hosted zones named {zone} ({ids}, public and "
                                     f"private): give the zone's id as the topology's traffic zone")
                self._zone_id = matches[0]["Id"].split("/")[-1]
        return self._zone_id

    def record_sets(self) -> list[dict[str, Any]]:
        """Every record set with the layer's name and type, exactly as Route 53 returns them."""
        name, kind = _name(self.layer.record), self.layer.type
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"HostedZoneId": self.zone_id(), "StartRecordName": name, "StartRecordType": kind}
        while True:
            page = self.client.list_resource_record_sets(**kwargs)
            for rrset in page.get("ResourceRecordSets", []):
                if _name(rrset["Name"]) != name or rrset["Type"] != kind:
                    return found      # listed in order: past our name and type, nothing more of ours follows
                found.append(rrset)
            if not page.get("IsTruncated"):
                return found
            kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
            if page.get("NextRecordIdentifier"):
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    @staticmethod
    def value(rrset: dict[str, Any]) -> str:
        if "AliasTarget" in rrset:
            return rrset["AliasTarget"]["DNSName"]
        return ",".join(r["Value"] for r in rrset.get("ResourceRecords", []))

    def site_of_value(self, value: str) -> str | None:
        return next((site for site, target in self.layer.targets.items() if _same_host(target, value)), None)

    def read(self) -> tuple[RecordState, dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """(the weights per site, the record set per site, every set read)."""
        sets = self.record_sets()
        by_site: dict[str, dict[str, Any]] = {}
        if self.weighted:
            ids = {sid: site for site, sid in (self.layer.set_identifiers or {}).items()}
            for rrset in sets:
                if rrset.get("SetIdentifier") in ids:
                    by_site[ids[rrset["SetIdentifier"]]] = rrset
            weights = tuple((site, int(by_site[site].get("Weight", 0))) for site in SITES if site in by_site)
        else:
            plain = [s for s in sets if "SetIdentifier" not in s]
            if len(plain) > 1:    # cannot happen in Route 53; a guard against a misread listing
                raise TrafficError(f"{self.describe()}: {len(plain)} plain record sets; expected one")
            if plain:
                site = self.site_of_value(self.value(plain[0]))
                by_site[site or "other"] = plain[0]
            weights = tuple((site, 1) for site in by_site)
        return RecordState(weights), by_site, sets

    def status(self) -> LayerStatus:
        return self._status(*self.read())

    def _status(self, state: RecordState, by_site: dict[str, dict[str, Any]],
                sets: list[dict[str, Any]]) -> LayerStatus:
        active = tuple(s for s in state.active() if s in SITES)
        site = BOTH if len(active) > 1 else (active[0] if active else None)
        live = [self.value(by_site[s]) for s in state.active()]
        detail: dict[str, Any] = {"zone_id": self.zone_id(), "record": self.layer.record, "type": self.layer.type,
                                  "target": live[0] if len(live) == 1 else (live or None)}
        if self.weighted:
            detail["weights"] = dict(state.weights)
        # The exact sets read are the version: any change to them (a value, a TTL, a weight) is a conflict.
        version = json.dumps(sorted(sets, key=lambda s: s.get("SetIdentifier", "")), sort_keys=True, default=str)
        return LayerStatus(self.provider, site, version, active or tuple(s for s in state.active()), detail)

    # -- switching --------------------------------------------------------------------------------
    def changes(self, to_site: str, by_site: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The change batch: DELETE each set as read, CREATE it as it must be."""
        layer = self.layer
        changes: list[dict[str, Any]] = []
        if not self.weighted:
            for rrset in by_site.values():
                changes.append({"Action": "DELETE", "ResourceRecordSet": _as_written(rrset)})
            changes.append({"Action": "CREATE", "ResourceRecordSet": {
                "Name": layer.record.rstrip("."), "Type": layer.type, "TTL": layer.ttl,
                "ResourceRecords": [{"Value": layer.targets[to_site]}]}})
            return changes
        wanted = dict(plan_weights(RecordState(()), to_site, layer.active_weight).weights)
        for site in SITES:
            current = by_site.get(site)
            if current is not None and int(current.get("Weight", 0)) == wanted[site]:
                continue
            if current is not None:
                changes.append({"Action": "DELETE", "ResourceRecordSet": _as_written(current)})
                new = {**_as_written(current), "Weight": wanted[site]}
            else:
                new = {"Name": layer.record.rstrip("."), "Type": layer.type, "TTL": layer.ttl,
                       "SetIdentifier": (layer.set_identifiers or {})[site], "Weight": wanted[site],
                       "ResourceRecords": [{"Value": layer.targets[site]}]}
            changes.append({"Action": "CREATE", "ResourceRecordSet": new})
        return changes

    def switch(self, to_site: str, expect: LayerStatus) -> SwitchResult:
        check_site(to_site)
        t0 = time.monotonic()
        read = self.read()
        now = self._status(*read)
        if now.version != expect.version:
            raise TrafficConflictError(f"{self.describe()} changed since it was read (now on {now.site}, target "
                                       f"{now.detail.get('target')}): nothing written; read the status again")
        if now.site == to_site:
            return SwitchResult(self.provider, now.site, to_site, False, seconds=time.monotonic() - t0, status=now)
        changes = self.changes(to_site, read[1])
        comment = f"multicloud-dr: {self.layer.record} {now.site or 'none'} -> {to_site}"
        try:
            reply = self.client.change_resource_record_sets(
                HostedZoneId=self.zone_id(), ChangeBatch={"Comment": comment, "Changes": changes})
        except self.client.exceptions.InvalidChangeBatch as err:
            # A DELETE that no longer matches (someone changed the record meanwhile): nothing was applied.
            raise TrafficConflictError(f"{self.describe()} changed between our read and our write; Route 53 refused "
                                       f"the change batch, nothing was overwritten ({_message(err)}): read the "
                                       f"status again") from None
        change_id = reply["ChangeInfo"]["Id"].split("/")[-1]
        log.info("%s: change %s submitted (%s), waiting for INSYNC", self.describe(), change_id, comment)
        self.wait_insync(change_id)
        after = self.verify(to_site)
        steps = tuple(f"{c['Action'].lower()} {c['ResourceRecordSet'].get('SetIdentifier', '')} "
                      f"{self.value(c['ResourceRecordSet'])} weight {c['ResourceRecordSet'].get('Weight', '-')}"
                      .replace("  ", " ") for c in changes)
        return SwitchResult(self.provider, now.site, to_site, True, steps, time.monotonic() - t0, after)

    def wait_insync(self, change_id: str) -> None:
        timeout = self.layer.timeout_seconds
        wait_for_aws(self.client, "resource_record_sets_changed", Id=change_id, poll_seconds=INSYNC_POLL_SECONDS,
                     timeout=timeout,
                     failure=f"{self.describe()}: change {change_id} is not INSYNC after {timeout} s (the change is "
                             f"applied; its propagation is slow): check `aws route53 get-change --id {change_id}`, "
                             f"then run the switch again (it will find the record moved)")

    def what_is_live(self, status: LayerStatus) -> str:
        return f"target {status.detail.get('target')}"


def _as_written(rrset: dict[str, Any]) -> dict[str, Any]:
    """A record set as read, to DELETE it: every field exactly, the name without its final dot (Route 53
    takes both spellings; moto matches a DELETE only without the dot)."""
    return {**rrset, "Name": rrset["Name"].rstrip(".")}


def _message(err: Exception) -> str:
    return getattr(err, "response", {}).get("Error", {}).get("Message", str(err))
