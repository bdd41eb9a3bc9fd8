"""terraform_drift's record of each check (terraform/drift_record.py) in the lab's Azurite, and the failover reading
it (failover/gather.py read_drift, the gate "drift"). terraform is the fake in tests/fakes, and drift is made the
way it happens: the real infrastructure (the fake's state) changes behind Terraform's back.

Each test keeps its records under a prefix of its own (`terraform.plan_location`), deleted afterwards, so the
failover stack's record of one test is never read by another (nor by test_failover_evidence.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import load_topology
from multicloud_dr.connections import env_var_name
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.failover.gather import DRIFT_STALE_SECONDS, decide, gather_evidence, read_drift
from multicloud_dr.operators.terraform import TerraformDriftOperator
from multicloud_dr.terraform.drift_record import DriftCheck, DriftRecords
from multicloud_dr.terraform.runner import TerraformRunner
from multicloud_dr.terraform.stacks import StackRef, TerraformSettings

ROOT = Path(__file__).resolve().parents[2]
DR_STACK = StackRef("azure", "dr", "failover")
OTHER = StackRef("aws", "dev", "always-on")
WANT = {"azure/dr/failover": {"resources": {"azurerm_kubernetes_cluster.dr": {"node_count": 0},
                                            "azurerm_mysql_flexible_server.dr": {"sku": "B_Standard_B1ms"}}},
        "aws/dev/always-on": {"resources": {"aws_vpc.main": {"cidr_block": "10.0.0.0/16"}}}}
pytestmark = pytest.mark.timeout(300)

_spec = importlib.util.spec_from_file_location("fake_terraform", ROOT / "tests" / "fakes" / "fake_terraform.py")
fake_terraform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_terraform)


class DriftLab:
    """The failover stack (and one other) applied as configured by the fake terraform, and a topology whose
    failover stack is azure/dr/failover, with drift records under a prefix of the test's own."""

    def __init__(self, tmp_path: Path, monkeypatch, backup_location: str | None = None,
                 plan_location: str | None = None) -> None:
        self.fake = fake_terraform.FakeTerraform(tmp_path)
        for ref in (DR_STACK, OTHER):
            self.fake.make_root(ref.cloud, ref.environment)
        self.fake.set_scenario(WANT)
        self.plan_location = plan_location or f"wasb://dr-backups/test-drift-{uuid.uuid4().hex[:8]}"
        data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
        data["environment"] = f"t-drift-{uuid.uuid4().hex[:8]}"
        data["terraform"].update(root=str(self.fake.roots), plan_location=self.plan_location,
                                 credentials={"aws": None, "azure": None, "gcp": None},
                                 drift_targets=[DR_STACK.to_dict(), OTHER.to_dict()])
        data["failover"]["dr_stack"] = DR_STACK.to_dict()
        if backup_location:
            data["backup"]["location"] = backup_location
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))   # what the operator reads
        for key, value in self.fake.env().items():
            monkeypatch.setenv(key, value)
        self.topology = load_topology(path)
        self.settings = TerraformSettings.load(self.topology)
        for ref in (DR_STACK, OTHER):
            with TerraformRunner(self.fake.roots / ref.cloud / ref.environment, lock_timeout_seconds=0) as tf:
                tf.init(ref.backend_config)
                tf.apply(tf.plan(tf.data_dir / "p.tfplan", variables=ref.variables).plan_file)

    def records(self) -> DriftRecords:
        return DriftRecords.for_settings(self.settings)

    def change_behind_terraforms_back(self, ref: StackRef, address: str, **attrs) -> None:
        """Someone edits a resource in the cloud console: the real infrastructure no longer matches."""
        for path in (self.fake.state_dir / "states").glob("*.json"):
            state = json.loads(path.read_text())
            if state["backend_key"] == f"{ref.label}.tfstate":
                state["resources"][address].update(attrs)
                path.write_text(json.dumps(state))
                return
        raise AssertionError(f"no state for {ref.label}")

    def check(self, ref: StackRef, run_id: str) -> dict:
        """One mapped task of terraform_drift, as Airflow runs it (its execute, with the run's id)."""
        operator = TerraformDriftOperator(task_id="plan", target=ref.to_dict())
        return operator.execute({"run_id": run_id})


@pytest.fixture
def drift_lab(lab, tmp_path, monkeypatch, delete_blob_prefix):
    service = blob_service_client("azure_blob_dr")   # made now: a test may point the connection elsewhere
    made: list[DriftLab] = []

    def make(**kwargs) -> DriftLab:
        made.append(DriftLab(tmp_path / f"lab{len(made)}", monkeypatch, **kwargs))
        return made[-1]

    yield make
    for drift in made:
        location = StorageUrl.parse(drift.plan_location)
        if location.bucket == "dr-backups":
            delete_blob_prefix(service, location)


