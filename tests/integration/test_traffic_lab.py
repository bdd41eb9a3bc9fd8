"""`drctl traffic switch|status` on the lab: every layer of include/topology.yaml moves, read back from the APIs.

Route 53 and CloudFront are the lab's moto server; the Cloudflare API is the lab's fake of it at the HTTP
boundary (no Cloudflare server can run here), with the response shapes of Cloudflare's v4 API documentation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from multicloud_dr.config import load_topology
from multicloud_dr.lab import seed

DRCTL = str(Path(sys.executable).with_name("drctl"))
WRITES = {"ChangeResourceRecordSets", "UpdateDistribution"}


def drctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([DRCTL, *args], capture_output=True, text=True, timeout=300, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def route53_value() -> str:
    client = seed.aws_client("route53", os.environ["LAB_AWS_ENDPOINT_URL"])
    sets = client.list_resource_record_sets(HostedZoneId=os.environ["LAB_ROUTE53_ZONE_ID"])["ResourceRecordSets"]
    (record,) = [r for r in sets if r["Name"].rstrip(".") == seed.APP_RECORD and r["Type"] == "CNAME"]
    return record["ResourceRecords"][0]["Value"]


def cloudfront_origin() -> tuple[str, str, str]:
    """(the default behaviour's origin id, that origin's domain name, the config's ETag), from moto."""
    client = seed.aws_client("cloudfront", os.environ["LAB_AWS_ENDPOINT_URL"])
    reply = client.get_distribution_config(Id=os.environ["LAB_CLOUDFRONT_DISTRIBUTION_ID"])
    config = reply["DistributionConfig"]
    target = config["DefaultCacheBehavior"]["TargetOriginId"]
    domain = next(o["DomainName"] for o in config["Origins"]["Items"] if o["Id"] == target)
    return target, domain, reply["ETag"]


def cloudflare_lb() -> dict:
    layer = next(c for c in load_topology().traffic.layers if c.provider == "cloudflare")
    token = json.loads(os.environ["AIRFLOW_CONN_CLOUDFLARE"])["extra"]["Authorization"]
    base = os.environ["LAB_CLOUDFLARE_API_URL"]
    session = requests.Session()
    session.headers["Authorization"] = token
    lbs = session.get(f"{base}/zones/{layer.zone_id}/load_balancers", timeout=10).json()["result"]
    (lb,) = [x for x in lbs if x["name"] == layer.load_balancer]
    pools = {site: session.get(f"{base}/accounts/{layer.account_id}/load_balancers/pools/{pool}", timeout=10)
             .json()["result"] for site, pool in layer.pools.items()}
    site_of = {pool: site for site, pool in layer.pools.items()}
    return {"default_pools": [site_of[p] for p in lb["default_pools"]], "fallback": site_of[lb["fallback_pool"]],
            "enabled": {site: pool["enabled"] for site, pool in pools.items()}, "modified_on": lb["modified_on"]}


class MotoRecorder:
    """moto's request recorder: which API calls reached moto while it ran."""

    def __init__(self) -> None:
        self.base = os.environ["LAB_AWS_ENDPOINT_URL"] + "/moto-api/recorder"

    def __enter__(self) -> MotoRecorder:
        requests.post(f"{self.base}/reset-recording", timeout=10).raise_for_status()
        requests.post(f"{self.base}/start-recording", timeout=10).raise_for_status()
        return self

    def __exit__(self, *exc) -> None:
        requests.post(f"{self.base}/stop-recording", timeout=10).raise_for_status()

    def operations(self) -> list[str]:
        text = requests.get(f"{self.base}/download-recording", timeout=10).text
        found = []
        for line in filter(None, text.splitlines()):
            entry = json.loads(line)
            url = entry.get("url", "")
            if "rrset" in url and entry.get("method") == "POST":
                found.append("ChangeResourceRecordSets")
            elif "/distribution/" in url and entry.get("method") == "PUT":
                found.append("UpdateDistribution")
            else:
                found.append(f"{entry.get('method')} {url.split('?')[0]}")
        return found


@pytest.fixture
def on_primary(lab):
    drctl("traffic", "switch", "--to", "primary")
    yield
    drctl("traffic", "switch", "--to", "primary")


def test_switch_to_dr_moves_every_layer_and_a_second_switch_writes_nothing(on_primary):
    assert route53_value() == "app-primary.lab.localhost"
    assert cloudfront_origin()[:2] == ("primary", "app-primary.lab.localhost")
    assert json.loads(drctl("traffic", "status", "--json").stdout)["site"] == "primary"

    dry = json.loads(drctl("traffic", "switch", "--to", "dr", "--dry-run").stdout)
    assert [p["would_change"] for p in dry["layers"]] == [True, True, True]
    assert route53_value() == "app-primary.lab.localhost"           # a dry run moves nothing

    with MotoRecorder() as recorder:
        moved = json.loads(drctl("traffic", "switch", "--to", "dr").stdout)
    assert set(recorder.operations()) >= WRITES                      # the recorder sees our writes
    assert moved["changed"] and moved["health"]["status_code"] == 200    # the DR app answered before the move
    # Read back from the APIs themselves, not from our own report.
    assert route53_value() == "app-dr.lab.localhost"
    origin, domain, etag = cloudfront_origin()
    assert (origin, domain) == ("dr", "app-dr.lab.localhost")
    lb = cloudflare_lb()
    assert (lb["default_pools"][0], lb["fallback"], lb["enabled"]) == ("dr", "dr", {"primary": False, "dr": True})

    status = json.loads(drctl("traffic", "status", "--json").stdout)
    assert status["site"] == "dr"
    by_provider = {layer["provider"]: layer for layer in status["layers"]}
    assert by_provider["route53"]["target"] == "app-dr.lab.localhost" and by_provider["route53"]["zone_id"]
    assert by_provider["cloudfront"]["origin"] == "dr" and by_provider["cloudfront"]["etag"] == etag
    assert by_provider["cloudflare"]["load_balancer"] == "lb.petclinic.example.com"
    assert {layer["site"] for layer in status["layers"]} == {"dr"}

    with MotoRecorder() as recorder:
        again = json.loads(drctl("traffic", "switch", "--to", "dr").stdout)
    assert not again["changed"] and [r["changed"] for r in again["layers"]] == [False, False, False]
    assert WRITES.isdisjoint(recorder.operations())                  # nothing written to Route 53 or CloudFront
    assert cloudfront_origin()[2] == etag and cloudflare_lb()["modified_on"] == lb["modified_on"]

    back = json.loads(drctl("traffic", "switch", "--to", "primary").stdout)
    assert back["changed"] and route53_value() == "app-primary.lab.localhost"
    assert cloudfront_origin()[0] == "primary"
    lb = cloudflare_lb()
    assert (lb["default_pools"][0], lb["fallback"], lb["enabled"]["primary"]) == ("primary", "primary", True)


def test_bad_input_gets_one_line_and_exit_2(lab, tmp_path):
    bad = tmp_path / "topology.yaml"
    text = (Path(__file__).parents[2] / "include" / "topology.yaml").read_text()
    bad.write_text(text.replace("zone: petclinic.example.com", "zone: nowhere.example.net"))
    done = subprocess.run([DRCTL, "traffic", "status"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "MULTICLOUD_DR_TOPOLOGY": str(bad)})
    assert done.returncode == 2 and "no hosted zone named nowhere.example.net" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1

    done = drctl("traffic", "switch", "--to", "moon", check=False)
    assert done.returncode == 2 and "invalid choice" in done.stderr
