"""Cloudflare: a load balancer whose first enabled pool in `default_pools` is the live site's pool.

With failover steering (`steering_policy` "off", Cloudflare's default) a load balancer sends traffic to the
first healthy, enabled pool of `default_pools`, and to `fallback_pool` when none is left. The live site here
is therefore the site whose pool comes first among the enabled pools of `default_pools` (or the enabled
fallback when no default pool is enabled). With other steering policies the order matters less, but the
switch also disables the old site's pool, which takes it out of every policy.

A switch is four kinds of step, planned by the pure `plan_pool_switch()` over a small model (`PoolsState`):

1. enable the target's pool (if it is disabled);
2. wait until Cloudflare's health checks report it healthy (at most `timeout_seconds`; if it is not healthy
   in time: TrafficError, and the load balancer and the old pool are untouched; the target pool stays
   enabled, which is harmless: behind the old pool in the order, it gets traffic only if the old pool fails);
3. one PATCH of the load balancer: `default_pools` = [target, the others in their order], `fallback_pool` =
   the target;
4. disable the old site's pool.

Every intermediate state has an active pool (F24: never zero active targets; see `active_sites()`), and a
plan made from any intermediate state (a retry after a failure at any step) reaches the target, because the
plan is computed from what is live, not from where a previous run stopped.

Cloudflare's load-balancing API has no conditional writes (no ETag / If-Match), so the compare-and-set is a
read-compare-write: `switch()` re-reads everything and refuses (TrafficConflictError) if it differs from the
`expect` status, and before each write the step re-reads the object it is about to write and checks that its
`modified_on` is still the one last seen. Another writer can still slip in during the one request between that
read and our write; the window is one round trip, not the whole switch.

The API token travels only in the http connection's `Authorization` header; it is never logged, and no error
message quotes a header or the session.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from multicloud_dr.config import SITES, CloudflareLayer
from multicloud_dr.exceptions import TrafficConflictError, TrafficError
from multicloud_dr.traffic import LayerStatus, SwitchResult, TrafficLayer, check_site

if TYPE_CHECKING:
    from multicloud_dr.connections.http import HttpSession

log = logging.getLogger(__name__)

API_PATH = "client/v4"                 # the connection's base URL may end with it, or be the API's host alone
REQUEST_TIMEOUT_SECONDS = 30           # per request, unless the connection's extras set a timeout
HEALTH_POLL_SECONDS = 5.0              # Cloudflare's monitors probe every 60 s by default (10 s at the least)
FAILOVER_POLICIES = ("off", "", None)  # steering by default_pools order
_ID = re.compile(r"^[0-9a-f]{32}$")    # Cloudflare's object ids: 32 hex digits
AUTH_CODES = {9103, 9106, 9109, 6003, 6103, 6111, 10000, 10001}


# -- the pure model: what the switch plans on and the property test drives ----------------------------------

ENABLE, WAIT_HEALTHY, SET_POOLS, DISABLE = "enable", "wait_healthy", "set_pools", "disable"
Action = Literal["enable", "wait_healthy", "set_pools", "disable"]


@dataclass(frozen=True)
class PoolsState:
    """The load balancer and its pools as far as traffic goes. A pool is named by its site ("primary", "dr")
    when it is one of the topology's pools, else by its Cloudflare id."""

    enabled: tuple[tuple[str, bool], ...]   # (pool, enabled) for every pool the load balancer or the topology names
    default_pools: tuple[str, ...]          # in Cloudflare's order
    fallback: str | None

    @classmethod
    def of(cls, enabled: dict[str, bool], default_pools: Iterable[str], fallback: str | None) -> PoolsState:
        """E.g. PoolsState.of({"primary": True, "dr": False}, ["primary", "dr"], "primary")."""
        return cls(tuple(enabled.items()), tuple(default_pools), fallback)

    def is_enabled(self, pool: str) -> bool:
        return dict(self.enabled).get(pool, False)

    def with_enabled(self, pool: str, value: bool) -> PoolsState:
        pools = dict(self.enabled)
        pools[pool] = value
        return replace(self, enabled=tuple(pools.items()))