def drift_gate(topology, evidence: dict):
    """The gate "drift" as the failover decides it on `evidence` (only its drift part is looked at here)."""
    decision = decide(topology, evidence, force=False, reason=None, uses_replica=False)
    return next(g for g in decision.gates if g.name == "drift")


def test_a_record_is_written_where_documented_read_back_and_the_newest_check_wins(drift_lab):
    drift = drift_lab()
    records = drift.records()
    assert records.read(DR_STACK) is None, "no check recorded yet"

    at = datetime.now(UTC).replace(microsecond=0)
    first = DriftCheck.of_result(DR_STACK, True, {"azurerm_kubernetes_cluster": {"add": 0, "change": 1, "destroy": 0}},
                                 "0 to add, 1 to change, 0 to destroy", "scheduled__1", at)
    url = records.write(first)
    assert str(url) == f"{drift.plan_location}/drift/azure/dr/failover.json"
    stored = records.read(DR_STACK)
    assert stored.check == first and 0 <= stored.age_seconds < 60
    raw = json.loads(blob_service_client("azure_blob_dr").get_blob_client(url.bucket, url.path)
                     .download_blob().readall())
    assert raw == {"stack": "azure/dr/failover", "status": "drifted", "run_id": "scheduled__1",
                   "checked_at": at.isoformat(),
                   "changes": {"azurerm_kubernetes_cluster": {"add": 0, "change": 1, "destroy": 0}},
                   "detail": "0 to add, 1 to change, 0 to destroy (azurerm_kubernetes_cluster +0/~1/-0)"}

    newer = DriftCheck.of_result(DR_STACK, False, {}, "0 to add, 0 to change, 0 to destroy", "scheduled__2")
    assert records.write(newer) == url, "a stack has one record: the next check replaces it"
    assert records.read(DR_STACK).check == newer
    assert records.read(OTHER) is None

    # A writer whose clock runs days ahead: the storage server's clock still ages the record (seconds, not -3 days).
    records.write(DriftCheck.of_result(DR_STACK, False, {}, "", "scheduled__3", at + timedelta(days=3)))
    assert 0 <= records.read(DR_STACK).age_seconds < 60


def test_drift_found_by_the_check_stops_the_failover_and_mending_it_clears_the_gate(drift_lab,
                                                                                     verified_petclinic_backup):
    root, _, _ = verified_petclinic_backup("test-drift", datetime.now(UTC).replace(microsecond=0))
    drift = drift_lab(backup_location=str(root))
    drift.change_behind_terraforms_back(DR_STACK, "azurerm_kubernetes_cluster.dr", node_count=3)

    result = drift.check(DR_STACK, "scheduled__2026-12-02T04:30:00+00:00")
    assert result["status"] == "drift" and result["record"].endswith("/drift/azure/dr/failover.json")
    assert drift.check(OTHER, "scheduled__2026-12-02T04:30:00+00:00")["status"] == "in_sync"

    evidence = gather_evidence(drift.topology, "dr")
    assert evidence["drift"]["status"] == "drifted" and evidence["drift"]["drifted"] == ["azure/dr/failover"]
    assert evidence["drift"]["changes"] == {"azurerm_kubernetes_cluster": {"add": 0, "change": 1, "destroy": 0}}
    assert evidence["drift"]["run_id"] == "scheduled__2026-12-02T04:30:00+00:00"
    decision = decide(drift.topology, evidence, force=False, reason=None, uses_replica=True)
    assert [g.name for g in decision.failed] == ["drift"], decision.summary()
    assert "azure/dr/failover" in decision.failed[0].detail
    forced = decide(drift.topology, evidence, force=True, reason="region down; drift reviewed", uses_replica=True)
    assert forced.passed and forced.forced

    # The console edit is undone; the next check finds the stack in sync and overwrites the record.
    drift.change_behind_terraforms_back(DR_STACK, "azurerm_kubernetes_cluster.dr", node_count=0)
    assert drift.check(DR_STACK, "scheduled__2026-12-03T04:30:00+00:00")["status"] == "in_sync"
    evidence = gather_evidence(drift.topology, "dr")
    assert evidence["drift"]["checked"] is True and evidence["drift"]["status"] == "in_sync"
    assert evidence["drift"]["run_id"] == "scheduled__2026-12-03T04:30:00+00:00"
    decision = decide(drift.topology, evidence, force=False, reason=None, uses_replica=True)
    assert decision.passed, decision.summary()


