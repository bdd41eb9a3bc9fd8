"""environment_provision run by Airflow: under `dag.test()` for the paths without a human, and under a real
`airflow standalone` (scheduler, workers, REST API) for the approval, which only a response from outside can
resolve. Saved plans go to the lab's Azurite; terraform is the fake in tests/fakes (the real binary cannot be
installed here: the fake keeps terraform's exit codes, JSON shapes, stale-plan refusal and lock, and records
every invocation). The test roots are directories of the test's own: the fake reads no HCL."""

from __future__ import annotations

import importlib.util
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.lab.airflow_run import run_dag, task_results

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
FAKES = ROOT / "tests" / "fakes"
_spec = importlib.util.spec_from_file_location("fake_terraform", FAKES / "fake_terraform.py")
fake_terraform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_terraform)

SECRET = "sensitive-output-value-e2e"
WANT = {
    "resources": {"aws_vpc.main": {"cidr_block": "10.20.0.0/16"}, "aws_subnet.app[0]": {"cidr_block": "10.20.1.0/24"},
                  "aws_eks_cluster.app": {"version": "1.31"}, "aws_db_instance.mysql": {"class": "db.t3.medium"}},
    "outputs": {"app_gateway_ip": {"value": "203.0.113.10"}, "vpc_id": {"value": "vpc-0e2e"},
                "db_admin_password": {"value": SECRET, "sensitive": True}},
}
CONSUMER_DAG = '''"""Reads the outputs environment_provision published, when the stack's Asset is updated."""
import pendulum
from airflow.sdk import DAG, task

from multicloud_dr.assets import terraform_outputs_asset

with DAG("terraform_outputs_consumer", schedule=[terraform_outputs_asset("aws", "production", "always-on")],
         start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["e2e"]):

    @task
    def read(**context) -> dict:
        from multicloud_dr.terraform.outputs import read_published_outputs

        extras = [e.extra for events in context["triggering_asset_events"].values() for e in events]
        return {"outputs": read_published_outputs("aws", "production", "always-on"), "event_extras": extras}

    read()
'''


@pytest.fixture(scope="module")
def tf_lab(lab, tmp_path_factory, delete_blob_prefix, smtp_server):
    """Fake terraform first on PATH, roots of the test's own, a topology whose `terraform:` points at them and
    at a storage prefix of the module's own (deleted afterwards), and whose approvals are assigned to admin
    and mailed to it (the local SMTP server)."""
    home = tmp_path_factory.mktemp("tf-provision")
    fake = fake_terraform.FakeTerraform(home)
    for cloud, environment in (("aws", "dev"), ("aws", "staging"), ("aws", "production"), ("azure", "dev")):
        fake.make_root(cloud, environment)
    location = StorageUrl("wasb", "dr-backups", f"e2e-terraform-{uuid.uuid4().hex[:8]}")
    data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    data["terraform"] = {"root": str(fake.roots), "plan_location": str(location), "storage_conn_id": "azure_blob_dr",
                         "credentials": {"aws": "aws_primary", "azure": "azure_tf_e2e", "gcp": None},
                         "lock_timeout_seconds": 5, "interrupt_grace_seconds": 10, "approvers": ["admin"]}
    data["notify"] = {"smtp_conn_id": "smtp_dr", "email_to": ["oncall@example.com"],
                      "approver_emails": {"admin": "admin@example.com"}}
    topology = home / "topology.yaml"
    topology.write_text(yaml.safe_dump(data))
    env = {**fake.env(), "MULTICLOUD_DR_TOPOLOGY": str(topology), "AIRFLOW_CONN_SMTP_DR": smtp_server.connection,
           "AIRFLOW_CONN_AZURE_TF_E2E": json.dumps({"conn_type": "azure", "login": "sp-client", "password": "sp-secret",
                                                    "extra": {"tenantId": "t-1", "subscriptionId": "s-1"}})}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield fake, env, location
    delete_blob_prefix(blob_service_client(get_endpoint("azure_blob_dr")), location)


def _provision(conf: dict, retries: int | None = None):
    if retries is None:
        return run_dag("environment_provision", DAGS, conf=conf)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "environment_provision.py")).dags["environment_provision"]
    for each in dag.tasks:
        each.retries = retries
    return dag.test(run_conf=conf)