@dataclass(frozen=True)
class Step:
    """One write (or the wait for health) of a switch."""

    action: Action
    pool: str                               # the pool it acts on (set_pools: the new first pool)
    default_pools: tuple[str, ...] = ()     # set_pools only
    fallback: str | None = None             # set_pools only

    def describe(self) -> str:
        if self.action == SET_POOLS:
            return f"default pools -> {', '.join(self.default_pools)}; fallback -> {self.fallback}"
        if self.action == WAIT_HEALTHY:
            return f"wait until pool {self.pool} is healthy"
        return f"{self.action} pool {self.pool}"


def active_sites(state: PoolsState) -> frozenset[str]:
    """The pools that may get traffic: the enabled pools of default_pools, else the fallback if it is enabled."""
    active = frozenset(p for p in state.default_pools if state.is_enabled(p))
    if active:
        return active
    if state.fallback is not None and state.is_enabled(state.fallback):
        return frozenset({state.fallback})
    return frozenset()


def live_pool(state: PoolsState) -> str | None:
    """The pool traffic goes to under failover steering: the first enabled default pool, else the enabled fallback."""
    first = next((p for p in state.default_pools if state.is_enabled(p)), None)
    if first is not None:
        return first
    return state.fallback if state.fallback is not None and state.is_enabled(state.fallback) else None


def apply_step(state: PoolsState, step: Step) -> PoolsState:
    """The state after `step` succeeded (waiting changes nothing)."""
    if step.action == ENABLE:
        return state.with_enabled(step.pool, True)
    if step.action == DISABLE:
        return state.with_enabled(step.pool, False)
    if step.action == SET_POOLS:
        return replace(state, default_pools=step.default_pools, fallback=step.fallback)
    return state


def plan_pool_switch(state: PoolsState, to_site: str, sites: Iterable[str] = SITES) -> list[Step]:
    """The steps that take `state` to: `to_site`'s pool enabled, first in default_pools and the fallback, and
    every other site's pool disabled. Empty when it is there already.

    The order keeps an active pool at every step: the target is enabled before anything points at it or away
    from the others, and is healthy (the wait) before it becomes first or the others are disabled; the old
    pools are disabled last, when the target is enabled and first. Pools that are not the topology's (other
    ids in default_pools) keep their place behind the target and are never disabled.
    """
    steps: list[Step] = []
    if not state.is_enabled(to_site):
        steps.append(Step(ENABLE, to_site))
    order = (to_site, *(p for p in state.default_pools if p != to_site))
    after: list[Step] = []
    if state.default_pools != order or state.fallback != to_site:
        after.append(Step(SET_POOLS, to_site, order, to_site))
    after += [Step(DISABLE, site) for site in sites if site != to_site and state.is_enabled(site)]
    if after:
        steps.append(Step(WAIT_HEALTHY, to_site))
    return steps + after


# -- the API ----------------------------------------------------------------------------------------------------


