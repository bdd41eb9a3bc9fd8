"""F24: a traffic switch never leaves a layer with zero active targets: whatever the starting state, the step
that fails (before its request reached the provider, or after, with the reply lost), the retries, the health
of the target, or a second switcher going the other way at the same time.

Property tests (hypothesis) over the layers' own pure plans: Cloudflare's plan_pool_switch/apply_step, Route
53's plan_weights, CloudFront's point_at, and the real switch_traffic orchestrator over model layers built on
them. The model of a Cloudflare write re-reads every object first, as CloudflareLoadBalancer.run does; the
test that checks only the object written shows why (it reaches zero).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multicloud_dr.config import SITES, Topology
from multicloud_dr.exceptions import TrafficConflictError, TrafficError
from multicloud_dr.traffic import LayerStatus, SwitchResult, TrafficLayer
from multicloud_dr.traffic.cloudflare import (
    DISABLE,
    ENABLE,
    SET_POOLS,
    WAIT_HEALTHY,
    PoolsState,
    Step,
    active_sites,
    apply_step,
    live_pool,
    plan_pool_switch,
)
from multicloud_dr.traffic.cloudfront import live_origin, point_at
from multicloud_dr.traffic.route53 import RecordState, plan_weights
from multicloud_dr.traffic.switch import switch_traffic

OUTCOMES = ("ok", "lost_request", "lost_reply")   # a request that never arrived; one applied whose reply was lost
OTHER = "0c7a9e4e1d2b3a4f5e6d7c8b9a0f1e2d"       # a pool of the load balancer that is not one of the topology's


@st.composite
def pool_states(draw) -> PoolsState:
    """A live load balancer: some order of pools, some enabled, with at least one active target."""
    pools = draw(st.sampled_from([list(SITES), [*SITES, OTHER]]))
    enabled = {p: draw(st.booleans()) for p in pools}
    default = draw(st.permutations(pools))[:draw(st.integers(1, len(pools)))]
    state = PoolsState.of(enabled, default, draw(st.sampled_from(pools)))
    if not active_sites(state):
        state = state.with_enabled(state.default_pools[0], True)
    return state


def arrived(state: PoolsState, target: str) -> bool:
    return (live_pool(state) == target and state.fallback == target
            and all(not state.is_enabled(s) for s in SITES if s != target))


# -- Cloudflare: one switcher, faults and retries --------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(state=pool_states(), target=st.sampled_from(SITES),
       faults=st.lists(st.sampled_from(OUTCOMES), max_size=12), unhealthy_waits=st.integers(0, 3))
def test_cloudflare_switch_with_faults_and_retries_never_has_zero_active_pools(state, target, faults, unhealthy_waits):
    faults = iter(faults)
    for _attempt in range(30):          # every attempt re-reads (the state) and plans again, as a retry does
        plan = plan_pool_switch(state, target)
        if not plan:
            break
        for step in plan:
            if step.action == WAIT_HEALTHY:
                if unhealthy_waits:        # the target is not healthy yet: this attempt stops, nothing else moves
                    unhealthy_waits -= 1
                    break
                continue
            outcome = next(faults, "ok")
            if outcome == "lost_request":
                break
            state = apply_step(state, step)
            assert active_sites(state), f"zero active pools after {step.describe()}"
            if outcome == "lost_reply":
                break
    assert arrived(state, target), state
    assert plan_pool_switch(state, target) == []     # a second run writes nothing


@settings(max_examples=300, deadline=None)
@given(state=pool_states(), target=st.sampled_from(SITES))
def test_cloudflare_plan_waits_for_health_before_any_pool_points_away_from_the_old_one(state, target):
    plan = plan_pool_switch(state, target)
    actions = [s.action for s in plan]
    if SET_POOLS in actions or DISABLE in actions:
        first_change = min(actions.index(a) for a in (SET_POOLS, DISABLE) if a in actions)
        assert WAIT_HEALTHY in actions[:first_change]
    if ENABLE in actions:
        assert actions.index(ENABLE) == 0


def _runs_with_zero(state: PoolsState, steps: list[Step]) -> bool:
    for step in steps:
        state = apply_step(state, step)
        if not active_sites(state):
            return True
    return False


def test_step_order_matters_the_planned_order_is_safe_and_disabling_first_is_not():
    """The property above can fail: of every order of the same steps, some reach zero active pools."""
    start = PoolsState.of({"primary": True, "dr": False}, ["primary"], "primary")
    plan = plan_pool_switch(start, "dr")
    assert [s.action for s in plan] == [ENABLE, WAIT_HEALTHY, SET_POOLS, DISABLE]
    assert not _runs_with_zero(start, plan)
    enable, _, set_pools, disable = plan
    for order in itertools.permutations(plan):
        # Disabling the old pool before the new one is enabled, or before it is in default_pools: zero active.
        early = order.index(disable) < max(order.index(enable), order.index(set_pools))
        assert _runs_with_zero(start, list(order)) == early, order


# -- Cloudflare: two switchers at once, going opposite ways ---------------------------------------------------
@dataclass
class Api:
    """The load balancer and pools with a version per object, as Cloudflare's modified_on."""

    state: PoolsState
    versions: dict[str, int] = field(default_factory=lambda: {"lb": 0, **{s: 0 for s in SITES}, OTHER: 0})

    def write(self, step: Step) -> None:
        self.state = apply_step(self.state, step)
        self.versions["lb" if step.action == SET_POOLS else step.pool] += 1