def test_a_retried_check_overwrites_its_own_record(drift_lab):
    drift = drift_lab()
    drift.change_behind_terraforms_back(DR_STACK, "azurerm_mysql_flexible_server.dr", sku="GP_Standard_D2ds_v4")
    first = drift.check(DR_STACK, "manual__retry")
    second = drift.check(DR_STACK, "manual__retry")   # the same task again, as a retry runs it
    assert first["record"] == second["record"]
    prefix = StorageUrl.parse(drift.plan_location).join("drift")
    container = blob_service_client("azure_blob_dr").get_container_client(prefix.bucket)
    assert [b.name for b in container.list_blobs(name_starts_with=prefix.path + "/")] == [
        f"{prefix.path}/azure/dr/failover.json"]
    facts = read_drift(drift.topology)
    assert facts["drifted"] == ["azure/dr/failover"] and "azurerm_mysql_flexible_server" in facts["detail"]


def test_a_check_whose_plan_fails_is_recorded_as_failed_never_as_in_sync(drift_lab):
    from airflow.sdk.exceptions import AirflowFailException

    drift = drift_lab()
    assert drift.check(DR_STACK, "scheduled__1")["status"] == "in_sync"
    (drift.fake.roots / "azure" / "dr" / "backend-failover.hcl").unlink()   # a broken root

    with pytest.raises(AirflowFailException, match=r"backend-failover\.hcl"):
        drift.check(DR_STACK, "scheduled__2")
    facts = read_drift(drift.topology)
    assert facts["status"] == "failed" and facts["checked"] is False and facts["drifted"] == []
    assert facts["run_id"] == "scheduled__2" and "backend-failover.hcl" in facts["detail"]
    assert drift_gate(drift.topology, {"drift": facts}).ok, "a failed check is shown, not a drift"


def test_a_check_that_cannot_be_recorded_fails_its_task(drift_lab):
    from airflow.sdk.exceptions import AirflowFailException

    drift = drift_lab(plan_location=f"wasb://no-such-container-{uuid.uuid4().hex[:6]}/terraform")
    with pytest.raises(AirflowFailException, match="does not exist"):
        drift.check(DR_STACK, "scheduled__1")


@pytest.mark.parametrize("drifted", [False, True], ids=["in-sync", "drifted"])
def test_a_record_older_than_48_hours_is_stale_never_in_sync(drift_lab, drifted):
    drift = drift_lab()
    old = datetime.now(UTC) - timedelta(seconds=DRIFT_STALE_SECONDS + 3600)
    changes = {"azurerm_kubernetes_cluster": {"add": 0, "change": 1, "destroy": 0}} if drifted else {}
    drift.records().write(DriftCheck.of_result(DR_STACK, drifted, changes, "0 to add, 1 to change, 0 to destroy",
                                               "scheduled__old", old))

    facts = read_drift(drift.topology)
    assert facts["status"] == "stale" and facts["checked"] is False
    assert "49.0 h old" in facts["detail"] and "more than 48 h" in facts["detail"]
    assert "run it" in facts["detail"]
    gate = drift_gate(drift.topology, {"drift": facts})
    # A stale record of drift still stops the failover: nothing since says the stack was mended.
    assert gate.ok is not drifted


def test_no_record_is_unknown_and_says_to_run_terraform_drift(drift_lab):
    drift = drift_lab()
    facts = read_drift(drift.topology)
    assert facts["status"] == "unknown" and facts["checked"] is False and facts["drifted"] == []
    assert f"{drift.plan_location}/drift/azure/dr/failover.json" in facts["detail"]
    assert "run terraform_drift" in facts["detail"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_storage_is_unknown_with_its_error_and_quick(drift_lab, lab, monkeypatch):
    drift = drift_lab()
    drift.records().write(DriftCheck.of_result(DR_STACK, True, {}, "1 output(s) change", "scheduled__1"))
    connection = os.environ["LAB_AZURE_CONNECTION_STRING"].replace(f":{lab.azurite.port}/",
                                                                      f":{_closed_port()}/")
    monkeypatch.setenv(env_var_name("azure_blob_dr"), json.dumps({"conn_type": "wasb",
                                                                  "extra": {"connection_string": connection}}))
    started = time.monotonic()
    facts = read_drift(drift.topology)
    assert time.monotonic() - started < 10
    assert facts["status"] == "unknown" and facts["drifted"] == []
    assert "Connection refused" in facts["error"] and "\n" not in facts["error"]
    account_key = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)["AccountKey"]
    assert account_key not in json.dumps(facts)
