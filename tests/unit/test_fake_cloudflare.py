"""The lab's fake Cloudflare API, through plain HTTP requests.

Cloudflare's API cannot run here, so it is faked at its HTTP boundary (multicloud_dr.lab.fake_cloudflare)
with the shapes of its documentation (the v4 envelope, Load Balancers, Pools, Monitors, Pool Health
Details). These tests check that the fake answers as the documentation says, so that the traffic layer's
tests against it mean something: the envelope, the auth errors, 404, the validation Cloudflare does, and
health that comes from probing real origins (small HTTP servers in threads).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from multicloud_dr.lab import fake_cloudflare
from multicloud_dr.lab.fake_cloudflare import FakeCloudflareApi

TOKEN = "fake-cf-token-4f1b9c3e"
ACCOUNT = "4f1b9c3e8a7d6b5c4e3f2a1b0c9d8e7f"
ZONE = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
PRIMARY_POOL = "17b5962d775c646f3f9725cbc7a53df4"
DR_POOL = "9290f38c5d07c2e2f4df57b1f61d4196"
LB_ID = "699d98642c564d2e855e9661899b7252"
LB_NAME = "lb.petclinic.example.com"


def seed(primary_port: int, dr_port: int) -> dict:
    return {
        "accounts": {ACCOUNT: {
            "monitors": [
                {"id": "m-primary", "type": "http", "path": "/health", "port": primary_port, "expected_codes": "200"},
                {"id": "m-dr", "type": "http", "path": "/health", "port": dr_port, "expected_codes": "2xx"},
            ],
            "pools": [
                {"id": PRIMARY_POOL, "name": "primary", "monitor": "m-primary",
                 "origins": [{"name": "app-primary", "address": "127.0.0.1", "enabled": True, "weight": 1}]},
                {"id": DR_POOL, "name": "dr", "enabled": False, "monitor": "m-dr",
                 "origins": [{"name": "app-dr", "address": "127.0.0.1", "enabled": True, "weight": 1}]},
            ],
        }},
        "zones": {ZONE: {"load_balancers": [
            {"id": LB_ID, "name": LB_NAME, "default_pools": [PRIMARY_POOL, DR_POOL], "fallback_pool": PRIMARY_POOL,
             "proxied": True, "steering_policy": "off"},
        ]}},
    }


@pytest.fixture
def origins(health_app):
    return health_app(200), health_app(200)


@pytest.fixture
def fake(tmp_path, origins, monkeypatch):
    monkeypatch.setattr(fake_cloudflare, "CACHE_SECONDS", 0.0)   # every read probes: no waiting out the cache
    api = FakeCloudflareApi(token=TOKEN, state_file=tmp_path / "cloudflare.json",
                            seed=seed(origins[0].port, origins[1].port))
    url = api.start_in_thread()
    yield api, url
    api.shutdown()


def call(url: str, method: str, path: str, token: str | None = TOKEN, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{url}/{path}", headers=headers, timeout=10, **kwargs)


def lb_path() -> str:
    return f"zones/{ZONE}/load_balancers/{LB_ID}"


def pool_path(pool_id: str) -> str:
    return f"accounts/{ACCOUNT}/load_balancers/pools/{pool_id}"


def test_replies_are_cloudflares_envelope_with_the_documented_objects(fake):
    _, url = fake
    assert url.startswith("http://127.0.0.1:") and url.endswith("/client/v4")
    reply = call(url, "GET", f"zones/{ZONE}/load_balancers")
    body = reply.json()
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    assert (body["success"], body["errors"], body["messages"]) == (True, [], [])
    assert body["result_info"]["count"] == 1
    (lb,) = body["result"]
    assert {"id", "created_on", "modified_on", "name", "default_pools", "fallback_pool", "proxied", "enabled",
            "steering_policy"} <= set(lb)
    assert (lb["name"], lb["default_pools"], lb["fallback_pool"]) == (LB_NAME, [PRIMARY_POOL, DR_POOL], PRIMARY_POOL)

    pool = call(url, "GET", pool_path(DR_POOL)).json()["result"]
    assert {"id", "created_on", "modified_on", "name", "enabled", "origins", "monitor", "minimum_origins",
            "description"} <= set(pool)
    assert pool["enabled"] is False and "disabled_at" in pool
    assert pool["origins"] == [{"name": "app-dr", "address": "127.0.0.1", "enabled": True, "weight": 1}]
    monitors = call(url, "GET", f"accounts/{ACCOUNT}/load_balancers/monitors").json()["result"]
    assert {m["id"] for m in monitors} == {"m-primary", "m-dr"}
    assert call(url, "GET", f"accounts/{ACCOUNT}/load_balancers/monitors/m-dr").json()["result"]["path"] == "/health"


def test_no_token_401_wrong_token_403_malformed_400_in_the_envelope(fake):
    _, url = fake
    missing = call(url, "GET", lb_path(), token=None)
    assert missing.status_code == 401
    assert missing.json()["success"] is False and missing.json()["errors"][0]["code"] == 9106
    wrong = call(url, "GET", lb_path(), token="not-the-token")
    assert wrong.status_code == 403
    assert wrong.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert wrong.json()["result"] is None
    malformed = requests.get(f"{url}/{lb_path()}", headers={"Authorization": TOKEN}, timeout=10)
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["code"] == 6003
    assert malformed.json()["errors"][0]["error_chain"][0]["code"] == 6111
    # A refused write changes nothing.
    before = call(url, "GET", pool_path(DR_POOL)).json()["result"]
    assert call(url, "PATCH", pool_path(DR_POOL), token="nope", json={"enabled": True}).status_code == 403
    assert call(url, "GET", pool_path(DR_POOL)).json()["result"] == before


def test_unknown_objects_are_404_and_unknown_routes_400(fake):
    _, url = fake
    for path in (pool_path("0" * 32), f"zones/{ZONE}/load_balancers/{'0' * 32}", f"zones/{'0' * 32}/load_balancers",
                 f"accounts/{'0' * 32}/load_balancers/pools", f"{pool_path('0' * 32)}/health"):
        reply = call(url, "GET", path)
        assert reply.status_code == 404, path
        assert reply.json()["success"] is False and "not found" in reply.json()["errors"][0]["message"]
    assert call(url, "GET", "zones").status_code == 400
    assert call(url, "DELETE", lb_path()).status_code == 405


def test_validation_as_cloudflare_does_it_and_a_refused_write_changes_nothing(fake):
    _, url = fake
    before = call(url, "GET", lb_path()).json()["result"]
    for body, words in (({"default_pools": []}, "default_pools must be a non-empty list"),
                        ({"default_pools": ["f" * 32]}, "does not exist"),
                        ({"fallback_pool": "f" * 32}, "fallback_pool"),
                        ({"fallback_pools": PRIMARY_POOL}, "no field fallback_pools"),   # a typo is refused
                        ({"steering_policy": "loudest"}, "steering_policy")):
        reply = call(url, "PATCH", lb_path(), json=body)
        assert reply.status_code == 400, body
        error = reply.json()["errors"][0]
        assert error["code"] == 1002 and words in error["message"] and "validation failed" in error["message"]
    not_json = requests.patch(f"{url}/{lb_path()}", data=b"{not json", timeout=10, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["success"] is False
    assert call(url, "PATCH", pool_path(DR_POOL), json={"origins": []}).status_code == 400
    assert call(url, "PATCH", pool_path(DR_POOL), json={"monitor": "no-such-monitor"}).status_code == 400
    assert call(url, "PUT", lb_path(), json={"name": LB_NAME}).status_code == 400   # PUT needs the whole object
    assert call(url, "GET", lb_path()).json()["result"] == before


def test_every_write_changes_modified_on_and_put_replaces(fake):
    _, url = fake
    first = call(url, "GET", lb_path()).json()["result"]
    patched = call(url, "PATCH", lb_path(), json={"default_pools": [DR_POOL, PRIMARY_POOL]}).json()["result"]
    again = call(url, "PATCH", lb_path(), json={"default_pools": [DR_POOL, PRIMARY_POOL]}).json()["result"]
    assert first["modified_on"] < patched["modified_on"] < again["modified_on"]
    assert first["created_on"] == patched["created_on"] == again["created_on"]
    assert patched["default_pools"] == [DR_POOL, PRIMARY_POOL] and patched["fallback_pool"] == PRIMARY_POOL

    put = call(url, "PUT", lb_path(), json={"name": LB_NAME, "default_pools": [DR_POOL], "fallback_pool": DR_POOL,
                                            "description": "dr only"}).json()["result"]
    assert (put["default_pools"], put["fallback_pool"], put["description"]) == ([DR_POOL], DR_POOL, "dr only")
    assert put["id"] == LB_ID and put["steering_policy"] == "off"     # PUT: the defaults for what it left out

    enabled = call(url, "PATCH", pool_path(DR_POOL), json={"enabled": True}).json()["result"]
    assert enabled["enabled"] is True and "disabled_at" not in enabled
    assert call(url, "GET", pool_path(DR_POOL)).json()["result"] == enabled


def test_health_comes_from_probing_the_pools_origins(fake, origins):
    _, url = fake
    primary, _ = origins
    health = call(url, "GET", f"{pool_path(PRIMARY_POOL)}/health").json()["result"]
    assert health["pool_id"] == PRIMARY_POOL
    ((pop, report),) = health["pop_health"].items()
    assert report["healthy"] is True
    assert report["origins"][0]["127.0.0.1"]["response_code"] == 200

    primary.status = 500
    report = call(url, "GET", f"{pool_path(PRIMARY_POOL)}/health").json()["result"]["pop_health"][pop]
    check = report["origins"][0]["127.0.0.1"]
    assert report["healthy"] is False and check["healthy"] is False and check["response_code"] == 500

    primary.close()     # nothing listens any more
    check = call(url, "GET", f"{pool_path(PRIMARY_POOL)}/health").json()["result"]["pop_health"][pop]
    assert check["healthy"] is False and "TCP connection failed" in check["origins"][0]["127.0.0.1"]["failure_reason"]

    # A disabled pool is not health-checked; once enabled, its origin is probed ("2xx" matches 200).
    assert call(url, "GET", f"{pool_path(DR_POOL)}/health").json()["result"]["pop_health"] == {}
    call(url, "PATCH", pool_path(DR_POOL), json={"enabled": True})
    assert call(url, "GET", f"{pool_path(DR_POOL)}/health").json()["result"]["pop_health"][pop]["healthy"] is True
    # A disabled origin is not probed: with none left enabled the pool is unhealthy.
    call(url, "PATCH", pool_path(DR_POOL), json={"origins": [{"name": "app-dr", "address": "127.0.0.1",
                                                              "enabled": False}]})
    assert call(url, "GET", f"{pool_path(DR_POOL)}/health").json()["result"]["pop_health"][pop]["healthy"] is False


def test_health_is_cached_about_a_second_and_dropped_by_a_write(tmp_path, origins, monkeypatch):
    monkeypatch.setattr(fake_cloudflare, "CACHE_SECONDS", 30.0)
    api = FakeCloudflareApi(token=TOKEN, state_file=tmp_path / "s.json", seed=seed(origins[0].port, origins[1].port))
    url = api.start_in_thread()
    try:
        def healthy() -> bool:
            pops = call(url, "GET", f"{pool_path(PRIMARY_POOL)}/health").json()["result"]["pop_health"]
            return next(iter(pops.values()))["healthy"]

        assert healthy() is True
        origins[0].status = 503
        assert healthy() is True                                    # the cached probe
        call(url, "PATCH", pool_path(PRIMARY_POOL), json={"description": "touched"})
        assert healthy() is False                                   # a write drops it
    finally:
        api.shutdown()


def test_state_survives_a_restart_and_the_seed_does_not_undo_writes(tmp_path, origins):
    state = tmp_path / "state" / "cloudflare.json"
    the_seed = seed(origins[0].port, origins[1].port)
    api = FakeCloudflareApi(token=TOKEN, state_file=state, seed=the_seed)
    url = api.start_in_thread()
    written = call(url, "PATCH", lb_path(), json={"default_pools": [DR_POOL, PRIMARY_POOL],
                                                  "fallback_pool": DR_POOL}).json()["result"]
    api.shutdown()
    assert not [p for p in state.parent.iterdir() if p.name != state.name]   # no temporary file left behind
    assert TOKEN not in state.read_text()

    again = FakeCloudflareApi(token=TOKEN, state_file=state, seed=the_seed)
    url = again.start_in_thread()
    try:
        assert call(url, "GET", lb_path()).json()["result"] == written
        assert len(call(url, "GET", f"zones/{ZONE}/load_balancers").json()["result"]) == 1
    finally:
        again.shutdown()


def test_a_seed_object_without_an_id_is_created_once(tmp_path, origins):
    the_seed = seed(origins[0].port, origins[1].port)
    del the_seed["zones"][ZONE]["load_balancers"][0]["id"]
    for _ in range(2):
        api = FakeCloudflareApi(token=TOKEN, state_file=tmp_path / "s.json", seed=the_seed)
    (lb,) = api.state["zones"][ZONE]["load_balancers"].values()
    assert len(lb["id"]) == 32 and lb["name"] == LB_NAME


def test_a_seed_that_cloudflare_would_refuse_is_refused(tmp_path):
    bad = {"accounts": {ACCOUNT: {"pools": [{"id": PRIMARY_POOL, "name": "p", "origins": [{"address": "127.0.0.1"}]}]}},
           "zones": {ZONE: {"load_balancers": [{"name": LB_NAME, "default_pools": [], "fallback_pool": PRIMARY_POOL}]}}}
    with pytest.raises(fake_cloudflare.ApiError, match="default_pools"):
        FakeCloudflareApi(token=TOKEN, state_file=tmp_path / "s.json", seed=bad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_main_serves_with_the_token_from_a_file_and_stops_on_sigterm(tmp_path, origins):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed(origins[0].port, origins[1].port)))
    port = _free_port()
    argv = [sys.executable, "-m", "multicloud_dr.lab.fake_cloudflare", "--port", str(port),
            "--state", str(tmp_path / "state.json"), "--token-file", str(token_file), "--seed", str(seed_file)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}/client/v4"
        deadline = time.monotonic() + 20
        while True:
            try:
                reply = call(url, "GET", lb_path())
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.monotonic() < deadline, "the fake did not start within 20 s"
                time.sleep(0.1)
        assert reply.status_code == 200 and reply.json()["result"]["name"] == LB_NAME
        assert TOKEN not in " ".join(argv)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0
    assert TOKEN not in output
    assert json.loads(Path(tmp_path / "state.json").read_text())["zones"][ZONE]["load_balancers"][LB_ID]