def _conf(environment: str, stack: str, action: str, cloud: str = "aws") -> dict:
    return {"cloud": cloud, "environment": environment, "stack": stack, "action": action}


def _states(results: dict) -> dict[str, str]:
    return {task: value[0] for task, value in results.items()}


def _variable(key: str) -> str | None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalar(select(Variable).where(Variable.key == key))
        return row.val if row else None


def _asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [e.extra for e in session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(AssetModel.uri == uri)
            .order_by(AssetEvent.id))]


@pytest.mark.parametrize("scenario, action", [({}, "apply"), (WANT, "plan")], ids=["no-changes", "action-plan"])
def test_the_run_stops_after_the_plan_when_there_is_nothing_to_apply(airflow_db, tf_lab, scenario, action):
    fake, _, _ = tf_lab
    fake.set_scenario({"aws/staging/always-on": scenario})
    results = task_results(_provision(_conf("staging", "always-on", action)))
    states = _states(results)
    assert states["init"] == states["plan"] == states["decide"] == "success", states
    assert states["approve"] == states["approval_not_required"] == states["apply"] == "skipped", states
    assert states["publish_outputs"] == "skipped", states
    plan = results["plan"][1]
    assert plan["changes"] is bool(scenario) and plan["action"] == action
    assert (plan["plan_url"] is not None) is bool(scenario), "a plan with changes is stored, one without is not"
    assert fake.starts("apply") == [] and fake.state("aws", "staging", "always-on") is None


def test_dev_apply_applies_the_saved_plan_once_and_publishes_its_outputs(airflow_db, tf_lab):
    from multicloud_dr.terraform.outputs import outputs_variable_key
    from multicloud_dr.terraform.plan_store import PlanStore
    from multicloud_dr.terraform.provision import apply_stack
    from multicloud_dr.terraform.stacks import StackRef, TerraformSettings

    fake, _, location = tf_lab
    fake.set_scenario({"aws/dev/failover": WANT})
    results = task_results(_provision(_conf("dev", "failover", "apply")))
    states = _states(results)
    assert states["approve"] == "skipped" and states["approval_not_required"] == "success", states
    assert states["apply"] == states["publish_outputs"] == "success", states

    plan, applied = results["plan"][1], results["apply"][1]
    assert plan["totals"] == {"add": 4, "change": 0, "destroy": 0}
    assert plan["summary"] == {t: {"add": 1, "change": 0, "destroy": 0} for t in
                               ("aws_vpc", "aws_subnet", "aws_eks_cluster", "aws_db_instance")}
    assert plan["plan_url"].startswith(f"{location}/aws/dev/failover/")
    seen_by_terraform = [r["plan_sha256"] for r in fake.records() if r["event"] == "apply_plan"]
    assert applied["applied"] is True
    assert seen_by_terraform == [applied["applied_sha256"]] == [plan["plan_sha256"]], "not the saved plan"
    state = fake.state("aws", "dev", "failover")
    assert state["serial"] == 1 and sorted(state["resources"]) == sorted(WANT["resources"])

    # Published: non-sensitive outputs only, as a Variable and an Asset event; the secret nowhere in Airflow.
    document = json.loads(_variable(outputs_variable_key(StackRef("aws", "dev", "failover"))))
    assert document["outputs"] == {"app_gateway_ip": "203.0.113.10", "vpc_id": "vpc-0e2e"}
    assert document["sensitive_dropped"] == ["db_admin_password"] and document["destroyed"] is False
    assert _asset_events("terraform://aws/dev/failover")[-1]["outputs"] == document["outputs"]
    assert SECRET not in json.dumps(results, default=str)

    # Again: the plan finds nothing to do, nothing is applied, the state is untouched.
    again = task_results(_provision(_conf("dev", "failover", "apply")))
    assert _states(again)["apply"] == "skipped" and again["plan"][1]["changes"] is False
    # And the first run's apply step repeated (a cleared task): a no-op.
    settings = TerraformSettings.load()
    store = PlanStore.from_service(blob_service_client(get_endpoint("azure_blob_dr")), settings.plan_location)
    repeat = apply_stack(StackRef("aws", "dev", "failover"), settings, store, StorageUrl.parse(plan["plan_url"]),
                         plan["plan_sha256"])
    assert repeat.applied is False
    assert len([r for r in fake.records() if r["event"] == "apply_plan"]) == 1
    assert fake.state("aws", "dev", "failover")["serial"] == 1