@dataclass
class Switcher:
    target: str
    check_all: bool                  # re-read every object before a write (the product) or only the one written
    plan: list[Step] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    done: bool = False

    def read(self, api: Api) -> None:
        self.seen = dict(api.versions)
        self.plan = [s for s in plan_pool_switch(api.state, self.target) if s.action != WAIT_HEALTHY]
        self.done = not self.plan

    def step(self, api: Api) -> None:
        if not self.plan:
            self.read(api)
            return
        step = self.plan[0]
        written = "lb" if step.action == SET_POOLS else step.pool
        checked = list(api.versions) if self.check_all else [written]
        if any(api.versions[k] != self.seen[k] for k in checked):
            self.read(api)                  # TrafficConflictError, and the retry reads again and plans again
            return
        api.write(step)
        self.seen[written] = api.versions[written]
        self.plan.pop(0)


def _race(state: PoolsState, schedule: list[bool], check_all: bool) -> Api:
    api = Api(state)
    a, b = Switcher("dr", check_all), Switcher("primary", check_all)
    a.read(api)
    b.read(api)
    for turn in schedule:
        (a if turn else b).step(api)
        assert active_sites(api.state), f"zero active pools: {api.state}"
    return api


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=pool_states(), schedule=st.lists(st.booleans(), min_size=1, max_size=30))
def test_two_switchers_going_opposite_ways_never_leave_zero_active_pools(state, schedule):
    _race(state, schedule, check_all=True)


def test_checking_only_the_object_written_would_reach_zero():
    """Why every write re-reads every object: A (to dr) disables primary after B (to primary) disabled dr."""
    start = PoolsState.of({"primary": True, "dr": True}, ["primary", "dr"], "primary")
    schedule = [False, True, True]     # B: disable dr; A: set pools (dr first); A: disable primary
    with pytest.raises(AssertionError, match="zero active pools"):
        _race(start, schedule, check_all=False)
    _race(start, schedule, check_all=True)


# -- Route 53 and CloudFront: one atomic write each -----------------------------------------------------------
@given(weights=st.lists(st.integers(0, 255), min_size=2, max_size=2), target=st.sampled_from(SITES),
       active_weight=st.integers(1, 255))