class CloudflareApi:
    """Requests to Cloudflare's v4 API through an http connection; every reply's envelope is checked, and an
    error becomes a TrafficError with Cloudflare's code and message and what to check."""

    def __init__(self, conn_id: str, session: HttpSession | None = None) -> None:
        self.conn_id = conn_id
        self._session = session

    @property
    def session(self) -> HttpSession:
        if self._session is None:
            from multicloud_dr.connections.http import http_session

            self._session = http_session(self.conn_id)
        return self._session

    def path(self, path: str) -> str:
        base = self.session.base_url.rstrip("/")
        return path if base.endswith("/" + API_PATH) else f"{API_PATH}/{path}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The `result` of one request; TrafficError for a refusal, an unreachable API or a reply that is not
        Cloudflare's envelope."""
        import requests

        session = self.session
        # The requests session itself, not HttpSession.request: that raises on an HTTP error status before the
        # envelope, which holds Cloudflare's error code and message, could be read.
        try:
            response = session.session.request(method, session.url(self.path(path)), json=body,
                                               timeout=session.timeout or REQUEST_TIMEOUT_SECONDS,
                                               allow_redirects=session.allow_redirects)
        except requests.RequestException as err:
            # The exception's text names the URL (no secret in it), never the headers.
            raise TrafficError(f"cannot reach the Cloudflare API for {method} /{path} ({type(err).__name__}): check "
                               f"connection {self.conn_id}'s host (https://api.cloudflare.com/client/v4) and the "
                               f"network") from None
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or "success" not in envelope:
            raise TrafficError(f"{method} /{path}: HTTP {response.status_code} without Cloudflare's JSON envelope: "
                               f"check that connection {self.conn_id} points at https://api.cloudflare.com/client/v4")
        if envelope.get("success") is not True or response.status_code >= 400:
            raise TrafficError(self.refusal(method, path, response.status_code, envelope.get("errors") or []))
        return envelope.get("result")

    def refusal(self, method: str, path: str, status: int, errors: list[dict[str, Any]]) -> str:
        said = "; ".join(f"{e.get('code')} {e.get('message')}" for e in errors if isinstance(e, dict)) or "no errors"
        codes = {e.get("code") for e in errors if isinstance(e, dict)}
        if status in (401, 403) or (status == 400 and codes & AUTH_CODES):
            hint = (f"check the API token in connection {self.conn_id} (its Authorization: Bearer header) and its "
                    f"Load Balancers permissions: Load Balancing: Monitors and Pools Read/Write on the account, "
                    f"Load Balancers Read/Write on the zone")
        elif status == 404:
            hint = "check the topology's cloudflare account_id, zone_id, load_balancer and pools"
        elif status == 429:
            hint = "Cloudflare is rate-limiting this token: wait a minute and run it again"
        elif status >= 500:
            hint = "Cloudflare had an internal error: run it again (each step resumes from what is live)"
        else:
            hint = "Cloudflare refused the request as invalid: check the load balancer and pools in its dashboard"
        return f"Cloudflare API {method} /{path}: HTTP {status}, error {said}: {hint}"

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("PATCH", path, body)


# -- the layer --------------------------------------------------------------------------------------------------


@dataclass
class LiveState:
    """What one read found: the load balancer, each pool it or the topology names (by site or id), the model."""

    lb: dict[str, Any]
    pools: dict[str, dict[str, Any]]
    model: PoolsState
    health: dict[str, bool | None] = field(default_factory=dict)