def test_credentials_reach_terraform_in_its_environment(airflow_db, tf_lab):
    fake, _, _ = tf_lab
    fake.set_scenario({"azure/dev/always-on": {"resources": {"azurerm_resource_group.dr": {"location": "westeurope"}}}})
    results = task_results(_provision(_conf("dev", "always-on", "plan", cloud="azure")))
    assert _states(results)["plan"] == "success"
    azure = [s for s in fake.starts() if "azure" in s.get("chdir", "")]
    assert azure and all(s["env"]["ARM_CLIENT_ID"] == "sp-client" and s["env"]["ARM_CLIENT_SECRET"]["present"]
                         and s["env"]["ARM_TENANT_ID"] == "t-1" for s in azure)
    assert not any("sp-secret" in json.dumps(s["argv"]) for s in fake.starts())


def test_a_missing_root_fails_at_init_without_retries(airflow_db, tf_lab, smtp_server):
    """A prerequisite that a retry cannot fix fails the task at once with the message (no stack trace), and
    the failure is mailed to the channel in `notify:` once, naming the task."""
    mails = len(smtp_server.messages)
    results = task_results(_provision(_conf("production", "always-on", "apply", cloud="gcp"), retries=2))
    states = _states(results)
    assert states["init"] == "failed" and states["plan"] == "upstream_failed", states
    subjects = [m["Subject"] for m in smtp_server.messages[mails:]]
    assert subjects == ["[multicloud-dr] environment_provision failed in lab: task init"], subjects


# ---------------------------------------------------------------- under the real scheduler, with a human


@pytest.fixture(scope="module")
def standalone_extra_env(tf_lab, tmp_path_factory) -> dict[str, str]:
    """The standalone's workers get the fake on PATH, the test topology, and a dags folder with the DAG under
    test (a link to the real file) and a consumer DAG scheduled on the published Asset."""
    _, env, _ = tf_lab
    dags = tmp_path_factory.mktemp("provision-dags")
    (dags / "environment_provision.py").symlink_to(DAGS / "environment_provision.py")
    (dags / "terraform_outputs_consumer.py").write_text(CONSUMER_DAG)
    return {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _task_state(api, dag_id: str, run_id: str, task_id: str) -> str | None:
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}")["state"]


