"""The Cloudflare traffic layer against the lab's fake Cloudflare API, with real health.

Cloudflare's API cannot run here, so it is faked at its HTTP boundary (multicloud_dr.lab.fake_cloudflare,
in a thread) with the shapes of Cloudflare's API documentation. Health is not faked: each site's origin is a
small HTTP server in a thread answering /health with 200 or 500, and the fake's monitors probe it. The layer
reaches the fake through the connection layer (an http connection in AIRFLOW_CONN_*, its token in the
Authorization header), as it reaches Cloudflare. "Another writer" is a second client calling the fake's API.
"""

from __future__ import annotations

import itertools
import json
import logging

import pytest
import requests

from multicloud_dr.config import CloudflareLayer
from multicloud_dr.exceptions import InputError, TrafficConflictError, TrafficError
from multicloud_dr.lab import fake_cloudflare
from multicloud_dr.lab.fake_cloudflare import FakeCloudflareApi
from multicloud_dr.traffic.cloudflare import (
    DISABLE,
    ENABLE,
    SET_POOLS,
    WAIT_HEALTHY,
    CloudflareLoadBalancer,
    PoolsState,
    active_sites,
    apply_step,
    live_pool,
    plan_pool_switch,
)

TOKEN = "cf-secret-token-7d6b5c4e"
ACCOUNT = "4f1b9c3e8a7d6b5c4e3f2a1b0c9d8e7f"
ZONE = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
POOLS = {"primary": "17b5962d775c646f3f9725cbc7a53df4", "dr": "9290f38c5d07c2e2f4df57b1f61d4196"}
LB_ID = "699d98642c564d2e855e9661899b7252"
LB_NAME = "lb.petclinic.example.com"
CONN_ID = "cloudflare_test"


@pytest.fixture
def origins(health_app):
    return {"primary": health_app(200), "dr": health_app(200)}


@pytest.fixture
def fake(tmp_path, origins, monkeypatch):
    """The fake on the primary: primary's pool enabled and first and the fallback, dr's pool disabled (pilot light)."""
    monkeypatch.setattr(fake_cloudflare, "CACHE_SECONDS", 0.0)
    seed = {
        "accounts": {ACCOUNT: {
            "monitors": [{"id": f"m-{site}", "type": "http", "path": "/health", "port": origin.port,
                          "expected_codes": "200", "timeout": 2} for site, origin in origins.items()],
            "pools": [{"id": POOLS[site], "name": f"petclinic-{site}", "enabled": site == "primary",
                       "monitor": f"m-{site}", "origins": [{"name": f"app-{site}", "address": "127.0.0.1"}]}
                      for site in ("primary", "dr")],
        }},
        "zones": {ZONE: {"load_balancers": [{"id": LB_ID, "name": LB_NAME, "fallback_pool": POOLS["primary"],
                                             "default_pools": [POOLS["primary"], POOLS["dr"]]}]}},
    }
    api = FakeCloudflareApi(token=TOKEN, state_file=tmp_path / "cloudflare.json", seed=seed)
    url = api.start_in_thread()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(
        {"conn_type": "http", "host": url, "extra": {"Authorization": f"Bearer {TOKEN}", "timeout": 10}}))
    yield url
    api.shutdown()


def make_layer(load_balancer: str = LB_NAME, timeout: int = 5, conn_id: str = CONN_ID) -> CloudflareLoadBalancer:
    return CloudflareLoadBalancer(CloudflareLayer(provider="cloudflare", conn_id=conn_id, account_id=ACCOUNT,
                                                  zone_id=ZONE, load_balancer=load_balancer, pools=POOLS,
                                                  timeout_seconds=timeout), poll_seconds=0.05)


