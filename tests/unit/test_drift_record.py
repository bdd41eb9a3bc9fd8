"""The drift record (terraform/drift_record.py) as JSON, and what the failover makes of it (failover/gather.py
drift_facts, the gate "drift", the approval's Drift table). No servers: the lab's round trip through Azurite is
tests/integration/test_drift_record.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import Topology
from multicloud_dr.exceptions import ConfigError
from multicloud_dr.failover.gather import DRIFT_STALE_SECONDS, approval_markdown, decide, drift_facts
from multicloud_dr.terraform.drift_record import DriftCheck, DriftRecordError, DriftRecords, StoredDriftCheck
from multicloud_dr.terraform.runner import TerraformError
from multicloud_dr.terraform.stacks import StackRef

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Topology.model_validate(yaml.safe_load((ROOT / "include" / "topology.yaml").read_text()))
REF = StackRef("azure", "dr", "failover")
URL = StorageUrl.parse("wasb://dr-backups/terraform/drift/azure/dr/failover.json")
AT = datetime(2026, 12, 2, 4, 31, 7, tzinfo=UTC)
CHANGES = {"azurerm_kubernetes_cluster": {"add": 0, "change": 1, "destroy": 0},
           "azurerm_subnet": {"add": 1, "change": 0, "destroy": 1}}


def drifted(at: datetime = AT) -> DriftCheck:
    return DriftCheck.of_result(REF, True, CHANGES, "1 to add, 1 to change, 1 to destroy", "scheduled__a", at)


def in_sync(at: datetime = AT) -> DriftCheck:
    return DriftCheck.of_result(REF, False, {}, "0 to add, 0 to change, 0 to destroy", "scheduled__a", at)


def stored(check: DriftCheck, age_seconds: float = 3600.0) -> StoredDriftCheck:
    return StoredDriftCheck(check, URL, age_seconds)


def drift_gate(drift: dict):
    decision = decide(TOPOLOGY, {"drift": drift}, force=False, reason=None, uses_replica=False)
    return next(g for g in decision.gates if g.name == "drift")


# -- the record --------------------------------------------------------------------------------------------------


def test_a_record_reads_back_as_written_with_the_counts_and_one_line():
    check = drifted()
    assert DriftCheck.from_json(check.to_json(), str(URL)) == check
    raw = json.loads(check.to_json())
    assert raw == {"stack": "azure/dr/failover", "status": "drifted", "changes": CHANGES,
                   "checked_at": "2026-12-02T04:31:07+00:00", "run_id": "scheduled__a",
                   "detail": "1 to add, 1 to change, 1 to destroy (azurerm_kubernetes_cluster +0/~1/-0, "
                             "azurerm_subnet +1/~0/-1)"}
    assert json.loads(in_sync().to_json())["changes"] == {}


def test_a_failed_plan_is_recorded_as_one_bounded_line():
    err = TerraformError("terraform plan in azure/dr/failover failed with exit code 1:\nError: building account\n"
                         + "x" * 2000)
    check = DriftCheck.of_failure(REF, err, "scheduled__b", AT)
    assert check.status == "failed" and check.changes == {}
    assert check.detail.startswith("TerraformError: terraform plan in azure/dr/failover failed with exit code 1: "
                                   "Error: building account ")
    assert "\n" not in check.detail and len(check.detail) <= 500


@pytest.mark.parametrize("data, words", [
    (b"{not json", "is not a drift record"),
    (json.dumps({"stack": "azure/dr/failover", "status": "fine", "checked_at": AT.isoformat()}).encode(),
     "'fine' is not one of in_sync, drifted, failed"),
    (json.dumps({"stack": "azure/dr/failover", "status": "in_sync"}).encode(), "KeyError"),
    (json.dumps({"stack": "azure/dr/failover", "status": "in_sync", "checked_at": "2026-12-02T04:31:07"}).encode(),
     "time zone"),
], ids=["not-json", "unknown-status", "no-checked-at", "naive-time"])
def test_a_damaged_record_is_refused_naming_it_and_what_to_do(data, words):
    with pytest.raises(DriftRecordError, match="run terraform_drift") as caught:
        DriftCheck.from_json(data, str(URL))
    assert str(URL) in str(caught.value) and words in str(caught.value)


def test_records_live_only_in_azure_blob_next_to_the_saved_plans():
    with pytest.raises(ConfigError, match="plan_location"):
        DriftRecords(object(), StorageUrl.parse("s3://bucket/terraform"))


# -- what the failover makes of it -------------------------------------------------------------------------------


def test_a_recent_drift_stops_the_gate_and_says_what_changed():
    facts = drift_facts(REF.label, stored(drifted()), str(URL))
    assert facts["checked"] is True and facts["status"] == "drifted" and facts["drifted"] == ["azure/dr/failover"]
    assert facts["changes"] == CHANGES and facts["run_id"] == "scheduled__a"
    assert "azurerm_subnet +1/~0/-1" in facts["detail"]
    gate = drift_gate(facts)
    assert not gate.ok and "azure/dr/failover" in gate.detail


def test_a_recent_in_sync_check_passes():
    facts = drift_facts(REF.label, stored(in_sync()), str(URL))
    assert facts["checked"] is True and facts["status"] == "in_sync" and facts["drifted"] == []
    assert drift_gate(facts).ok


@pytest.mark.parametrize("check", [in_sync(), drifted()], ids=["was-in-sync", "was-drifted"])
def test_a_record_older_than_48_hours_is_stale_and_never_reads_as_in_sync(check):
    facts = drift_facts(REF.label, stored(check, DRIFT_STALE_SECONDS + 1), str(URL))
    assert facts["status"] == "stale" and facts["checked"] is False
    assert "more than 48 h" in facts["detail"] and "run it" in facts["detail"]
    # a stale drift is still the newest word on the stack: it keeps stopping the gate
    assert facts["drifted"] == ([REF.label] if check.status == "drifted" else [])
    decision = decide(TOPOLOGY, {"drift": facts}, force=False, reason=None, uses_replica=False)
    body = approval_markdown(TOPOLOGY, {"drift": facts}, decision, target_site="dr", mode="planned",
                             triggered_by="alice")
    row = next(line for line in body.splitlines() if line.startswith("| azure/dr/failover |"))
    status = row.split(" | ")[1]   # the approver's status column: in bold, never "in sync"
    assert status == ("**drifted**" if check.status == "drifted" else "**stale**")


def test_just_under_48_hours_is_still_recent():
    assert drift_facts(REF.label, stored(in_sync(), DRIFT_STALE_SECONDS - 60), str(URL))["status"] == "in_sync"


def test_a_failed_check_is_shown_as_failed_with_its_error_and_without_secrets():
    err = RuntimeError("GET https://acct.blob.core.windows.net/x?sv=1&sig=s3cr3tSAS refused")
    facts = drift_facts(REF.label, stored(DriftCheck.of_failure(REF, err, "scheduled__c", AT)), str(URL))
    assert facts["status"] == "failed" and facts["checked"] is False and facts["drifted"] == []
    assert "RuntimeError" in facts["detail"] and "scheduled__c" in facts["detail"]
    assert "s3cr3tSAS" not in json.dumps(facts)
    assert drift_gate(facts).ok, "a failed check is not a drift: the approver sees it failed"


def test_no_record_is_unknown_and_says_where_it_looked_and_what_to_run():
    facts = drift_facts(REF.label, None, str(URL))
    assert facts["status"] == "unknown" and facts["checked"] is False and facts["drifted"] == []
    assert str(URL) in facts["detail"] and "run terraform_drift" in facts["detail"]