def test_route53_weighted_switch_always_leaves_the_target_weighted(weights, target, active_weight):
    after = plan_weights(RecordState(tuple(zip(SITES, weights, strict=True))), target, active_weight)
    assert after.active() == (target,)


@given(target_origin=st.sampled_from(["primary", "dr"]), live=st.sampled_from(["primary", "dr", "maintenance"]),
       grouped=st.booleans())
def test_cloudfront_switch_always_names_an_origin_of_the_distribution(target_origin, live, grouped):
    origins = [{"Id": i, "DomainName": f"{i}.example.org"} for i in ("primary", "dr", "maintenance")]
    config = {"Origins": {"Quantity": 3, "Items": origins}, "DefaultCacheBehavior": {"TargetOriginId": live}}
    if grouped:
        members = [{"OriginId": live}, *({"OriginId": o} for o in ("primary", "dr") if o != live)]
        config["OriginGroups"] = {"Quantity": 1, "Items": [{"Id": "g", "Members": {"Quantity": len(members),
                                                                                   "Items": members}}]}
        config["DefaultCacheBehavior"]["TargetOriginId"] = "g"
    after = point_at(config, target_origin)
    origin, _ = live_origin(after)
    assert origin == target_origin and origin in {o["Id"] for o in after["Origins"]["Items"]}


# -- the orchestrator over every layer, with faults ------------------------------------------------------------
class ModelLayer(TrafficLayer):
    """A layer whose provider is the pure model, with injected faults: the real switch_traffic drives it."""

    def __init__(self, name: str, state: PoolsState, faults, observer) -> None:
        self.provider = name
        self.api = Api(state)
        self.faults = faults
        self.observer = observer

    def status(self) -> LayerStatus:
        site = live_pool(self.api.state)
        return LayerStatus(self.provider, site if arrived(self.api.state, site or "") else f"partly {site}",
                           repr(sorted(self.api.versions.items())), tuple(active_sites(self.api.state)))

    def switch(self, to_site: str, expect: LayerStatus) -> SwitchResult:
        if self.status().version != expect.version:
            raise TrafficConflictError("changed since read")
        plan = [s for s in plan_pool_switch(self.api.state, to_site) if s.action != WAIT_HEALTHY]
        for step in plan:
            outcome = next(self.faults, "ok")
            if outcome == "lost_request":
                raise TrafficError("request lost")
            self.api.write(step)
            self.observer()
            if outcome == "lost_reply":
                raise TrafficError("reply lost")
        return SwitchResult(self.provider, expect.site, to_site, bool(plan), status=self.status())

    def verify(self, to_site: str) -> LayerStatus:
        return self.status()


@settings(max_examples=200, deadline=None)
@given(states=st.lists(pool_states(), min_size=1, max_size=3), target=st.sampled_from(SITES),
       faults=st.lists(st.sampled_from(OUTCOMES), max_size=10))
def test_switch_traffic_retried_after_any_fault_finishes_and_never_zeroes_a_layer(states, target, faults):
    topology = Topology.model_validate({"environment": "test", "databases": [], "targets": {
        "rpo_seconds": 1, "rto_seconds": 1}, "backup": {"storage_conn_id": "x", "location": "wasb://c/p"}})
    fault_iter = iter(faults)
    layers: list[ModelLayer] = []

    def every_layer_has_an_active_target() -> None:
        assert all(active_sites(layer.api.state) for layer in layers)

    layers += [ModelLayer(f"layer{i}", s, fault_iter, every_layer_has_an_active_target) for i, s in enumerate(states)]
    for _retry in range(len(faults) + 2):      # Airflow's retries: each one reads every layer again
        try:
            switch_traffic(topology, target, layers=layers, check_health=False)
            break
        except TrafficError:
            continue
    assert all(arrived(layer.api.state, target) for layer in layers)
    again = switch_traffic(topology, target, layers=layers, check_health=False)
    assert not again.changed       # a second run writes nothing
