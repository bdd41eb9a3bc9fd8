"""The failover's dr_stack step (failover/orchestrator.py `step_dr_stack`): the failover Terraform stack brought up
through the provisioning library (terraform/provision.py) when it is not up, and left alone when it is.

Terraform is the fake in tests/fakes (the real binary cannot be installed here: the fake keeps terraform's exit
codes, JSON shapes, saved plans and lock, and records every invocation); its roots are directories of the test's
own. Saved plans go to the lab's Azurite, the DR state too. The step alone is run as the dr_failover DAG's task
runs it (`run_named_step`); a whole failover runs on the lab's servers like tests/integration/test_failover_run.py
(the primary fenced, petclinic restored on the DR server, traffic moved), and the lab is put back afterwards: the
primary unfenced, its app scaled back, traffic on the primary."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.config import Topology, load_topology
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.failover.fence import unfence_mysql
from multicloud_dr.failover.orchestrator import TEST_KILL_AFTER, RunInfo, StepRunner, run_all, run_named_step
from multicloud_dr.failover.request import FailoverRequest
from multicloud_dr.lab.settings import APP_USER, SAMPLE_DATABASE
from multicloud_dr.state.dr_state import DrStateStore
from multicloud_dr.terraform.outputs import outputs_variable_key, published_document
from multicloud_dr.terraform.plan_store import PlanStore
from multicloud_dr.terraform.provision import apply_stack, plan_stack
from multicloud_dr.terraform.runner import TerraformError
from multicloud_dr.terraform.stacks import StackRef, TerraformSettings, run_key
from multicloud_dr.traffic.switch import switch_traffic, traffic_status

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"
_spec = importlib.util.spec_from_file_location("fake_terraform", FAKES / "fake_terraform.py")
fake_terraform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_terraform)

pytestmark = pytest.mark.timeout(600)

DR_STACK = StackRef("azure", "dr", "failover")
SECRET = "dr-stack-admin-password-never-published"
WANT = {
    "resources": {"azurerm_kubernetes_cluster.dr": {"node_count": 3},
                  "azurerm_mysql_flexible_server.dr": {"sku_name": "GP_Standard_D2ds_v4"},
                  "azurerm_application_gateway.dr": {"sku": "WAF_v2"}},
    "outputs": {"aks_name": {"value": "aks-petclinic-dr"}, "app_gateway_ip": {"value": "203.0.113.40"},
                "mysql_admin_password": {"value": SECRET, "sensitive": True}},
}
APPLY_FAILS = "creating Kubernetes Cluster aks-petclinic-dr: QuotaExceeded: 12 vCPUs requested, 8 left in westeurope"


@dataclasses.dataclass
class DrStackEnv:
    """A topology of the test's own (environment, backup and plan prefixes, failover.dr_stack azure/dr/failover,
    `terraform:` at the fake's roots) in the file MULTICLOUD_DR_TOPOLOGY names, and the fake terraform first on
    PATH."""

    fake: object
    topology: Topology
    path: Path
    store: DrStateStore
    backups: StorageUrl
    plans: StorageUrl

    def runner(self, mode: str = "planned", *, run_id: str | None = None) -> StepRunner:
        info = RunInfo(run_id or f"test__{uuid.uuid4().hex[:8]}", "test", "alice", datetime.now(UTC), "failover")
        return StepRunner(self.topology, FailoverRequest(target_site="dr", mode=mode), info, self.store)

    def plan_store(self) -> PlanStore:
        return PlanStore.from_service(blob_service_client("azure_blob_dr"), self.plans)

    def applies(self) -> list[dict]:
        """What terraform was asked to apply: one record per `apply PLANFILE`, with the plan's SHA-256."""
        return [r for r in self.fake.records() if r["event"] == "apply_plan"]


