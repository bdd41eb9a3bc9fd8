"""A fake of Cloudflare's v4 load-balancing API, at its HTTP boundary, for the lab and the tests.

No Cloudflare server can run here, so this plays one: the endpoints the traffic layer uses, with the
shapes of Cloudflare's API documentation (developers.cloudflare.com/api, Load Balancers, Pools, Monitors,
Pool Health Details):

- every reply is the envelope `{"success", "errors": [{"code", "message"}], "messages", "result"}`, lists
  also carry `result_info`;
- a bearer token is required (`Authorization: Bearer <token>`): none gives 401 (code 9106), one that is
  not `Bearer <token>` 400 (6003, with an `error_chain`), a wrong one 403 (10000 Authentication error);
- an unknown account, zone or object gives 404, a bad body 400 (1002 "...: validation failed", as
  Cloudflare's load-balancing validation answers);
- a load balancer's `default_pools` must be a non-empty list of existing pools and its `fallback_pool`
  an existing pool, a pool's `monitor` an existing monitor, and a pool needs at least one origin.

Health is real, not a flag: when a pool's health is read (Pool Health Details; the pool object itself has
no health field in Cloudflare's API), its monitor probes each enabled origin at
`<type>://<origin address>:<monitor port><monitor path>` (expected_codes such as "200" or "2xx", a short
timeout), and the pool is healthy when at least `minimum_origins` origins answer as expected. A probe
answers for about a second (CACHE_SECONDS) and is dropped when the pool is written. Disabled pools, and
pools without a monitor, are not health-checked (as in Cloudflare): their `pop_health` is empty.

Every write changes `modified_on` and is saved to a JSON state file (written to a temporary file, then
renamed over the old one), so a restart keeps what was written. Tests that need another writer or a
failure call this API directly with a second client; there is no test hook.

Not faked: creating and deleting objects (the lab seeds them: `seed`), rules, region/pop/country pools'
steering effects, the user-level (`/user/load_balancers`) endpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hmac
import http.client
import json
import logging
import os
import re
import signal
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

API_PREFIX = "/client/v4"
CACHE_SECONDS = 1.0             # how long one probe of a pool's origins answers for its health
PROBE_TIMEOUT_SECONDS = 2.0     # at most this per origin probe (a monitor's own timeout, if shorter)
POP = "Loopback, LAB"           # the one "data center" the fake's health checks run from
MAX_BODY_BYTES = 1 << 20
USER_AGENT = "Mozilla/5.0 (compatible; Cloudflare-Traffic-Manager/1.0; +https://www.cloudflare.com/; fake)"

# Cloudflare's error codes for what the fake refuses (the auth ones as Cloudflare sends them; 1002 is what
# its load-balancing API answers for a body that fails validation).
MISSING_AUTH = (9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
BAD_AUTH_HEADER = (6003, "Invalid request headers")
BAD_AUTH_FORMAT = (6111, "Invalid format for Authorization header")
AUTH_ERROR = (10000, "Authentication error")
NO_ROUTE = 7000
METHOD_NOT_ALLOWED = 10405
VALIDATION = 1002
NOT_FOUND = 1003
BAD_JSON = 9207
INTERNAL = 10001

STEERING_POLICIES = ("off", "geo", "random", "dynamic_latency", "proximity", "least_outstanding_requests",
                     "least_connections", "")

POOL_FIELDS = {"name", "enabled", "origins", "monitor", "minimum_origins", "description", "check_regions",
               "notification_email", "notification_filter", "latitude", "longitude", "load_shedding",
               "origin_steering", "monitor_group"}
LB_FIELDS = {"name", "default_pools", "fallback_pool", "proxied", "enabled", "steering_policy", "description",
             "ttl", "session_affinity", "session_affinity_ttl", "session_affinity_attributes", "region_pools",
             "pop_pools", "country_pools", "adaptive_routing", "location_strategy", "random_steering", "rules"}
READ_ONLY = {"id", "created_on", "modified_on", "disabled_at"}


class ApiError(Exception):
    """A refusal in Cloudflare's shape: an HTTP status and one or more (code, message) errors."""

    def __init__(self, status: int, code: int, message: str, chain: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.chain = status, code, message, chain or []

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            error["error_chain"] = [{"code": c, "message": m} for c, m in self.chain]
        return {"success": False, "errors": [error], "messages": [], "result": None}


def invalid(message: str) -> ApiError:
    return ApiError(400, VALIDATION, f"{message}: validation failed")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _later_than(previous: str | None) -> str:
    """Now, strictly after `previous`: two writes within one clock tick still change modified_on."""
    now = _now()
    if previous and now <= previous:
        then = datetime.strptime(previous, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        now = (then + timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return now


def _new_id() -> str:
    return uuid.uuid4().hex     # Cloudflare's ids are 32 hex digits


# -- the objects' defaults and validation ------------------------------------------------------------------


def _monitor(data: dict[str, Any]) -> dict[str, Any]:
    monitor = {"type": "http", "description": "", "method": "GET", "path": "/", "port": 0, "header": {},
               "timeout": 5, "retries": 2, "interval": 60, "expected_codes": "200", "expected_body": "",
               "follow_redirects": False, "allow_insecure": False, "probe_zone": "", **data}
    if monitor["type"] not in ("http", "https"):
        raise invalid(f"monitor type {monitor['type']!r} is not supported by the fake (http, https)")
    return monitor


def _check_origins(origins: Any) -> list[dict[str, Any]]:
    if not isinstance(origins, list) or not origins:
        raise invalid("the origin list length must be in range [1, 5]")
    checked = []
    for origin in origins:
        if not isinstance(origin, dict) or not isinstance(origin.get("address"), str) or not origin["address"]:
            raise invalid("every origin needs an address (an IP address or a hostname)")
        if "enabled" in origin and not isinstance(origin["enabled"], bool):
            raise invalid("origin enabled must be a boolean")
        weight = origin.get("weight", 1)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 <= weight <= 1:
            raise invalid("origin weight must be a number from 0 to 1")
        checked.append({"name": origin.get("name", origin["address"]), "enabled": True, "weight": 1, **origin})
    return checked


def _check_pool(pool: dict[str, Any], monitors: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(pool.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_-]+", pool["name"]):
        raise invalid("pool name is required: only alphanumeric characters, hyphens and underscores")
    if not isinstance(pool.get("enabled"), bool):
        raise invalid("pool enabled must be a boolean")
    pool["origins"] = _check_origins(pool.get("origins"))
    minimum = pool.get("minimum_origins")
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
        raise invalid("minimum_origins must be a non-negative integer")
    if pool.get("monitor") not in (None, "") and pool["monitor"] not in monitors:
        raise invalid(f"monitor {pool['monitor']!r} does not exist")
    return pool


def _check_lb(lb: dict[str, Any], pool_exists: Any, others: list[dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(lb.get("name"), str) or not lb["name"]:
        raise invalid("load balancer name (its hostname) is required")
    default_pools = lb.get("default_pools")
    if not isinstance(default_pools, list) or not default_pools:
        raise invalid("default_pools must be a non-empty list of pool ids")
    for pool_id in default_pools:
        if not isinstance(pool_id, str) or not pool_exists(pool_id):
            raise invalid(f"default_pools: pool {pool_id!r} does not exist")
    if len(set(default_pools)) != len(default_pools):
        raise invalid("default_pools must not name a pool twice")
    fallback = lb.get("fallback_pool")
    if not isinstance(fallback, str) or not pool_exists(fallback):
        raise invalid(f"fallback_pool: pool {fallback!r} does not exist")
    if lb.get("steering_policy") not in STEERING_POLICIES:
        raise invalid(f"steering_policy must be one of {', '.join(p for p in STEERING_POLICIES if p)}")
    for flag in ("proxied", "enabled"):
        if not isinstance(lb.get(flag), bool):
            raise invalid(f"{flag} must be a boolean")
    name = lb["name"].lower().rstrip(".")
    if any(o["name"].lower().rstrip(".") == name for o in others):
        raise invalid(f"a load balancer named {lb['name']} already exists in this zone")
    return lb


def _pool_defaults(data: dict[str, Any]) -> dict[str, Any]:
    return {"description": "", "enabled": True, "minimum_origins": 1, "monitor": None, **data}


def _lb_defaults(data: dict[str, Any]) -> dict[str, Any]:
    return {"description": "", "ttl": 30, "proxied": True, "enabled": True, "steering_policy": "off",
            "session_affinity": "none", "region_pools": {}, "pop_pools": {}, "country_pools": {}, **data}


def _only(body: dict[str, Any], allowed: set[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(body) - allowed - READ_ONLY)
    if unknown:
        raise invalid(f"{what} has no field {', '.join(unknown)}")
    return {k: v for k, v in body.items() if k not in READ_ONLY}


def _seeded(objects: dict[str, Any], data: dict[str, Any], name_field: str) -> bool:
    """Whether a seed object exists already: by its id, or (a seed object without an id) by its name, so that
    a restart with the same seed neither duplicates objects nor undoes what was written since."""
    if data.get("id"):
        return data["id"] in objects
    return any(o.get(name_field) == data.get(name_field) for o in objects.values())


# -- health -------------------------------------------------------------------------------------------------


def _expected(codes: str, status: int) -> bool:
    """Cloudflare's expected_codes: one code ("200") or a class ("2xx")."""
    codes = str(codes).strip().lower()
    if codes.endswith("xx") and len(codes) == 3:
        return str(status)[0] == codes[0]
    return str(status) == codes


def probe(origin: dict[str, Any], monitor: dict[str, Any]) -> dict[str, Any]:
    """One health check of one origin, reported as Cloudflare's pool health reports an origin."""
    scheme = monitor.get("type", "http")
    port = int(monitor.get("port") or origin.get("port") or (443 if scheme == "https" else 80))
    address = origin["address"]
    host = f"[{address}]" if ":" in address else address
    path = monitor.get("path") or "/"
    timeout = min(float(monitor.get("timeout") or PROBE_TIMEOUT_SECONDS), PROBE_TIMEOUT_SECONDS)
    started = time.monotonic()
    if scheme == "https":
        import ssl

        context = ssl.create_default_context()
        if monitor.get("allow_insecure"):
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host.strip("[]"), port, timeout=timeout,
                                                                      context=context)
    else:
        conn = http.client.HTTPConnection(host.strip("[]"), port, timeout=timeout)
    try:
        conn.request(monitor.get("method") or "GET", path, headers={"User-Agent": USER_AGENT})
        response = conn.getresponse()
        body = response.read(65536).decode("utf-8", "replace")
        code = response.status
    except (OSError, http.client.HTTPException) as err:
        reason = "TCP connection failed" if isinstance(err, ConnectionError) else (
            "HTTP timeout occurred" if isinstance(err, TimeoutError) else f"Request failed: {type(err).__name__}")
        return {"healthy": False, "rtt": "0ms", "failure_reason": reason, "response_code": 0}
    finally:
        conn.close()
    rtt = f"{(time.monotonic() - started) * 1000:.1f}ms"
    if not _expected(monitor.get("expected_codes", "200"), code):
        return {"healthy": False, "rtt": rtt, "failure_reason": "HTTP response code does not match expected codes",
                "response_code": code}
    if monitor.get("expected_body") and monitor["expected_body"] not in body:
        return {"healthy": False, "rtt": rtt, "failure_reason": "Response body does not match expected body",
                "response_code": code}
    return {"healthy": True, "rtt": rtt, "failure_reason": "No failures", "response_code": code}


# -- the API --------------------------------------------------------------------------------------------------


class FakeCloudflareApi:
    """The fake's state and its request handling; `serve_forever` / `start_in_thread` put it on HTTP.

    `seed`: {"accounts": {account_id: {"monitors": [...], "pools": [...]}}, "zones": {zone_id:
    {"load_balancers": [...]}}}; each object is created when no object with its id exists yet (an object
    without an id gets a new one), so a restart with the same seed keeps what was written since.
    """

    def __init__(self, *, token: str, state_file: Path, seed: dict | None = None) -> None:
        if not token:
            raise ValueError("the fake Cloudflare API needs a token (clients send it as Authorization: Bearer ...)")
        self._token = token
        self.state_file = Path(state_file)
        self._lock = threading.RLock()
        self._health_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.state: dict[str, Any] = {"accounts": {}, "zones": {}}
        if self.state_file.is_file():
            self.state = json.loads(self.state_file.read_text(encoding="utf-8"))
            self.state.setdefault("accounts", {})
            self.state.setdefault("zones", {})
        if seed:
            self._apply_seed(seed)
        self._save()

    def __repr__(self) -> str:     # never the token
        return f"FakeCloudflareApi(state_file={str(self.state_file)!r})"

    # -- state --------------------------------------------------------------------------------------------
    def _apply_seed(self, seed: dict[str, Any]) -> None:
        for account_id, objects in (seed.get("accounts") or {}).items():
            account = self._account(account_id, create=True)
            for data in objects.get("monitors") or []:
                if not _seeded(account["monitors"], data, "description"):
                    fields = {k: v for k, v in data.items() if k not in READ_ONLY}
                    monitor = self._stamp(_monitor(fields), data.get("id"))
                    account["monitors"][monitor["id"]] = monitor
            for data in objects.get("pools") or []:
                if not _seeded(account["pools"], data, "name"):
                    pool = _check_pool(_pool_defaults(_only(data, POOL_FIELDS, "pool")), account["monitors"])
                    self._stamp(pool, data.get("id"))
                    if not pool["enabled"]:
                        pool["disabled_at"] = pool["modified_on"]
                    account["pools"][pool["id"]] = pool
        for zone_id, objects in (seed.get("zones") or {}).items():
            zone = self._zone(zone_id, create=True)
            for data in objects.get("load_balancers") or []:
                if not _seeded(zone["load_balancers"], data, "name"):
                    lb = _check_lb(_lb_defaults(_only(data, LB_FIELDS, "load balancer")), self._pool_exists,
                                   list(zone["load_balancers"].values()))
                    self._stamp(lb, data.get("id"))
                    zone["load_balancers"][lb["id"]] = lb

    @staticmethod
    def _stamp(obj: dict[str, Any], obj_id: str | None) -> dict[str, Any]:
        now = _now()
        obj.update(id=obj_id or _new_id(), created_on=now, modified_on=now)
        return obj

    def _save(self) -> None:
        """Write the state atomically: a temporary file in the same directory, fsync'ed, renamed over the old."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.state_file.name}.", dir=self.state_file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.state, out, indent=1, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.state_file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _account(self, account_id: str, create: bool = False) -> dict[str, Any]:
        accounts = self.state["accounts"]
        if account_id not in accounts:
            if not create:
                raise ApiError(404, NOT_FOUND, f"account {account_id} not found")
            accounts[account_id] = {"monitors": {}, "pools": {}}
        return accounts[account_id]

    def _zone(self, zone_id: str, create: bool = False) -> dict[str, Any]:
        zones = self.state["zones"]
        if zone_id not in zones:
            if not create:
                raise ApiError(404, NOT_FOUND, f"zone {zone_id} not found")
            zones[zone_id] = {"load_balancers": {}}
        return zones[zone_id]

    def _pool_exists(self, pool_id: str) -> bool:
        # A zone's load balancer may use the pools of the account the zone belongs to; the fake does not model
        # which account owns a zone, so any account's pool will do.
        return any(pool_id in account["pools"] for account in self.state["accounts"].values())

    def _find(self, objects: dict[str, Any], obj_id: str, what: str) -> dict[str, Any]:
        if obj_id not in objects:
            raise ApiError(404, NOT_FOUND, f"{what} {obj_id} not found")
        return objects[obj_id]

    # -- HTTP-independent request handling --------------------------------------------------------------
    def respond(self, method: str, path: str, authorization: str | None, body: bytes = b"") -> tuple[int, dict]:
        """(HTTP status, the envelope) for one request; what the HTTP handler serves."""
        try:
            self._authenticate(authorization)
            return 200, {"success": True, "errors": [], "messages": [], **self._route(method, path, body)}
        except ApiError as err:
            return err.status, err.envelope()
        except Exception:   # the request boundary: a bug in the fake answers 500, in the envelope, and is logged
            log.exception("fake cloudflare: %s %s failed", method, urlsplit(path).path)
            return 500, ApiError(500, INTERNAL, "Internal server error").envelope()

    def _authenticate(self, authorization: str | None) -> None:
        if not authorization:
            raise ApiError(401, *MISSING_AUTH)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(400, *BAD_AUTH_HEADER, chain=[BAD_AUTH_FORMAT])
        if not hmac.compare_digest(token.strip().encode(), self._token.encode()):
            raise ApiError(403, *AUTH_ERROR)

    def _route(self, method: str, path: str, raw: bytes) -> dict[str, Any]:
        parts = urlsplit(path).path.rstrip("/").split("/")
        if parts[:3] != ["", "client", "v4"]:
            raise ApiError(400, NO_ROUTE, "No route for that URI")
        route = parts[3:]
        body = self._body(raw) if method in ("PATCH", "PUT") else {}
        with self._lock:
            match route:
                case ["accounts", account_id, "load_balancers", "pools"]:
                    return self._pools(method, account_id, body)
                case ["accounts", account_id, "load_balancers", "pools", pool_id]:
                    return self._pool(method, account_id, pool_id, body)
                case ["accounts", account_id, "load_balancers", "pools", pool_id, "health"]:
                    self._allow(method, "GET")
                    pool = copy.deepcopy(self._find(self._account(account_id)["pools"], pool_id, "pool"))
                    monitor = copy.deepcopy(self._account(account_id)["monitors"].get(pool.get("monitor") or ""))
                case ["accounts", account_id, "load_balancers", "monitors"]:
                    self._allow(method, "GET")
                    return self._listing(self._account(account_id)["monitors"])
                case ["accounts", account_id, "load_balancers", "monitors", monitor_id]:
                    self._allow(method, "GET")
                    return {"result": self._find(self._account(account_id)["monitors"], monitor_id, "monitor")}
                case ["zones", zone_id, "load_balancers"]:
                    self._allow(method, "GET")
                    return self._listing(self._zone(zone_id)["load_balancers"])
                case ["zones", zone_id, "load_balancers", lb_id]:
                    return self._load_balancer(method, zone_id, lb_id, body)
                case _:
                    raise ApiError(400, NO_ROUTE, "No route for that URI")
        # Health is probed outside the lock: a slow origin must not hold up every other request.
        return {"result": self.pool_health(pool, monitor)}

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(405, METHOD_NOT_ALLOWED, f"Method {method} not allowed here (allowed: {', '.join(allowed)})")

    @staticmethod
    def _body(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, BAD_JSON, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, BAD_JSON, "Request body must be a JSON object")
        return body

    @staticmethod
    def _listing(objects: dict[str, Any]) -> dict[str, Any]:
        items = list(objects.values())
        return {"result": items, "result_info": {"page": 1, "per_page": max(len(items), 20), "count": len(items),
                                                 "total_count": len(items)}}

    def _write(self, obj: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Replace `obj`'s fields with `new`'s in place, with a new modified_on, and save."""
        was_enabled = obj.get("enabled")
        new = {**new, "id": obj["id"], "created_on": obj["created_on"], "modified_on": _later_than(obj["modified_on"])}
        if "origins" in new:    # a pool: disabled_at shows only while it is disabled
            new.pop("disabled_at", None)
            if not new["enabled"]:
                kept = obj.get("disabled_at") if was_enabled is False else None
                new["disabled_at"] = kept or new["modified_on"]
            self._health_cache.pop(obj["id"], None)
        obj.clear()
        obj.update(new)
        self._save()
        return obj

    def _pools(self, method: str, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._allow(method, "GET", "PATCH")
        pools = self._account(account_id)["pools"]
        if method == "GET":
            return self._listing(pools)
        # "Patch Pools": set notification_email on every pool of the account.
        if set(body) != {"notification_email"} or not isinstance(body["notification_email"], str):
            raise invalid("patching all pools takes only notification_email")
        for pool in pools.values():
            self._write(pool, {**pool, "notification_email": body["notification_email"]})
        return self._listing(pools)

    def _pool(self, method: str, account_id: str, pool_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._allow(method, "GET", "PATCH", "PUT")
        account = self._account(account_id)
        pool = self._find(account["pools"], pool_id, "pool")
        if method == "GET":
            return {"result": pool}
        changes = _only(body, POOL_FIELDS, "a pool")
        if method == "PUT":
            if "name" not in changes or "origins" not in changes:
                raise invalid("name and origins are required")
            new = _pool_defaults(changes)
        else:
            new = {**pool, **changes}
        return {"result": self._write(pool, _check_pool(new, account["monitors"]))}

    def _load_balancer(self, method: str, zone_id: str, lb_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._allow(method, "GET", "PATCH", "PUT")
        lbs = self._zone(zone_id)["load_balancers"]
        lb = self._find(lbs, lb_id, "load balancer")
        if method == "GET":
            return {"result": lb}
        changes = _only(body, LB_FIELDS, "a load balancer")
        if method == "PUT":
            missing = [k for k in ("name", "default_pools", "fallback_pool") if k not in changes]
            if missing:
                raise invalid(f"{', '.join(missing)} required")
            new = _lb_defaults(changes)
        else:
            new = {**lb, **changes}
        others = [o for o in lbs.values() if o["id"] != lb_id]
        return {"result": self._write(lb, _check_lb(new, self._pool_exists, others))}

    def pool_health(self, pool: dict[str, Any], monitor: dict[str, Any] | None) -> dict[str, Any]:
        """Pool Health Details: probe the pool's enabled origins now (or answer from a probe under a second old)."""
        if not pool["enabled"] or not monitor:
            return {"pool_id": pool["id"], "pop_health": {}}   # no health checks run on it
        key = f"{pool['modified_on']}|{monitor['modified_on']}"
        with self._lock:
            cached = self._health_cache.get(pool["id"])
        if cached and cached[1].get("key") == key and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]["result"]
        origins = [o for o in pool["origins"] if o.get("enabled", True)]
        reports = [(o["address"], probe(o, monitor)) for o in origins]
        up = sum(1 for _, report in reports if report["healthy"])
        healthy = bool(origins) and up >= max(pool["minimum_origins"], 1)
        result = {"pool_id": pool["id"],
                  "pop_health": {POP: {"healthy": healthy, "origins": [{a: r} for a, r in reports]}}}
        with self._lock:
            self._health_cache[pool["id"]] = (time.monotonic(), {"key": key, "result": result})
        return result

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _make_server(self, host: str, port: int) -> ThreadingHTTPServer:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"         # keep-alive, as clients of the real API expect
            server_version = "fake-cloudflare"
            disable_nagle_algorithm = True        # headers and body in separate writes: no 40 ms delayed-ACK stall

            def _serve(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    status, envelope = 400, ApiError(400, BAD_JSON, "Content-Length is not 0.."
                                                     f"{MAX_BODY_BYTES}").envelope()
                    self.close_connection = True   # the body, if any, was not read
                else:
                    raw = self.rfile.read(length) if length else b""
                    status, envelope = api.respond(self.command, self.path, self.headers.get("Authorization"), raw)
                data = json.dumps(envelope).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:   # the request line only, never headers
                log.debug("fake cloudflare: %s", format % args)

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server

    def serve_forever(self, host: str, port: int) -> None:
        """Serve on host:port until shutdown() (the lab runs this in its own process)."""
        self._server = self._make_server(host, port)
        log.info("fake Cloudflare API on http://%s:%d%s (state %s)", host, self._server.server_port, API_PREFIX,
                 self.state_file)
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve from a daemon thread; returns the API's base URL, http://127.0.0.1:<port>/client/v4."""
        self._server = self._make_server(host, port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-cloudflare", daemon=True)
        self._thread.start()
        return f"http://{host}:{self._server.server_port}{API_PREFIX}"

    def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def main(argv: list[str] | None = None) -> int:
    """`python -m multicloud_dr.lab.fake_cloudflare --port P --state FILE --token-file FILE [--seed FILE]`.

    The token is read from a file (mode 0600 by whoever writes it), never from argv.
    """
    parser = argparse.ArgumentParser(prog="fake_cloudflare", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="JSON file that keeps the objects across restarts")
    parser.add_argument("--token-file", type=Path, required=True, help="file holding the API token clients must send")
    parser.add_argument("--seed", type=Path, help="JSON: accounts' monitors and pools, zones' load balancers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
        seed = json.loads(args.seed.read_text(encoding="utf-8")) if args.seed else None
        api = FakeCloudflareApi(token=token, state_file=args.state, seed=seed)
    except (OSError, ValueError) as err:
        parser.exit(2, f"fake_cloudflare: {err}\n")
    except ApiError as err:
        parser.exit(2, f"fake_cloudflare: the seed is not valid: {err.message}\n")

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        api.serve_forever(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
