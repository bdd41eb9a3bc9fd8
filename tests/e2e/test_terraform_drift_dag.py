"""terraform_drift run by Airflow (`dag.test()`): one mapped plan per stack, a summary that fails when a
stack drifted (naming it and what changed) while the others pass. terraform is the fake in tests/fakes
(the real binary cannot be installed here; the fake keeps plan -detailed-exitcode's exit codes and the
`show -json` shape). "Drift" is made the way it happens: the real infrastructure (the fake's state)
changes behind Terraform's back."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from multicloud_dr.lab.airflow_run import run_dag, task_results
from multicloud_dr.terraform.runner import TerraformRunner

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
_spec = importlib.util.spec_from_file_location("fake_terraform", ROOT / "tests" / "fakes" / "fake_terraform.py")
fake_terraform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_terraform)

TARGETS = [("aws", "dev", "always-on"), ("azure", "staging", "failover"), ("gcp", "production", "always-on")]
WANT = {
    "aws/dev/always-on": {"resources": {"aws_vpc.main": {"cidr_block": "10.0.0.0/16"},
                                        "aws_eks_cluster.app": {"version": "1.31"}}},
    "azure/staging/failover": {"resources": {"azurerm_kubernetes_cluster.dr": {"node_count": 0},
                                             "azurerm_mysql_flexible_server.dr": {"sku": "B_Standard_B1ms"}}},
    "gcp/production/always-on": {"resources": {"google_storage_bucket.backups": {"versioning": True}}},
}


@pytest.fixture
def drift_lab(lab, tmp_path, monkeypatch, smtp_server):
    """Three stacks applied as configured, and a topology whose drift targets are exactly those three."""
    fake = fake_terraform.FakeTerraform(tmp_path)
    for cloud, environment, _ in TARGETS:
        fake.make_root(cloud, environment)
    fake.set_scenario(WANT)
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["terraform"] = {"root": str(fake.roots), "credentials": {"aws": None, "azure": None, "gcp": None},
                         "drift_targets": [{"cloud": c, "environment": e, "stack": s} for c, e, s in TARGETS]}
    data["notify"] = {"smtp_conn_id": "smtp_dr", "email_to": ["platform@example.com"]}
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DR", smtp_server.connection)
    smtp_server.messages.clear()
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(tmp_path / "topology.yaml"))
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    for cloud, environment, stack in TARGETS:
        with TerraformRunner(fake.roots / cloud / environment, lock_timeout_seconds=0) as tf:
            tf.init(f"backend-{stack}.hcl")
            tf.apply(tf.plan(tf.data_dir / "p.tfplan", variables={"stack": stack}).plan_file)
    return fake


def _change_behind_terraforms_back(fake, cloud: str, environment: str, stack: str, address: str, **attrs) -> None:
    """Someone edits a resource in the cloud console: the real infrastructure no longer matches."""
    for path in (fake.state_dir / "states").glob("*.json"):
        state = json.loads(path.read_text())
        if state["backend_key"] == f"{cloud}/{environment}/{stack}.tfstate":
            state["resources"][address].update(attrs)
            path.write_text(json.dumps(state))
            return
    raise AssertionError(f"no state for {cloud}/{environment}/{stack}")


def _mapped_states(dag_run) -> dict[str, str]:
    """The mapped plan tasks' states by their map index label (cloud/environment/stack)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.rendered_map_index: str(ti.state) for ti in session.query(TaskInstance).filter_by(
            dag_id="terraform_drift", run_id=dag_run.run_id, task_id="plan")}


def _serials(fake) -> dict:
    return {f"{c}/{e}/{s}": fake.state(c, e, s)["serial"] for c, e, s in TARGETS}


def test_a_drifted_stack_fails_the_summary_and_is_named_while_the_others_pass(airflow_db, drift_lab, capfd,
                                                                              smtp_server):
    fake = drift_lab
    _change_behind_terraforms_back(fake, "azure", "staging", "failover", "azurerm_kubernetes_cluster.dr", node_count=3)
    before = _serials(fake)

    dag_run = run_dag("terraform_drift", DAGS)
    output = capfd.readouterr()
    results = task_results(dag_run)
    assert str(dag_run.state) == "failed"
    assert results["summary"][0] == "failed"
    assert results["plan"][0] == "success", "a drifted stack is a finding, not a failed plan"

    assert _mapped_states(dag_run) == {"aws/dev/always-on": "success", "azure/staging/failover": "success",
                                       "gcp/production/always-on": "success"}
    logged = output.out + output.err
    assert "terraform drift: 1 drifted, 0 without a result, 2 in sync of 3 stacks" in logged
    assert "azure/staging/failover: DRIFT: 0 to add, 1 to change, 0 to destroy" in logged
    assert "azurerm_kubernetes_cluster +0/~1/-0" in logged
    assert "aws/dev/always-on: in sync" in logged and "gcp/production/always-on: in sync" in logged
    # The drift is announced on the configured channel (a real SMTP server on loopback).
    [mail] = smtp_server.messages
    assert mail["To"] == "platform@example.com" and "Terraform drift in lab" in mail["Subject"]
    body = mail.get_payload(0).get_payload(decode=True).decode() if mail.is_multipart() else mail.get_payload()
    assert "azure/staging/failover: DRIFT" in body
    # The check changes nothing and locks nothing.
    assert _serials(fake) == before and fake.locks() == []
    assert all("-lock=false" in s["argv"] for s in fake.starts("plan")[-3:])


def test_no_drift_passes(airflow_db, drift_lab, smtp_server):
    dag_run = run_dag("terraform_drift", DAGS)
    results = task_results(dag_run)
    assert str(dag_run.state) == "success", results
    assert results["summary"][1] == {"drifted": [], "failed": [], "stacks": 3}
    assert smtp_server.messages == [], "no drift, no e-mail"


def test_a_stack_that_cannot_be_planned_fails_alone_and_the_summary_says_so(airflow_db, drift_lab, capfd):
    fake = drift_lab
    (fake.roots / "gcp" / "production" / "backend-always-on.hcl").unlink()  # a broken root
    dag_run = run_dag("terraform_drift", DAGS)
    logged = "".join(capfd.readouterr())
    assert str(dag_run.state) == "failed"
    assert _mapped_states(dag_run) == {"aws/dev/always-on": "success", "azure/staging/failover": "success",
                                       "gcp/production/always-on": "failed"}
    assert "gcp/production/always-on: NO RESULT" in logged
    assert "aws/dev/always-on: in sync" in logged and "azure/staging/failover: in sync" in logged
