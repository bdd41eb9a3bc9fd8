"""Route 53 and CloudFront traffic layers: switch, no-op, compare-and-set (F24).

Against moto's in-process AWS (mock_aws) where moto behaves as AWS does. moto accepts what AWS refuses in
two places, so those paths use botocore's Stubber with the error replies AWS documents: a Route 53 DELETE
whose values no longer match the live record (AWS: InvalidChangeBatch; moto matches on name and type
only), and a CloudFront update with a stale IfMatch (AWS: PreconditionFailed; moto ignores IfMatch and
never changes the ETag).
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from multicloud_dr.config import CloudFrontLayer, Route53Layer
from multicloud_dr.exceptions import InputError, TrafficConflictError, TrafficError
from multicloud_dr.traffic.cloudfront import CloudFrontDistribution, live_origin, point_at
from multicloud_dr.traffic.route53 import Route53Record

ZONE = "shop.example.org"
RECORD = f"www.{ZONE}"
TARGETS = {"primary": "alb-primary.us-east-1.elb.amazonaws.com", "dr": "shop-dr.westeurope.cloudapp.azure.com"}


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    from multicloud_dr.lab.moto_server import patch

    patch()   # moto refuses a batch's CREATE of a value the record once held (see lab/moto_server.py)
    with mock_aws():
        yield


def count_calls(client, operation: str) -> list:
    calls: list = []
    client.meta.events.register(f"provide-client-params.*.{operation}", lambda params, **kw: calls.append(params))
    return calls


def make_zone(route53, records: list[dict]) -> str:
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="t")["HostedZone"]["Id"].split("/")[-1]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": r} for r in records]})
    return zone_id


def cname(value: str, **extra) -> dict:
    return {"Name": RECORD, "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": value}], **extra}


def live_values(route53, zone_id: str) -> dict:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {r.get("SetIdentifier", "-"): (r["ResourceRecords"][0]["Value"], r.get("Weight"))
            for r in sets if r["Type"] == "CNAME"}


def test_route53_simple_record_switches_and_a_second_switch_writes_nothing(aws):
    route53 = boto3.client("route53")
    zone_id = make_zone(route53, [cname(TARGETS["primary"])])
    layer = Route53Record(Route53Layer(provider="route53", zone=ZONE, record=RECORD, targets=TARGETS), route53)
    writes = count_calls(route53, "ChangeResourceRecordSets")

    before = layer.status()
    assert (before.site, before.detail["target"], before.detail["zone_id"]) == ("primary", TARGETS["primary"], zone_id)
    result = layer.switch("dr", expect=before)
    assert result.changed and result.status.site == "dr"
    assert live_values(route53, zone_id) == {"-": (TARGETS["dr"], None)}   # read from the API, not from us
    assert len(writes) == 1 and [c["Action"] for c in writes[0]["ChangeBatch"]["Changes"]] == ["DELETE", "CREATE"]

    again = layer.switch("dr", expect=layer.status())
    assert not again.changed and len(writes) == 1       # nothing written the second time
    layer.switch("primary", expect=layer.status())
    assert live_values(route53, zone_id) == {"-": (TARGETS["primary"], None)}


def test_route53_refuses_a_stale_read_and_keeps_the_other_writers_change(aws):
    route53 = boto3.client("route53")
    zone_id = make_zone(route53, [cname(TARGETS["primary"])])
    layer = Route53Record(Route53Layer(provider="route53", zone=zone_id, record=RECORD, targets=TARGETS), route53)
    read = layer.status()
    # Someone else points the record at a maintenance page after our read.
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": cname("maintenance.example.org")}]})
    with pytest.raises(TrafficConflictError, match="changed since it was read"):
        layer.switch("dr", expect=read)
    assert live_values(route53, zone_id) == {"-": ("maintenance.example.org", None)}


def test_route53_change_batch_refused_by_the_api_is_a_conflict_not_an_overwrite():
    """Stubber: AWS refuses a DELETE that does not match the live record (a change that landed between our
    read and our write) with InvalidChangeBatch; moto does not, so its reply is stubbed here."""
    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    layer = Route53Record(Route53Layer(provider="route53", zone="Z0123456789ABC", record=RECORD, targets=TARGETS),
                          route53)
    listing = {"ResourceRecordSets": [cname(TARGETS["primary"]) | {"Name": RECORD + "."}], "IsTruncated": False,
               "MaxItems": "100"}
    with Stubber(route53) as stub:
        for _ in range(2):   # status(), then switch()'s one re-read
            stub.add_response("list_resource_record_sets", listing)
        stub.add_client_error("change_resource_record_sets", service_error_code="InvalidChangeBatch",
                              service_message="Tried to delete resource record set but the values provided do not "
                                              "match the current values", http_status_code=400)
        read = layer.status()
        with pytest.raises(TrafficConflictError, match="nothing was overwritten"):
            layer.switch("dr", expect=read)
        stub.assert_no_pending_responses()


def test_route53_weighted_records_shift_the_weight_in_one_batch(aws):
    route53 = boto3.client("route53")
    ids = {"primary": "aws", "dr": "gcp"}
    zone_id = make_zone(route53, [cname(TARGETS[s], SetIdentifier=ids[s], Weight=50) for s in ("primary", "dr")])
    layer = Route53Record(Route53Layer(provider="route53", zone=ZONE, record=RECORD, targets=TARGETS,
                                       set_identifiers=ids), route53)
    before = layer.status()
    assert before.site == "both" and set(before.active) == {"primary", "dr"}
    writes = count_calls(route53, "ChangeResourceRecordSets")
    layer.switch("dr", expect=before)
    assert live_values(route53, zone_id) == {"aws": (TARGETS["primary"], 0), "gcp": (TARGETS["dr"], 100)}
    assert len(writes) == 1     # both weights in one atomic batch: never a moment with no weighted target
    layer.switch("primary", expect=layer.status())
    assert live_values(route53, zone_id) == {"aws": (TARGETS["primary"], 100), "gcp": (TARGETS["dr"], 0)}


def test_route53_unknown_zone_says_what_to_fix(aws):
    layer = Route53Record(Route53Layer(provider="route53", zone="nowhere.example", record=RECORD, targets=TARGETS),
                          boto3.client("route53"))
    with pytest.raises(InputError, match=r"no hosted zone named nowhere\.example"):
        layer.status()


# -- CloudFront ----------------------------------------------------------------------------------
def distribution_config(target: str = "primary", groups: list | None = None) -> dict:
    def origin(origin_id: str, domain: str) -> dict:
        return {"Id": origin_id, "DomainName": domain, "CustomOriginConfig": {
            "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}

    config = {"CallerReference": "t", "Comment": "shop", "Enabled": True,
              "Aliases": {"Quantity": 1, "Items": ["cdn.shop.example.org"]},
              "Origins": {"Quantity": 3, "Items": [origin("primary", TARGETS["primary"]), origin("dr", TARGETS["dr"]),
                                                   origin("maintenance", "maintenance.example.org")]},
              "DefaultCacheBehavior": {"TargetOriginId": target, "ViewerProtocolPolicy": "redirect-to-https",
                                       "MinTTL": 0, "ForwardedValues": {"QueryString": True,
                                                                         "Cookies": {"Forward": "all"}},
                                       "TrustedSigners": {"Enabled": False, "Quantity": 0}}}
    if groups:
        config["OriginGroups"] = {"Quantity": len(groups), "Items": groups}
    return config


CF_LAYER = {"provider": "cloudfront", "alias": "cdn.shop.example.org", "origins": {"primary": "primary", "dr": "dr"}}


def test_cloudfront_switches_the_default_origin_and_a_second_switch_writes_nothing(aws):
    cloudfront = boto3.client("cloudfront")
    dist_id = cloudfront.create_distribution(DistributionConfig=distribution_config())["Distribution"]["Id"]
    layer = CloudFrontDistribution(CloudFrontLayer(**CF_LAYER), cloudfront)
    updates = count_calls(cloudfront, "UpdateDistribution")
    before = layer.status()
    assert (before.site, before.detail["distribution_id"], before.detail["origin"]) == ("primary", dist_id, "primary")

    result = layer.switch("dr", expect=before)
    assert result.changed and len(updates) == 1 and updates[0]["IfMatch"] == before.version
    live = cloudfront.get_distribution_config(Id=dist_id)["DistributionConfig"]
    assert live["DefaultCacheBehavior"]["TargetOriginId"] == "dr"
    assert live["Comment"] == "shop" and live["Origins"]["Quantity"] == 3      # nothing else touched

    assert not layer.switch("dr", expect=layer.status()).changed and len(updates) == 1
    layer.switch("primary", expect=layer.status())
    assert cloudfront.get_distribution_config(Id=dist_id)["DistributionConfig"]["DefaultCacheBehavior"][
        "TargetOriginId"] == "primary"


def test_cloudfront_origin_group_reorders_its_members():
    """A default behaviour that targets an origin group: the live site is the group's first member, and a
    switch reorders the members, nothing else. (Pure functions: moto rejects a behaviour that targets a group.)"""
    group = {"Id": "web", "FailoverCriteria": {"StatusCodes": {"Quantity": 1, "Items": [503]}},
             "Members": {"Quantity": 2, "Items": [{"OriginId": "primary"}, {"OriginId": "dr"}]}}
    config = distribution_config("web", [group])
    assert live_origin(config) == ("primary", "web")
    moved = point_at(config, "dr")
    assert live_origin(moved) == ("dr", "web") and moved["DefaultCacheBehavior"]["TargetOriginId"] == "web"
    assert [m["OriginId"] for m in moved["OriginGroups"]["Items"][0]["Members"]["Items"]] == ["dr", "primary"]
    assert {k: v for k, v in moved.items() if k != "OriginGroups"} == {k: v for k, v in config.items()
                                                                       if k != "OriginGroups"}
    assert live_origin(config) == ("primary", "web")     # the config read is not changed in place
    with pytest.raises(InputError, match="no member 'maintenance'"):
        point_at(config, "maintenance")


def _stubbed_cloudfront():
    cloudfront = boto3.client("cloudfront", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    layer = CloudFrontDistribution(CloudFrontLayer(provider="cloudfront", distribution_id="E2EXAMPLE",
                                                   origins={"primary": "primary", "dr": "dr"}), cloudfront)
    return cloudfront, layer


def test_cloudfront_precondition_failed_re_reads_and_keeps_the_other_change():
    """Stubber: a stale IfMatch is refused by CloudFront with 412 PreconditionFailed (moto accepts it). The
    other writer changed the comment, not the origin: our switch is applied on top of their config."""
    cloudfront, layer = _stubbed_cloudfront()
    theirs = distribution_config() | {"Comment": "changed by someone else"}
    with Stubber(cloudfront) as stub:
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E1"})
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E1"})
        stub.add_client_error("update_distribution", service_error_code="PreconditionFailed", http_status_code=412)
        stub.add_response("get_distribution_config", {"DistributionConfig": theirs, "ETag": "E2"})
        mine = distribution_config("dr") | {"Comment": "changed by someone else"}
        stub.add_response("update_distribution", {"ETag": "E3", "Distribution": {
            "Id": "E2EXAMPLE", "ARN": "arn", "Status": "InProgress", "LastModifiedTime": "2026-12-02T00:00:00Z",
            "InProgressInvalidationBatches": 0, "DomainName": "d.cloudfront.net", "DistributionConfig": mine}},
            expected_params={"Id": "E2EXAMPLE", "IfMatch": "E2", "DistributionConfig": mine})
        stub.add_response("get_distribution", {"ETag": "E3", "Distribution": {
            "Id": "E2EXAMPLE", "ARN": "arn", "Status": "Deployed", "LastModifiedTime": "2026-12-02T00:00:00Z",
            "InProgressInvalidationBatches": 0, "DomainName": "d.cloudfront.net", "DistributionConfig": mine}},
            expected_params={"Id": "E2EXAMPLE"})
        stub.add_response("get_distribution_config", {"DistributionConfig": mine, "ETag": "E3"})
        read = layer.status()
        result = layer.switch("dr", expect=read)
        stub.assert_no_pending_responses()
    assert result.changed and result.status.site == "dr" and result.status.version == "E3"


def test_cloudfront_precondition_failed_with_the_origin_moved_stops_without_overwriting():
    """Stubber (as above): meanwhile someone pointed the distribution at a maintenance origin. We must not
    overwrite that: one update attempt only, then TrafficConflictError."""
    cloudfront, layer = _stubbed_cloudfront()
    with Stubber(cloudfront) as stub:
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E1"})
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E1"})
        stub.add_client_error("update_distribution", service_error_code="PreconditionFailed", http_status_code=412,
                              expected_params={"Id": "E2EXAMPLE", "IfMatch": "E1", "DistributionConfig": ANY})
        stub.add_response("get_distribution_config",
                          {"DistributionConfig": distribution_config("maintenance"), "ETag": "E2"})
        read = layer.status()
        with pytest.raises(TrafficConflictError, match="moved to maintenance"):
            layer.switch("dr", expect=read)
        stub.assert_no_pending_responses()    # no second update_distribution


def test_cloudfront_stale_expect_is_refused_before_any_write():
    cloudfront, layer = _stubbed_cloudfront()
    with Stubber(cloudfront) as stub:
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E1"})
        stub.add_response("get_distribution_config", {"DistributionConfig": distribution_config(), "ETag": "E9"})
        read = layer.status()
        with pytest.raises(TrafficConflictError, match="E1 -> E9"):
            layer.switch("dr", expect=read)
        stub.assert_no_pending_responses()


def test_route53_change_not_insync_in_time_says_what_to_check():
    """Stubber: Route 53 keeps answering PENDING (moto is INSYNC at once)."""
    route53 = boto3.client("route53", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    layer = Route53Record(Route53Layer(provider="route53", zone="Z0123456789ABC", record=RECORD, targets=TARGETS,
                                       timeout_seconds=1), route53)
    listing = {"ResourceRecordSets": [cname(TARGETS["primary"]) | {"Name": RECORD + "."}], "IsTruncated": False,
               "MaxItems": "100"}
    change = {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2026-12-02T00:00:00Z"}
    with Stubber(route53) as stub:
        for _ in range(2):   # status(), then switch()'s one re-read
            stub.add_response("list_resource_record_sets", listing)
        stub.add_response("change_resource_record_sets", {"ChangeInfo": change})
        stub.add_response("get_change", {"ChangeInfo": change}, expected_params={"Id": "C1"})
        with pytest.raises(TrafficError, match=r"change C1 is not INSYNC after 1 s .* get-change --id C1"):
            layer.switch("dr", expect=layer.status())