class Other:
    """Another writer (a person in the dashboard, another run): the fake's API, called directly."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        reply = requests.request(method, f"{self.url}/{path}", json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        assert reply.status_code == 200, reply.text
        return reply.json()["result"]

    def lb(self) -> dict:
        return self.call("GET", f"zones/{ZONE}/load_balancers/{LB_ID}")

    def pool(self, site: str) -> dict:
        return self.call("GET", f"accounts/{ACCOUNT}/load_balancers/pools/{POOLS[site]}")

    def patch_lb(self, body: dict) -> dict:
        return self.call("PATCH", f"zones/{ZONE}/load_balancers/{LB_ID}", body)


# -- against the fake -------------------------------------------------------------------------------------------


def test_status_reads_the_live_site_its_pools_and_their_health(fake):
    status = make_layer().status()
    assert (status.provider, status.site, status.active) == ("cloudflare", "primary", ("primary",))
    assert status.detail["load_balancer"] == LB_NAME and status.detail["load_balancer_id"] == LB_ID
    assert status.detail["pools"] == {"primary": {"id": POOLS["primary"], "enabled": True, "healthy": True},
                                      "dr": {"id": POOLS["dr"], "enabled": False, "healthy": None}}
    assert (status.detail["default_pools"], status.detail["fallback"]) == (["primary", "dr"], "primary")
    assert status.to_dict()["site"] == "primary"
    assert make_layer(load_balancer=LB_ID).status().version == status.version   # by id or by hostname alike
    assert make_layer(load_balancer="LB.petclinic.example.com.").status().site == "primary"


def test_switch_to_dr_moves_pools_order_and_fallback_then_a_second_switch_writes_nothing(fake):
    other, layer = Other(fake), make_layer()
    result = layer.switch("dr", layer.status())
    assert result.changed and (result.from_site, result.to_site) == ("primary", "dr")
    assert result.steps == ("enable pool dr", "wait until pool dr is healthy",
                            "default pools -> dr, primary; fallback -> dr", "disable pool primary")
    lb = other.lb()
    assert lb["default_pools"] == [POOLS["dr"], POOLS["primary"]] and lb["fallback_pool"] == POOLS["dr"]
    assert other.pool("dr")["enabled"] is True and other.pool("primary")["enabled"] is False
    assert result.status is not None and result.status.site == "dr" and result.status.active == ("dr",)
    assert result.status.detail["pools"]["dr"]["healthy"] is True

    before = (other.lb()["modified_on"], other.pool("dr")["modified_on"], other.pool("primary")["modified_on"])
    again = layer.switch("dr", layer.status())
    assert (again.changed, again.steps) == (False, ())
    assert (other.lb()["modified_on"], other.pool("dr")["modified_on"], other.pool("primary")["modified_on"]) == before
    assert layer.verify("dr").site == "dr"


def test_switch_back_to_primary(fake):
    other, layer = Other(fake), make_layer()
    layer.switch("dr", layer.status())
    back = layer.switch("primary", layer.status())
    assert back.changed and back.from_site == "dr" and back.status is not None and back.status.site == "primary"
    lb = other.lb()
    assert lb["default_pools"] == [POOLS["primary"], POOLS["dr"]] and lb["fallback_pool"] == POOLS["primary"]
    assert other.pool("primary")["enabled"] is True and other.pool("dr")["enabled"] is False


def test_a_stale_expect_is_refused_and_the_other_writers_change_survives(fake):
    other, layer = Other(fake), make_layer()
    seen = layer.status()
    theirs = other.patch_lb({"description": "maintenance: do not touch", "default_pools": [POOLS["primary"]]})
    with pytest.raises(TrafficConflictError, match="changed since"):
        layer.switch("dr", seen)
    assert other.lb() == theirs
    assert other.pool("dr")["enabled"] is False          # nothing written at all
    # A pool changed behind our back is a conflict too.
    seen = layer.status()
    other.call("PATCH", f"accounts/{ACCOUNT}/load_balancers/pools/{POOLS['dr']}", {"description": "mine"})
    with pytest.raises(TrafficConflictError):
        layer.switch("dr", seen)


def test_a_write_by_someone_else_during_the_switch_stops_it_before_it_overwrites(fake, monkeypatch):
    """Between our steps another writer changes the load balancer: the step that would write it re-reads it, sees
    modified_on moved, and stops; their change stays, and the primary still serves."""
    other, layer = Other(fake), make_layer()
    wait = layer.wait_healthy

    def wait_then_someone_writes(*args, **kwargs):
        wait(*args, **kwargs)
        other.patch_lb({"description": "changed during the switch"})

    monkeypatch.setattr(layer, "wait_healthy", wait_then_someone_writes)
    with pytest.raises(TrafficConflictError, match="Done before: enable pool dr; wait until pool dr is healthy"):
        layer.switch("dr", layer.status())
    lb = other.lb()
    assert lb["description"] == "changed during the switch" and lb["default_pools"][0] == POOLS["primary"]
    assert other.pool("primary")["enabled"] is True
    # Decided again from what is live (a new run: a new layer), the switch resumes and finishes.
    layer = make_layer()
    result = layer.switch("dr", layer.status())
    assert result.steps[0] == "wait until pool dr is healthy" and result.status and result.status.site == "dr"


def test_an_unhealthy_target_stops_the_switch_before_traffic_moves_and_a_retry_finishes(fake, origins):
    other = Other(fake)
    origins["dr"].status = 500
    layer = make_layer(timeout=1)
    with pytest.raises(TrafficError) as caught:
        layer.switch("dr", layer.status())
    message = str(caught.value)
    assert "pool dr (petclinic-dr" in message and POOLS["dr"] in message and "not healthy after 1 s" in message
    assert "HTTP 500" in message
    lb = other.lb()
    assert lb["default_pools"][0] == POOLS["primary"] and lb["fallback_pool"] == POOLS["primary"]
    assert other.pool("primary")["enabled"] is True
    assert make_layer().status().site == "primary"
    # The DR app comes up; the retry starts from what is live (dr's pool already enabled) and finishes.
    origins["dr"].status = 200
    result = layer.switch("dr", layer.status())
    assert "enable pool dr" not in result.steps and result.status and result.status.site == "dr"


def test_verify_fails_when_the_layer_is_not_on_the_site(fake):
    with pytest.raises(TrafficError, match=r"serves primary .* after the switch to dr"):
        make_layer().verify("dr")


def test_an_unknown_site_or_load_balancer_is_said_plainly(fake):
    with pytest.raises(InputError, match="no site 'drr'"):
        make_layer().switch("drr", make_layer().status())
    with pytest.raises(TrafficError, match=r"no load balancers named nowhere\.example\.com"):
        make_layer(load_balancer="nowhere.example.com").status()
    with pytest.raises(TrafficError, match=r"HTTP 404.*check the topology's cloudflare account_id"):
        make_layer(load_balancer="0" * 32).status()


@pytest.mark.parametrize("base", ["with /client/v4", "host only"])
def test_the_connection_may_name_the_api_or_only_its_host(fake, monkeypatch, base):
    host = fake if base == "with /client/v4" else fake.removesuffix("/client/v4")
    monkeypatch.setenv("AIRFLOW_CONN_CF_BASE", json.dumps(
        {"conn_type": "http", "host": host, "extra": {"Authorization": f"Bearer {TOKEN}"}}))
    assert make_layer(conn_id="cf_base").status().site == "primary"


def test_the_token_never_reaches_logs_or_errors(fake, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    layer = make_layer()
    layer.switch("dr", layer.status())
    layer.switch("primary", layer.status())
    wrong = "wrong-token-0123456789"
    monkeypatch.setenv("AIRFLOW_CONN_CF_WRONG", json.dumps(
        {"conn_type": "http", "host": fake, "extra": {"Authorization": f"Bearer {wrong}"}}))
    with pytest.raises(TrafficError) as caught:
        make_layer(conn_id="cf_wrong").status()
    message = str(caught.value)
    assert "HTTP 403" in message and "10000 Authentication error" in message
    assert "Load Balancers permissions" in message and "cf_wrong" in message
    monkeypatch.setenv("AIRFLOW_CONN_CF_NONE", json.dumps({"conn_type": "http", "host": fake}))
    with pytest.raises(TrafficError, match=r"HTTP 401.*9106.*check the API token"):
        make_layer(conn_id="cf_none").status()
    for secret in (TOKEN, wrong):
        assert secret not in caplog.text
        assert secret not in message and secret not in repr(caught.value)
    assert "Bearer" not in caplog.text


def test_an_unreachable_api_is_a_traffic_error_that_names_the_connection(fake, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CF_DOWN", json.dumps(
        {"conn_type": "http", "host": "http://127.0.0.1:9/client/v4", "extra": {"Authorization": f"Bearer {TOKEN}"}}))
    with pytest.raises(TrafficError, match=r"cannot reach the Cloudflare API.*cf_down") as caught:
        make_layer(conn_id="cf_down").status()
    assert TOKEN not in str(caught.value)


# -- the pure plan ----------------------------------------------------------------------------------------------


def states() -> list[PoolsState]:
    """Every state of two sites' pools (plus a pool not in the topology): enabled or not, any default_pools order
    and subset (non-empty, as Cloudflare requires), any fallback."""
    names = ("primary", "dr", "other")
    found = []
    for flags in itertools.product((True, False), repeat=3):
        for size in (1, 2, 3):
            for order in itertools.permutations(names, size):
                for fallback in names:
                    found.append(PoolsState(tuple(zip(names, flags, strict=True)), order, fallback))
    return found


def test_the_plan_from_primary_to_dr_is_the_documented_order():
    state = PoolsState.of({"primary": True, "dr": False}, ["primary", "dr"], "primary")
    plan = plan_pool_switch(state, "dr")
    assert [s.action for s in plan] == [ENABLE, WAIT_HEALTHY, SET_POOLS, DISABLE]
    assert plan[2].default_pools == ("dr", "primary") and plan[2].fallback == "dr" and plan[3].pool == "primary"
    end = state
    for step in plan:
        end = apply_step(end, step)
    assert end == PoolsState((("primary", False), ("dr", True)), ("dr", "primary"), "dr")
    assert plan_pool_switch(end, "dr") == []


def test_every_plan_keeps_an_active_pool_and_a_retry_from_any_step_reaches_the_target():
    """Exhaustive over the small state space: from any start with an active pool, every step keeps one active,
    the end serves the target with the other site's pool disabled, and re-planning after any prefix of the plan
    (a failure, then a retry) reaches the same end."""
    for start, target in itertools.product(states(), ("primary", "dr")):
        other = "dr" if target == "primary" else "primary"
        plan = plan_pool_switch(start, target)
        state = start
        for i, step in enumerate(plan):
            if step.action in (SET_POOLS, DISABLE):
                assert any(s.action == WAIT_HEALTHY for s in plan[:i]), (start, plan)   # healthy before it leads
            state = apply_step(state, step)
            if active_sites(start):
                assert active_sites(state), (start, target, plan[: i + 1])
            resumed = state
            for again in plan_pool_switch(resumed, target):
                resumed = apply_step(resumed, again)
            assert live_pool(resumed) == target and not resumed.is_enabled(other), (start, target, i)
        assert live_pool(state) == target and active_sites(state) >= {target}
        assert not state.is_enabled(other) and state.fallback == target and state.default_pools[0] == target
        assert state.is_enabled("other") == start.is_enabled("other")     # not the topology's: left alone
        assert plan_pool_switch(state, target) == []                      # a second run: nothing to do


def test_a_switch_the_other_way_disabling_our_target_stops_us_before_we_disable_the_old_pool(fake, monkeypatch):
    """F24, two switchers at once: after our load-balancer write, another run (switching back to primary) disables
    the dr pool. Our next step would disable primary; it re-reads every object first, sees the dr pool moved, and
    stops: the primary pool stays enabled, so the load balancer keeps an active pool."""
    other, layer = Other(fake), make_layer()
    patch = layer.api.patch

    def patch_then_the_other_run_disables_dr(path, body):
        reply = patch(path, body)
        if "default_pools" in body:
            other.call("PATCH", f"accounts/{ACCOUNT}/load_balancers/pools/{POOLS['dr']}", {"enabled": False})
        return reply

    monkeypatch.setattr(layer.api, "patch", patch_then_the_other_run_disables_dr)
    with pytest.raises(TrafficConflictError, match="pool dr was changed by someone else"):
        layer.switch("dr", layer.status())
    assert other.pool("primary")["enabled"] is True and other.pool("dr")["enabled"] is False
