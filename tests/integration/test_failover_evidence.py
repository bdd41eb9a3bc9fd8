"""The failover's evidence and gates (failover/gather.py) on the lab's real servers: MariaDB primary/replica,
PostgreSQL primary/standby, Azurite (backups, DR state, drill reports), moto (Route 53, CloudFront, DMS), the fake
Cloudflare API and the two app processes.

Each test uses a topology of its own: its environment (so its own DR state blob) and a backup prefix holding one
fresh verified backup of the lab's petclinic. F22: the gates stop on a stale or missing backup and on a stopped
replica (the replica's SQL thread stopped, then started again and caught up), and force with a reason passes. A
dead primary (its connection pointing at a closed port) is evidence, not an exception."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from multicloud_dr.config import load_topology
from multicloud_dr.connections import env_var_name
from multicloud_dr.failover.gather import approval_markdown, decide, gather_evidence
from multicloud_dr.restore.drill import FORMAT as DRILL_FORMAT
from multicloud_dr.state.dr_state import DrStateStore
from multicloud_dr.terraform.outputs import outputs_variable_key, published_document
from multicloud_dr.terraform.stacks import StackRef

ROOT = Path(__file__).resolve().parents[2]
DR_STACK = StackRef("azure", "dr", "failover")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def backup(verified_petclinic_backup):
    """(root, manifest record, store): one verified backup of petclinic under a prefix of this module's own."""
    return verified_petclinic_backup("test-evidence", datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def topology_of(lab, backup, tmp_path):
    """topology_of(**changes) -> a topology of the test's own: environment t-ev-<tag>, backups under the module's
    prefix, the failover stack azure/dr/failover. Its DR state blob is deleted afterwards."""
    root, _, _ = backup
    tag = uuid.uuid4().hex[:8]
    made: list = []

    def make(location: str | None = None, **thresholds):
        data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
        data["environment"] = f"t-ev-{tag}"
        data["backup"]["location"] = location or str(root)
        data["failover"]["dr_stack"] = DR_STACK.to_dict()
        data["replication"]["thresholds"].update(thresholds)
        path = tmp_path / f"topology-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data))
        topology = load_topology(path)
        made.append(DrStateStore.for_topology(topology))
        return topology

    yield make
    for store in made:
        with contextlib.suppress(Exception):
            store.blob.delete_blob()


@pytest.fixture
def dr_stack_published(monkeypatch):
    """The failover stack's outputs as environment_provision publishes them (outside Airflow: AIRFLOW_VAR_*)."""
    outputs = {"app_gateway_ip": "10.20.0.4", "mysql_fqdn": "petclinic-dr.mysql.database.azure.com"}
    document = published_document(DR_STACK, outputs, ["admin_password"], run_id="manual__test")
    monkeypatch.setenv(f"AIRFLOW_VAR_{outputs_variable_key(DR_STACK).upper()}", json.dumps(document))
    return outputs


def record_drills(topology, store) -> tuple[str, str]:
    """A finished failover drill in the DR state's history, and a restore drill report next to the backup."""
    states = DrStateStore.for_topology(topology)
    states.create_if_absent()
    run_id = f"drill__{uuid.uuid4().hex[:6]}"
    states.apply(lambda s, at: s.acquire(run_id, "carol", "drill", "dr", "drill", at=at))
    states.apply(lambda s, at: s.release(run_id, "succeeded", at=at))
    from multicloud_dr.backup.layout import StorageUrl

    stamp = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    report = StorageUrl.parse(topology.backup.location).join(f"petclinic/{stamp}/drill-{stamp}.json")
    store.blob(report).upload_blob(json.dumps({
        "format": DRILL_FORMAT, "at": (datetime.now(UTC) - timedelta(days=1)).isoformat(), "seconds": 42.0,
        "rto_seconds": 3600, "verified": True, "alert": False, "backup_id": "petclinic/x",
        "message": "restore of petclinic took 42 s: within the RTO of 3600 s"}))
    return run_id, stamp


def test_with_everything_up_every_section_is_there_and_the_gates_pass(topology_of, backup, dr_stack_published):
    _, record, store = backup
    topology = topology_of()
    run_id, _ = record_drills(topology, store)

    evidence = gather_evidence(topology, "dr")
    json.dumps(evidence)   # JSON-able: it goes into XCom and the DR state

    assert evidence["errors"] == [], evidence["errors"]
    replication = evidence["replication"]
    assert replication["status"] == "ok" and isinstance(replication["rpo_seconds"], float | int)
    assert {c["name"] for c in replication["checks"]} >= {"mysql_replica/petclinic", "postgres_standby/petclinic",
                                                          "backup_freshness/petclinic"}
    newest = evidence["backups"]["petclinic"]
    assert newest["manifest"] == str(record.url)
    assert newest["snapshot_at"] == record.manifest.started_at.isoformat()
    assert 0 <= newest["age_seconds"] < 600 and newest["rows"] == record.manifest.total_rows
    assert all(db["reachable"] for db in evidence["primary_databases"].values())
    assert evidence["health"]["primary"]["healthy"] and evidence["health"]["dr"]["healthy"]
    assert evidence["traffic"]["site"] == "primary"
    assert [layer["provider"] for layer in evidence["traffic"]["layers"]] == ["route53", "cloudfront", "cloudflare"]
    assert evidence["dns_ttls"]["app.petclinic.example.com"]["ttl_seconds"] == 60   # what moto holds
    assert evidence["dr_stack"]["up"] is True and evidence["dr_stack"]["outputs"] == dr_stack_published
    assert evidence["drift"]["status"] == "unknown" and evidence["drift"]["drifted"] == []
    assert evidence["last_drill"]["failover"]["run_id"] == run_id
    assert evidence["last_drill"]["failover"]["outcome"] == "succeeded"
    assert evidence["last_drill"]["restore"]["petclinic"]["seconds"] == 42.0
    assert evidence["gathered_in_seconds"] < 30

    decision = decide(topology, evidence, force=False, reason=None, uses_replica=True)
    assert decision.passed and not decision.failed, decision.summary()
    body = approval_markdown(topology, evidence, decision, target_site="dr", mode="planned", triggered_by="alice")
    assert "**GATES PASSED**" in body and str(record.url) in body and "app_gateway_ip=10.20.0.4" in body
    assert run_id in body
    print(f"evidence gathered in {evidence['gathered_in_seconds']:.2f} s: {evidence['seconds']}")


def test_the_gates_stop_on_a_stale_backup_and_force_with_a_reason_passes(topology_of, backup):
    _, record, store = backup
    age = (store.server_now() - record.manifest.stored_at).total_seconds()
    if age < 2:
        time.sleep(2 - age)
    topology = topology_of(backup_age_seconds=1)

    evidence = gather_evidence(topology, "dr")
    decision = decide(topology, evidence, force=False, reason=None, uses_replica=False)
    assert not decision.passed and [g.name for g in decision.failed] == ["backup/petclinic"]
    assert "more than 1 s" in decision.failed[0].detail

    forced = decide(topology, evidence, force=True, reason="primary region down; RPO accepted", uses_replica=False)
    assert forced.passed and forced.forced and forced.reason == "primary region down; RPO accepted"
    body = approval_markdown(topology, evidence, forced, target_site="dr", mode="emergency", triggered_by="alice")
    assert "**FORCED PAST FAILED GATES**" in body


def test_the_gates_stop_when_the_backup_location_holds_no_backup(topology_of, backup):
    root, _, _ = backup
    topology = topology_of(location=f"{root}-empty-{uuid.uuid4().hex[:6]}")

    evidence = gather_evidence(topology, "dr")
    assert evidence["backups"] == {"petclinic": None}
    decision = decide(topology, evidence, force=False, reason=None, uses_replica=False)
    assert [g.name for g in decision.failed] == ["backup/petclinic"]
    assert "no verified backup" in decision.failed[0].detail


@pytest.fixture
def replica_sql_thread_stopped(lab):
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
    try:
        time.sleep(1.2)   # the newest replicated heartbeat ages while nothing is applied
        yield
    finally:
        with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
            cur.execute("START SLAVE SQL_THREAD")
        lab.mysql_replica.wait_caught_up()


def test_the_gates_stop_on_a_stopped_replica_never_reading_it_as_caught_up(topology_of, replica_sql_thread_stopped):
    topology = topology_of()

    evidence = gather_evidence(topology, "dr")
    replica = next(c for c in evidence["replication"]["checks"] if c["name"] == "mysql_replica/petclinic")
    assert replica["status"] == "breach" and replica["facts"]["sql_running"] == "No"
    # Its value is the newest replicated heartbeat's age: seconds, within the 30 s limit. Never a lag to pass on.
    assert replica["value"] is not None and replica["value"] < replica["threshold"]

    decision = decide(topology, evidence, force=False, reason=None, uses_replica=True)
    assert not decision.passed and [g.name for g in decision.failed] == ["mysql_replica/petclinic"]
    assert "lag unknown" in decision.failed[0].detail and "never zero" in decision.failed[0].detail
    # A restore from the (fresh) backup does not depend on the replica; forcing a promotion needs a reason.
    assert decide(topology, evidence, force=False, reason=None, uses_replica=False).passed
    forced = decide(topology, evidence, force=True, reason="drill of a lagging promotion", uses_replica=True)
    assert forced.passed and forced.forced


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_dead_primary_is_recorded_not_raised_and_gathering_stays_bounded(lab, topology_of, monkeypatch):
    real = lab.mysql_primary.port
    uri = os.environ[env_var_name("mysql_primary")]
    monkeypatch.setenv(env_var_name("mysql_primary"), uri.replace(f":{real}", f":{_closed_port()}"))
    topology = topology_of()

    started = time.monotonic()
    evidence = gather_evidence(topology, "dr")
    elapsed = time.monotonic() - started
    assert elapsed < 30 and evidence["gathered_in_seconds"] < 30

    assert evidence["primary_databases"]["mysql/petclinic"]["reachable"] is False
    assert "Connection refused" in evidence["primary_databases"]["mysql/petclinic"]["detail"]
    failed = {e.split(": ", 1)[0] for e in evidence["errors"]}
    assert {"primary_databases/mysql/petclinic", "replication/mysql_replica/petclinic"} <= failed
    # everything else was still read
    assert evidence["backups"]["petclinic"]["manifest"]
    assert evidence["traffic"]["site"] == "primary" and evidence["health"]["dr"]["healthy"]
    assert evidence["primary_databases"]["postgres/petclinic"]["reachable"] is True

    decision = decide(topology, evidence, force=False, reason=None, uses_replica=True)
    assert [g.name for g in decision.failed] == ["mysql_replica/petclinic"]
    body = approval_markdown(topology, evidence, decision, target_site="dr", mode="emergency", triggered_by="alice")
    assert "## Could not be read" in body and "| mysql/petclinic | **no** |" in body
    print(f"evidence with the primary dead gathered in {elapsed:.2f} s")
