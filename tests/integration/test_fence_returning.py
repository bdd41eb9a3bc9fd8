"""F30: the old primary was unreachable when the failover ran (partitioned, not dead), so its fencing is pending
in the DR state. While it stays unreachable, nothing changes; once it answers again, the replication_health
step fences it before the app can write to it, and the DR state records the fencing with a new epoch.

The partition is the connection pointing at a closed port on 127.0.0.1, then back at the real server."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid

import pytest

from multicloud_dr.config import load_topology
from multicloud_dr.connections import env_var_name
from multicloud_dr.failover.fence import unfence_mysql
from multicloud_dr.failover.site_fence import fence_returning_site
from multicloud_dr.lab.settings import APP_USER
from multicloud_dr.state.dr_state import DrStateStore

from .conftest import app_can_write


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pending_fence(lab):
    """A DR state (its own blob) in which a failover to dr could not fence the primary; the primary unfenced after."""
    topology = load_topology()
    topology = topology.model_copy(update={"databases": [d for d in topology.databases if d.engine == "mysql"]})
    store = DrStateStore("azure_blob_dr", f"wasb://dr-backups/test-state-{uuid.uuid4().hex[:8]}", "lab")
    store.create_if_absent()
    store.apply(lambda s, at: s.acquire("failover-1", "test", "failover", "dr", "emergency", at=at))
    store.apply(lambda s, at: s.fence_pending("primary", "failover-1", at=at))
    try:
        yield topology, store
    finally:
        unfence_mysql("mysql_primary", [APP_USER])
        with contextlib.suppress(Exception):
            store.blob.delete_blob()


def test_a_returning_primary_is_fenced_before_the_app_writes_to_it(lab, pending_fence, monkeypatch):
    topology, store = pending_fence
    real = os.environ[env_var_name("mysql_primary")]
    partitioned = real.replace(f":{lab.mysql_primary.port}", f":{closed_port()}")
    monkeypatch.setenv(env_var_name("mysql_primary"), partitioned)
    still = fence_returning_site(topology, store)
    assert still["pending"] and not still["fenced"]
    state, _ = store.read()
    assert (state.fencing.site, state.fencing.status, state.fencing_epoch) == ("primary", "pending", 0)

    monkeypatch.setenv(env_var_name("mysql_primary"), real)          # the link heals
    assert app_can_write(lab)                                         # not fenced yet: this is the danger
    done = fence_returning_site(topology, store)
    assert done["fenced"] and done["fencing_epoch"] == 1
    assert not app_can_write(lab)                                     # fenced: the app's write fails
    state, _ = store.read()
    assert (state.fencing.status, state.fencing_epoch) == ("confirmed", 1)
    assert json.dumps(done, default=str).count(lab.settings.secrets().mysql_admin) == 0
    again = fence_returning_site(topology, store)
    assert not again["pending"] and not again["fenced"]               # nothing pending any more: nothing done