@pytest.fixture
def dr_stack(lab, tmp_path, monkeypatch, delete_blob_prefix):
    tag = uuid.uuid4().hex[:8]
    fake = fake_terraform.FakeTerraform(tmp_path / "terraform")
    fake.make_root(DR_STACK.cloud, DR_STACK.environment)
    backups = StorageUrl("wasb", "dr-backups", f"test-dr-stack-{tag}/backups")
    plans = StorageUrl("wasb", "dr-backups", f"test-dr-stack-{tag}/terraform")
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["environment"] = f"t-drs-{tag}"
    data["backup"]["location"] = str(backups)
    data["backup"]["copies"] = []
    data["databases"] = [d for d in data["databases"] if d["engine"] == "mysql"]
    for db in data["databases"]:
        db["failover_method"] = "restore"
    data["replication"]["dms"] = []
    data["failover"]["four_eyes_environments"] = [data["environment"]]
    data["failover"]["dr_stack"] = DR_STACK.to_dict()
    data["terraform"].update({"root": str(fake.roots), "plan_location": str(plans), "storage_conn_id": "azure_blob_dr",
                              "credentials": {"aws": None, "azure": None, "gcp": None}, "lock_timeout_seconds": 5,
                              "interrupt_grace_seconds": 10})
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    monkeypatch.delenv("FAKE_TERRAFORM_APPLY_SECONDS", raising=False)
    monkeypatch.delenv(f"AIRFLOW_VAR_{outputs_variable_key(DR_STACK).upper()}", raising=False)
    topology = load_topology(path)
    store = DrStateStore.for_topology(topology)
    yield DrStackEnv(fake, topology, path, store, backups, plans)
    with contextlib.suppress(Exception):
        store.blob.delete_blob()
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    for prefix in (backups, plans):
        delete_blob_prefix(service, prefix)


@pytest.fixture
def whole_failover(dr_stack):
    """For a whole failover: a fresh verified backup of petclinic in the test's prefix (the gates want one), and
    afterwards the lab as it was: primary unfenced, both apps at their replicas, traffic on the primary."""
    from multicloud_dr.kube.site import SiteApp

    service = blob_service_client(get_endpoint("azure_blob_dr"))
    backup = run_backup(BackupRequest(get_endpoint("mysql_primary"), SAMPLE_DATABASE, dr_stack.backups,
                                      datetime.now(UTC).replace(microsecond=0)), service)
    assert verify_backup(BackupStore(service, "dr-backups"), backup.manifest_url).status == "verified"
    apps = {site: dr_stack.topology.site(site).app for site in ("primary", "dr")}
    replicas_before = {}
    for site, config in apps.items():
        with SiteApp(config, site) as app:
            replicas_before[site] = app.status()["deployments"]["petclinic-web"]["replicas"]
    try:
        yield dr_stack
    finally:
        unfence_mysql(get_endpoint("mysql_primary"), [APP_USER])
        for site, config in apps.items():      # the fence step scales the old primary's app down
            with SiteApp(config, site) as app:
                app.scale_to(replicas_before[site])
        switch_traffic(dr_stack.topology, "primary", check_health=False)


def _step_record(env: DrStackEnv, name: str):
    state, _ = env.store.read()
    return state, state.operation.step(name) if state.operation else None


def _bring_up_and_publish(env: DrStackEnv, monkeypatch) -> dict:
    """The stack as environment_provision leaves it: its saved plan applied, its non-sensitive outputs published
    (outside Airflow, the AIRFLOW_VAR_* variable read_published_outputs reads)."""
    settings = TerraformSettings.load(env.topology)
    store = env.plan_store()
    plan = plan_stack(DR_STACK, settings, "apply", store, "manual__environment_provision")
    applied = apply_stack(DR_STACK, settings, store, plan.plan_url, plan.plan_sha256)
    assert applied.applied
    outputs = {"aks_name": "aks-petclinic-dr", "app_gateway_ip": "203.0.113.40"}
    document = published_document(DR_STACK, outputs, ["mysql_admin_password"], run_id="manual__environment_provision")
    monkeypatch.setenv(f"AIRFLOW_VAR_{outputs_variable_key(DR_STACK).upper()}", json.dumps(document))
    return outputs


# -- the step alone, as the dr_failover DAG's dr_stack task runs it ---------------------------------------------------


def test_a_stack_that_is_not_up_is_planned_and_applied_once(dr_stack):
    fake = dr_stack.fake
    fake.set_scenario({"azure/dr/failover": WANT})
    run = dr_stack.runner()
    assert run.begin()["noop"] is False

    result = run_named_step(run, "dr_stack")

    assert result["skipped"] is False and result["stack"] == DR_STACK.label
    applied = result["applied"]
    assert applied["applied"] is True
    # Exactly one apply, of the plan the step saved, in the failover stack's root.
    assert [s["chdir"] for s in fake.starts("apply")] == [str(fake.roots / "azure" / "dr")]
    assert [a["plan_sha256"] for a in dr_stack.applies()] == [applied["applied_sha256"]] == [applied["plan_sha256"]]
    state = fake.state("azure", "dr", "failover")
    assert state is not None and state["serial"] == 1 and sorted(state["resources"]) == sorted(WANT["resources"])
    assert state["outputs"]["app_gateway_ip"]["value"] == "203.0.113.40"
    # The saved plan is in the run's place in Azurite, marked applied (a second apply of it is a no-op).
    plan_url = StorageUrl.parse(applied["plan_url"])
    assert applied["plan_url"].startswith(f"{dr_stack.plans}/azure/dr/failover/{run_key(run.info.run_id)}/")
    assert dr_stack.plan_store().applied(plan_url, applied["plan_sha256"]) is not None
    # Recorded done in the DR state (what a resumed run returns instead of applying again); no secret in it.
    _, step = _step_record(dr_stack, "dr_stack")
    assert step.status == "done" and step.detail == result
    assert SECRET not in json.dumps(step.detail)