class CloudflareLoadBalancer(TrafficLayer):
    provider = "cloudflare"

    def __init__(self, layer: CloudflareLayer, session: HttpSession | None = None,
                 poll_seconds: float = HEALTH_POLL_SECONDS) -> None:
        self.layer = layer
        self.api = CloudflareApi(layer.conn_id, session)
        self.poll_seconds = poll_seconds
        self._lb_id = layer.load_balancer if _ID.match(layer.load_balancer) else None

    def describe(self) -> str:
        return f"Cloudflare load balancer {self.layer.load_balancer}"

    # -- reading ---------------------------------------------------------------------------------------------
    def key(self, pool_id: str) -> str:
        """A pool's name in the model: its site, or its id when it is not one of the topology's pools."""
        return next((site for site, pid in self.layer.pools.items() if pid == pool_id), pool_id)

    def pool_id(self, key: str) -> str:
        return self.layer.pools.get(key, key)

    def lb_path(self) -> str:
        return f"zones/{self.layer.zone_id}/load_balancers/{self.lb_id()}"

    def pool_path(self, key: str) -> str:
        return f"accounts/{self.layer.account_id}/load_balancers/pools/{self.pool_id(key)}"

    def lb_id(self) -> str:
        if self._lb_id is None:
            name = self.layer.load_balancer.lower().rstrip(".")
            found = [lb["id"] for lb in self.api.get(f"zones/{self.layer.zone_id}/load_balancers") or []
                     if str(lb.get("name", "")).lower().rstrip(".") == name]
            if len(found) != 1:
                raise TrafficError(f"zone {self.layer.zone_id} has {len(found) or 'no'} load balancers named "
                                   f"{self.layer.load_balancer}: check the topology's cloudflare load_balancer "
                                   f"(its hostname or its id) and zone_id")
            self._lb_id = found[0]
        return self._lb_id

    def read(self) -> LiveState:
        lb = self.api.get(self.lb_path())
        keys = [*SITES, *(self.key(p) for p in [*lb.get("default_pools", []), lb.get("fallback_pool")] if p)]
        pools = {key: self.api.get(self.pool_path(key)) for key in dict.fromkeys(keys)}
        return LiveState(lb, pools, self.model(lb, pools))

    def model(self, lb: dict[str, Any], pools: dict[str, dict[str, Any]]) -> PoolsState:
        fallback = lb.get("fallback_pool")
        return PoolsState(tuple((key, bool(pool.get("enabled"))) for key, pool in pools.items()),
                          tuple(self.key(p) for p in lb.get("default_pools", [])),
                          self.key(fallback) if fallback else None)

    def pool_health(self, key: str, pool: dict[str, Any]) -> tuple[bool | None, str]:
        """(healthy, what failed) from Pool Health Details; None: not health-checked (disabled, no monitor, no data)."""
        if not pool.get("enabled") or not pool.get("monitor"):
            return None, "not health-checked"
        result = self.api.get(f"{self.pool_path(key)}/health") or {}
        pops = result.get("pop_health") or {}
        if not pops:
            return None, "no health data yet"
        failing = []
        for pop, report in pops.items():
            if not report.get("healthy"):
                for origin in report.get("origins") or []:
                    for address, check in origin.items():
                        if not check.get("healthy"):
                            failing.append(f"{address} from {pop}: {check.get('failure_reason')} "
                                           f"(HTTP {check.get('response_code')})")
        healthy = all(report.get("healthy") for report in pops.values())
        return healthy, "; ".join(failing) or ("healthy" if healthy else "unhealthy")

    @staticmethod
    def version(live: LiveState) -> str:
        """Changes whenever the load balancer or any of its pools is written (health, which flickers, is left out)."""
        lb = live.lb
        return json.dumps({"lb": [lb.get("modified_on"), lb.get("default_pools"), lb.get("fallback_pool")],
                           "pools": {pool["id"]: [pool.get("enabled"), pool.get("modified_on")]
                                     for pool in live.pools.values()}}, sort_keys=True)

    def _status(self, live: LiveState) -> LayerStatus:
        state = live.model
        live_key = live_pool(state)
        site = live_key if live_key in SITES else None
        active = tuple(p for p in (*state.default_pools, state.fallback) if p in active_sites(state))
        detail = {
            "load_balancer": live.lb.get("name"),
            "load_balancer_id": live.lb.get("id"),
            "steering_policy": live.lb.get("steering_policy"),
            "pools": {key: {"id": pool.get("id"), "enabled": bool(pool.get("enabled")),
                            "healthy": live.health.get(key)} for key, pool in live.pools.items() if key in SITES},
            "default_pools": list(state.default_pools),
            "fallback": state.fallback,
        }
        return LayerStatus(self.provider, site, self.version(live), tuple(dict.fromkeys(active)), detail)

    def status(self) -> LayerStatus:
        live = self.read()
        for key in SITES:
            try:
                live.health[key] = self.pool_health(key, live.pools[key])[0]
            except TrafficError as err:   # the status is still worth having without health; "unknown" it is
                log.info("%s: health of pool %s unreadable: %s", self.describe(), key, err)
                live.health[key] = None
        return self._status(live)

    # -- switching -------------------------------------------------------------------------------------------
    def switch(self, to_site: str, expect: LayerStatus) -> SwitchResult:
        check_site(to_site)
        t0 = time.monotonic()
        live = self.read()
        now = self._status(live)
        if now.version != expect.version:
            raise TrafficConflictError(f"{self.describe()} or its pools changed since they were read (now on "
                                       f"{now.site}, default pools {', '.join(now.detail['default_pools'])}): nothing "
                                       f"written; read the status again")
        plan = plan_pool_switch(live.model, to_site)
        if not plan:
            return SwitchResult(self.provider, now.site, to_site, False, seconds=time.monotonic() - t0, status=now)
        if live.lb.get("steering_policy") not in FAILOVER_POLICIES:
            log.warning("%s steers by %s, not by the order of its default pools: the switch still disables the old "
                        "site's pool, which moves all traffic", self.describe(), live.lb.get("steering_policy"))
        done: list[str] = []
        for step in plan:
            self.run(step, live, done)
            done.append(step.describe())
            log.info("%s: %s", self.describe(), step.describe())
        after = self.verify(to_site)
        return SwitchResult(self.provider, now.site, to_site, True, tuple(done), time.monotonic() - t0, after)

    def run(self, step: Step, live: LiveState, done: list[str]) -> None:
        """Do one step against what `live` last saw, and bring `live` up to date with what Cloudflare answered."""
        if step.action == WAIT_HEALTHY:
            self.wait_healthy(step.pool, live.pools[step.pool], done)
            return
        # Every object of the layer, not only the one written, must be as we last saw it: disabling the old pool
        # is safe only while the target pool is still enabled. A second switcher that disabled the target (a
        # switch the other way, at the same time) would otherwise leave zero active pools (F24), and so would we.
        self.unchanged_since(live, done)
        if step.action in (ENABLE, DISABLE):
            live.pools[step.pool] = self.api.patch(self.pool_path(step.pool), {"enabled": step.action == ENABLE})
        else:
            live.lb = self.api.patch(self.lb_path(), {"default_pools": [self.pool_id(p) for p in step.default_pools],
                                                      "fallback_pool": self.pool_id(step.fallback or step.pool)})
        live.model = self.model(live.lb, live.pools)

    def unchanged_since(self, live: LiveState, done: list[str]) -> None:
        """Re-read the load balancer and its pools before a write: if any modified_on moved, someone else wrote
        it: stop. (Cloudflare has no If-Match: what is left is the window of one request.)"""
        objects = {self.describe(): (self.lb_path(), live.lb)}
        objects |= {f"pool {key}": (self.pool_path(key), pool) for key, pool in live.pools.items()}
        for what, (path, seen) in objects.items():
            current = self.api.get(path)
            if current.get("modified_on") != seen.get("modified_on"):
                raise TrafficConflictError(
                    f"{what} was changed by someone else during the switch (modified_on {seen.get('modified_on')} -> "
                    f"{current.get('modified_on')}); not overwritten. Done before: {'; '.join(done) or 'nothing'}. "
                    f"Read the status again and decide")

    def wait_healthy(self, key: str, pool: dict[str, Any], done: list[str]) -> None:
        """Until the pool reports healthy, at most timeout_seconds (a poll of Cloudflare's health data)."""
        name = f"pool {key} ({pool.get('name')}, id {pool.get('id')})"
        if not pool.get("monitor"):
            log.warning("%s has no monitor: Cloudflare counts it healthy without checking; not waiting", name)
            return
        timeout = self.layer.timeout_seconds
        deadline = time.monotonic() + timeout
        while True:
            healthy, why = self.pool_health(key, pool)
            if healthy:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TrafficError(f"Cloudflare {name} is not healthy after {timeout} s ({why}): nothing else "
                                   f"changed (done: {'; '.join(done) or 'nothing'}; the load balancer's order and "
                                   f"the old pool are as they were). Fix the site's origin (its health endpoint), "
                                   f"then run the switch again")
            time.sleep(min(self.poll_seconds, left))

    def what_is_live(self, status: LayerStatus) -> str:
        return (f"default pools {', '.join(status.detail['default_pools'])}, fallback {status.detail['fallback']}: "
                f"check the load balancer in Cloudflare's dashboard")
