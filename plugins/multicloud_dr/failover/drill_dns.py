"""A drill's DNS record: `<failover.drill.record_prefix><the live record>` in the live record's Route 53 zone (e.g.
drill.app.petclinic.example.com), pointed at the drill's target site. The live record is never touched by a
drill; the teardown deletes the drill record (with the exact values read, so a record someone else changed
meanwhile makes the delete fail instead of being removed blind)."""

from __future__ import annotations

from typing import Any

from multicloud_dr.config import Route53Layer, Topology
from multicloud_dr.exceptions import ConfigError


def _layer(topology: Topology):
    from multicloud_dr.traffic.route53 import Route53Record

    live = next((layer for layer in topology.traffic.layers if isinstance(layer, Route53Layer)), None)
    if live is None:
        raise ConfigError("a drill's DNS record lives in the Route 53 zone of a route53 traffic layer: the topology "
                          "has none (add one, or drill without traffic)")
    name = topology.failover.drill.record_prefix + live.record.rstrip(".")
    drill = live.model_copy(update={"record": name, "set_identifiers": None})
    return Route53Record(drill), drill


def _current(record, layer: Route53Layer) -> dict | None:
    from multicloud_dr.traffic.route53 import _name

    want = _name(layer.record)
    page = record.client.list_resource_record_sets(HostedZoneId=record.zone_id(), StartRecordName=want,
                                                   StartRecordType=layer.type, MaxItems="1")
    found = [r for r in page.get("ResourceRecordSets", []) if r["Name"] == want and r["Type"] == layer.type]
    return found[0] if found else None


def _site_of(layer: Route53Layer, value: str | None) -> str | None:
    from multicloud_dr.traffic.route53 import _same_host

    return next((site for site, target in layer.targets.items() if value and _same_host(target, value)), None)


def drill_record_status(topology: Topology) -> dict[str, Any]:
    record, layer = _layer(topology)
    current = _current(record, layer)
    value = current["ResourceRecords"][0]["Value"] if current and current.get("ResourceRecords") else None
    return {"provider": "route53", "record": layer.record, "value": value, "site": _site_of(layer, value),
            "ttl": current.get("TTL") if current else None}


def drill_record_upsert(topology: Topology, site: str) -> dict[str, Any]:
    record, layer = _layer(topology)
    before = drill_record_status(topology)
    if before["site"] == site:
        return {**before, "changed": False}
    change = {"Action": "UPSERT", "ResourceRecordSet": {
        "Name": layer.record, "Type": layer.type, "TTL": layer.ttl,
        "ResourceRecords": [{"Value": layer.targets[site]}]}}
    answer = record.client.change_resource_record_sets(
        HostedZoneId=record.zone_id(), ChangeBatch={"Comment": "multicloud-dr drill", "Changes": [change]})
    record.wait_insync(answer["ChangeInfo"]["Id"])
    return {**drill_record_status(topology), "changed": True}


def drill_record_delete(topology: Topology) -> dict[str, Any]:
    record, layer = _layer(topology)
    current = _current(record, layer)
    if current is None:
        return {"record": layer.record, "deleted": False, "detail": "no drill record: nothing to delete"}
    record.client.change_resource_record_sets(
        HostedZoneId=record.zone_id(), ChangeBatch={"Comment": "multicloud-dr drill teardown",
                                                    "Changes": [{"Action": "DELETE", "ResourceRecordSet": current}]})
    return {"record": layer.record, "deleted": True}