def _wait(what: str, probe, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return value


def _wait_run(api, dag_id: str, run_id: str, timeout: float = 180) -> dict:
    run = _wait(f"{dag_id} {run_id} to finish", lambda: (lambda r: r if r["state"] in ("success", "failed") else None)(
        api.call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}")), timeout)
    tasks = api.call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances")["task_instances"]
    return {"state": run["state"], "tasks": {t["task_id"]: t["state"] for t in tasks}}


def _xcom(api, dag_id: str, run_id: str, task_id: str):
    return api.call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
                           f"?deserialize=true")["value"]


def _trigger_until_approval(api, conf: dict) -> tuple[str, dict]:
    run_id = api.call("POST", "/dags/environment_provision/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]

    def parked():
        state = _task_state(api, "environment_provision", run_id, "approve")
        assert state not in ("skipped", "upstream_failed", "failed"), f"approve is {state}"
        return state == "awaiting_input"

    _wait("the approval task to wait for input", parked)
    # Airflow 3.3.2 race: an answer within ~1 s of parking re-queues the task before the scheduler has seen
    # the parking process exit, and it then marks the task failed ("finished with state success, but the
    # task instance's state attribute is queued"). A human is never that fast; the test waits like one.
    time.sleep(3)
    detail = api.call("GET", f"/dags/environment_provision/dagRuns/{_q(run_id)}/taskInstances/approve/-1/hitlDetails")
    return run_id, detail


def _respond(api, run_id: str, option: str, confirm: str = "") -> None:
    api.call("PATCH", f"/dags/environment_provision/dagRuns/{_q(run_id)}/taskInstances/approve/-1/hitlDetails",
             {"chosen_options": [option], "params_input": {"confirm_environment": confirm}})


@pytest.fixture
def provision_api(airflow_standalone_custom):
    """The standalone's API; afterwards, a run a failed test left waiting is failed (max_active_runs=1 would
    hold the next test's run in the queue behind it)."""
    yield airflow_standalone_custom
    api = airflow_standalone_custom
    for run in api.call("GET", "/dags/environment_provision/dagRuns?state=running&state=queued")["dag_runs"]:
        api.call("PATCH", f"/dags/environment_provision/dagRuns/{_q(run['dag_run_id'])}", {"state": "failed"})


def test_production_waits_for_approval_then_applies_exactly_the_saved_plan(tf_lab, provision_api, smtp_server):
    api = provision_api
    fake, _, _ = tf_lab
    fake.set_scenario({"aws/production/always-on": WANT})
    api.unpause("environment_provision")
    api.unpause("terraform_outputs_consumer")
    mails = len(smtp_server.messages)

    run_id, detail = _trigger_until_approval(api, _conf("production", "always-on", "apply"))
    # The approval's assigned user was told, by mail, by the notifier the HITL task fires when it starts waiting.
    [told] = [m for m in smtp_server.messages[mails:] if "waits for approval" in m["Subject"]]
    assert told["Subject"] == "[multicloud-dr] terraform apply of aws/production/always-on waits for approval"
    assert told["To"] == "admin@example.com, oncall@example.com"
    assert [u["id"] for u in detail["assigned_users"]] == ["admin"]
    plan = _xcom(api, "environment_provision", run_id, "plan")
    # Waiting: nothing applied yet, and the approver sees what the plan does and which plan it is.
    assert not [s for s in fake.starts("apply") if s["chdir"].endswith("/aws/production")]
    assert fake.state("aws", "production", "always-on") is None
    assert _task_state(api, "environment_provision", run_id, "apply") in (None, "none")
    assert "4 to add, 0 to change, 0 to destroy" in detail["body"] and plan["plan_sha256"] in detail["body"]
    assert "| `aws_eks_cluster` | 1 | 0 | 0 |" in detail["body"] and SECRET not in detail["body"]
    assert detail["subject"] == "terraform apply of aws/production/always-on"

    _respond(api, run_id, "Approve")
    result = _wait_run(api, "environment_provision", run_id)
    assert result["state"] == "success", result
    assert result["tasks"]["approval_not_required"] == "skipped" and result["tasks"]["publish_outputs"] == "success"
    applied = _xcom(api, "environment_provision", run_id, "apply")
    seen_by_terraform = [r["plan_sha256"] for r in fake.records() if r["event"] == "apply_plan"]
    assert applied["applied"] is True and applied["applied_sha256"] == plan["plan_sha256"]
    assert plan["plan_sha256"] in seen_by_terraform
    assert fake.state("aws", "production", "always-on")["serial"] == 1

    # Another DAG, scheduled on the stack's Asset, reads the published outputs.
    def consumer_run():
        runs = api.call("GET", "/dags/terraform_outputs_consumer/dagRuns")["dag_runs"]
        return runs[0]["dag_run_id"] if runs else None

    consumer = _wait("the consumer DAG to be triggered by the Asset event", consumer_run)
    assert _wait_run(api, "terraform_outputs_consumer", consumer)["state"] == "success"
    read = _xcom(api, "terraform_outputs_consumer", consumer, "read")
    assert read["outputs"] == {"app_gateway_ip": "203.0.113.10", "vpc_id": "vpc-0e2e"}
    assert read["event_extras"][0]["outputs"] == read["outputs"] and SECRET not in json.dumps(read)


def test_a_destroy_confirmed_with_the_wrong_name_destroys_nothing(tf_lab, provision_api):
    api = provision_api
    fake, _, _ = tf_lab
    fake.set_scenario({"aws/production/failover": WANT})
    api.unpause("environment_provision")
    # First build the stack (approved), then try to destroy it with a mistyped confirmation.
    run_id, _ = _trigger_until_approval(api, _conf("production", "failover", "apply"))
    _respond(api, run_id, "Approve")
    assert _wait_run(api, "environment_provision", run_id)["state"] == "success"
    fake_state_before = fake.state("aws", "production", "failover")
    assert len(fake_state_before["resources"]) == 4

    run_id, detail = _trigger_until_approval(api, _conf("production", "failover", "destroy"))
    assert "0 to add, 0 to change, 4 to destroy" in detail["body"] and "type `production`" in detail["body"]
    _respond(api, run_id, "Approve", confirm="prod")
    result = _wait_run(api, "environment_provision", run_id)
    assert result["state"] == "failed" and result["tasks"]["apply"] == "failed", result
    assert fake.state("aws", "production", "failover") == fake_state_before, "something was destroyed"