def test_a_stack_that_is_up_and_published_is_neither_planned_nor_applied(dr_stack, monkeypatch):
    fake = dr_stack.fake
    fake.set_scenario({"azure/dr/failover": WANT})
    _bring_up_and_publish(dr_stack, monkeypatch)
    seen = len(fake.records())
    run = dr_stack.runner()
    run.begin()

    result = run_named_step(run, "dr_stack")

    assert result["skipped"] is True and result["stack"] == DR_STACK.label
    assert "is up" in result["detail"], result
    started = [r["command"] for r in fake.records()[seen:] if r["event"] == "start"]
    assert "plan" not in started and "apply" not in started, started
    assert len(dr_stack.applies()) == 1                          # environment_provision's, no other
    assert fake.state("azure", "dr", "failover")["serial"] == 1   # the state untouched
    _, step = _step_record(dr_stack, "dr_stack")
    assert step.status == "done" and step.detail == result


# -- a whole failover --------------------------------------------------------------------------------------------


def _drctl_failover() -> list[str]:
    drctl = str(Path(sys.executable).parent / "drctl")
    return [drctl, "failover", "--to", "dr", "--mode", "planned", "--approve-as", "bob", "--reason", "move",
            "--as", "alice"]


def test_a_failover_killed_after_dr_stack_resumes_without_applying_the_stack_again(lab, whole_failover):
    env = whole_failover
    fake = env.fake
    fake.set_scenario({"azure/dr/failover": WANT})
    killed = subprocess.run(_drctl_failover(), env={**os.environ, TEST_KILL_AFTER: "dr_stack"}, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    state, step = _step_record(env, "dr_stack")
    assert state.holder is not None and step.status == "done" and step.detail["applied"]["applied"] is True
    assert state.operation.step("data") is None
    assert len(env.applies()) == 1
    seen = len(fake.records())

    resumed = subprocess.run(_drctl_failover(), env={k: v for k, v in os.environ.items() if k != TEST_KILL_AFTER},
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "step dr_stack done" in resumed.stderr
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "succeeded" and report["active_site"] == "dr"
    # The resumed run took dr_stack's outcome from the DR state: terraform was not started again at all.
    assert fake.records()[seen:] == []
    assert len(env.applies()) == 1 and fake.state("azure", "dr", "failover")["serial"] == 1
    (dr_step,) = [s for s in report["steps"] if s["name"] == "dr_stack"]
    assert dr_step["detail"]["applied"]["plan_sha256"] == step.detail["applied"]["plan_sha256"]
    assert traffic_status(env.topology).to_dict()["site"] == "dr"


def test_a_failed_apply_fails_the_step_and_the_failover_stops_before_traffic_moves(lab, whole_failover):
    env = whole_failover
    fake = env.fake
    fake.set_scenario({"azure/dr/failover": {**WANT, "error": {"apply": APPLY_FAILS}}})
    run = env.runner("planned")
    with pytest.raises(TerraformError, match="QuotaExceeded"):
        run_all(run, approved_by="bob", approval_reason="move")

    # Traffic never moved: every layer still sends users to the primary.
    live = traffic_status(env.topology).to_dict()
    assert live["site"] == "primary" and {layer["site"] for layer in live["layers"]} == {"primary"}, live
    # The state says where and why it stopped, and stays held by the run (fixing the cause and re-running resumes).
    state, step = _step_record(env, "dr_stack")
    assert state.is_held_by(run.info.run_id) and state.operation.step("fence").status == "done"
    assert step.status == "failed"
    assert "TerraformError" in step.detail["error"] and APPLY_FAILS in step.detail["error"], step.detail
    assert all(state.operation.step(name) is None for name in ("data", "app", "health", "traffic", "verify"))
    # Terraform was asked once, refused, and left the stack's state as it was and its lock released.
    assert len(env.applies()) == 1 and [r["code"] for r in fake.records()
                                        if r["event"] == "exit" and r["command"] == "apply"] == [1]
    assert fake.state("azure", "dr", "failover") is None and fake.locks() == []
