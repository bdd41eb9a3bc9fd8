"""The terraform runner and the provisioning steps, against the fake `terraform` executable in tests/fakes
(the real binary cannot be installed here: the fake keeps terraform's exit codes, `show -json` and
`output -json` shapes, stale-plan refusal, state lock and SIGINT handling; see its docstring).

Saved plans go to a dict instead of Azure Blob here (the e2e tests use the lab's Azurite)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
from pathlib import Path

import pytest

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import TerraformConfig
from multicloud_dr.terraform.approval import (
    NEEDS_APPROVAL,
    NO_APPROVAL,
    STOP,
    ApprovalError,
    check_approval,
    route_after_plan,
)
from multicloud_dr.terraform.outputs import split_outputs
from multicloud_dr.terraform.plan_store import PlanIntegrityError, PlanStore
from multicloud_dr.terraform.provision import apply_stack, check_drift, plan_stack, stack_outputs
from multicloud_dr.terraform.runner import (
    StalePlanError,
    TerraformInterruptedError,
    TerraformLockedError,
    TerraformNotFoundError,
    TerraformRunner,
)
from multicloud_dr.terraform.stacks import StackRef, TerraformSettings

FAKES = Path(__file__).resolve().parents[1] / "fakes"
_spec = importlib.util.spec_from_file_location("fake_terraform", FAKES / "fake_terraform.py")
fake_terraform = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_terraform)

REF = StackRef("aws", "dev", "always-on")
SECRET = "db-password-that-must-not-leak"
WANT_V1 = {
    "resources": {
        "aws_vpc.main": {"cidr_block": "10.0.0.0/16", "tags": {"env": "dev"}},
        "aws_subnet.private[0]": {"cidr_block": "10.0.1.0/24"},
        "aws_subnet.private[1]": {"cidr_block": "10.0.2.0/24"},
        "module.app.aws_instance.web": {"ami": "ami-1", "instance_type": "t3.small"},
        "data.aws_caller_identity.current": {},
    },
    "force_new": {"module.app.aws_instance.web": ["ami"]},
    "outputs": {"vpc_id": {"value": "vpc-0abc"}, "db_password": {"value": SECRET, "sensitive": True}},
}
# v2: the VPC's tags change (update), one subnet goes (destroy), the instance's AMI changes (replace:
# one add and one destroy), a security group is new (add).
WANT_V2 = {
    "resources": {
        "aws_vpc.main": {"cidr_block": "10.0.0.0/16", "tags": {"env": "dev", "owner": "platform-dr"}},
        "aws_subnet.private[0]": {"cidr_block": "10.0.1.0/24"},
        "module.app.aws_instance.web": {"ami": "ami-2", "instance_type": "t3.small"},
        "aws_security_group.web": {"ingress": [443]},
        "data.aws_caller_identity.current": {},
    },
    "force_new": {"module.app.aws_instance.web": ["ami"]},
    "outputs": WANT_V1["outputs"],
}


class MemoryBlobs:
    """The blob operations PlanStore uses, in a dict (create-only writes honoured like If-None-Match)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def read(self, name: str) -> bytes | None:
        return self.blobs.get(name)

    def write(self, name, data, *, overwrite, metadata=None, content_type="") -> bool:
        if not overwrite and name in self.blobs:
            return False
        self.blobs[name] = data
        return True


@pytest.fixture
def fake(tmp_path, monkeypatch):
    fake = fake_terraform.FakeTerraform(tmp_path)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FAKE_TERRAFORM_APPLY_SECONDS", raising=False)
    for cloud, environment in (("aws", "dev"), ("azure", "dev"), ("gcp", "dev"), ("aws", "production")):
        fake.make_root(cloud, environment)
    return fake


def settings_for(fake, **overrides) -> TerraformSettings:
    config = {"root": str(fake.roots), "credentials": {"aws": None, "azure": None, "gcp": None},
              "lock_timeout_seconds": 0, "interrupt_grace_seconds": 10, **overrides}
    return TerraformSettings.from_config(TerraformConfig.model_validate(config))


@pytest.fixture
def store():
    return PlanStore(MemoryBlobs(), StorageUrl.parse("wasb://dr-backups/terraform"))


def runner(fake, cloud="aws", environment="dev", **kwargs) -> TerraformRunner:
    return TerraformRunner(fake.roots / cloud / environment, label=f"{cloud}/{environment}", lock_timeout_seconds=0,
                           grace_seconds=10, **kwargs)


def plan_and_apply(fake, want: dict) -> None:
    fake.set_scenario({"aws/dev/always-on": want})
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        plan = tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
        if plan.changes:
            tf.apply(plan.plan_file)


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------- plan


def test_plan_with_no_changes_exits_0(fake):
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        plan = tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
    assert plan.exit_code == 0 and plan.changes is False
    assert plan.summary.by_type == {} and plan.summary.totals == {"add": 0, "change": 0, "destroy": 0}


def test_plan_with_changes_exits_2_and_counts_per_resource_type_like_terraform(fake):
    plan_and_apply(fake, WANT_V1)
    fake.set_scenario({"aws/dev/always-on": WANT_V2})
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        plan = tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
        saved = plan.plan_file.read_bytes()
    assert plan.exit_code == 2 and plan.changes is True
    assert plan.summary.by_type == {
        "aws_vpc": {"add": 0, "change": 1, "destroy": 0},
        "aws_subnet": {"add": 0, "change": 0, "destroy": 1},
        "aws_instance": {"add": 1, "change": 0, "destroy": 1},     # a replacement: one add and one destroy
        "aws_security_group": {"add": 1, "change": 0, "destroy": 0},
    }
    assert plan.summary.totals == {"add": 2, "change": 1, "destroy": 2}
    assert plan.summary.replaced == ["module.app.aws_instance.web"]
    assert plan.summary.deleted == ["aws_subnet.private[1]"]
    assert "aws_caller_identity" not in plan.summary.by_type       # a data source read is not a change
    assert plan.plan_sha256 == hashlib.sha256(saved).hexdigest()


def test_only_init_and_plan_flags_terraform_documents_are_used(fake):
    """Every invocation is list-form with -chdir, non-interactive, and plan uses -detailed-exitcode -out."""
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
    init, plan = fake.starts("init")[0]["argv"], fake.starts("plan")[0]["argv"]
    assert init[0] == f"-chdir={fake.roots / 'aws' / 'dev'}" and "-input=false" in init
    assert "-backend-config=backend-always-on.hcl" in init
    assert {"-input=false", "-detailed-exitcode", "-var=stack=always-on"} <= set(plan)
    assert any(a.startswith("-out=") for a in plan)
    backend = next(r for r in fake.records() if r["event"] == "backend")["backend_config"]
    assert backend == {"key": "aws/dev/always-on.tfstate"}


# ---------------------------------------------------------------- apply


def test_apply_applies_the_saved_plan_and_outputs_follow(fake):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        plan = tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
        result = tf.apply(plan.plan_file)
        outputs = tf.output_json()
        again = tf.plan(tf.data_dir / "q.tfplan", variables={"stack": "always-on"})
    assert result.exit_code == 0 and result.plan_sha256 == plan.plan_sha256
    state = fake.state("aws", "dev", "always-on")
    assert state["serial"] == 1 and sorted(state["resources"]) == sorted(
        a for a in WANT_V1["resources"] if not a.startswith("data."))
    assert outputs["vpc_id"] == {"sensitive": False, "type": "string", "value": "vpc-0abc"}
    assert again.changes is False
    assert [a for s in fake.starts("apply") for a in s["argv"]][-1] == str(plan.plan_file)


def test_a_stale_plan_is_refused_and_changes_nothing(fake):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        first = tf.plan(tf.data_dir / "first.tfplan", variables={"stack": "always-on"})
        second = tf.plan(tf.data_dir / "second.tfplan", variables={"stack": "always-on"})
        tf.apply(first.plan_file)
        with pytest.raises(StalePlanError, match="stale"):
            tf.apply(second.plan_file)
    assert fake.state("aws", "dev", "always-on")["serial"] == 1
    assert fake.locks() == []


def test_apply_of_a_stored_plan_twice_is_a_noop(fake, store):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "manual__run1")
    assert record.changes and record.plan_url == StorageUrl.parse(
        "wasb://dr-backups/terraform/aws/dev/always-on/manual__run1/plan.tfplan")

    first = apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)
    serial = fake.state("aws", "dev", "always-on")["serial"]
    second = apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)

    assert first.applied is True and second.applied is False and "nothing to do" in second.detail
    assert fake.state("aws", "dev", "always-on")["serial"] == serial == 1
    assert len(fake.starts("apply")) == 1, "the second apply ran terraform apply again"


def test_a_retry_after_an_unrecorded_apply_succeeds_without_applying_again(fake, store):
    """The worker died between terraform's apply and the marker: terraform now calls the plan stale; the
    retry sees a fresh plan with nothing to do and succeeds instead of failing on "Saved plan is stale"."""
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "run2")
    apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)
    markers = [n for n in store.blobs.blobs if "/applied-" in n]
    assert len(markers) == 1
    del store.blobs.blobs[markers[0]]

    retry = apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)
    assert retry.applied is False and "already matches" in retry.detail
    assert fake.state("aws", "dev", "always-on")["serial"] == 1


def test_a_plan_overtaken_by_other_changes_fails_and_says_to_plan_again(fake, store):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "run3")
    plan_and_apply(fake, WANT_V2)  # someone else applied another configuration meanwhile
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    with pytest.raises(StalePlanError, match="trigger the DAG again"):
        apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)


def test_a_replaced_stored_plan_is_not_applied(fake, store):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "run4")
    name = record.plan_url.path
    store.blobs.blobs[name] = store.blobs.blobs[name] + b" "
    with pytest.raises(PlanIntegrityError, match="not the approved"):
        apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)
    assert fake.starts("apply") == []


def test_destroy_plans_and_applies_the_destruction(fake, store):
    plan_and_apply(fake, WANT_V1)
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "destroy", store, "run5")
    assert record.summary.totals == {"add": 0, "change": 0, "destroy": 4}
    assert "-destroy" in fake.starts("plan")[-1]["argv"]
    apply_stack(REF, settings, store, record.plan_url, record.plan_sha256, action="destroy")
    assert fake.state("aws", "dev", "always-on")["resources"] == {}


# The stored plan must be applied as what it was planned for: terraform would run it in the asked stack's root
# against that stack's state, and the approval was given for what the plan shows.
MISMATCHES = {
    "dev plan to staging": (REF, "apply", StackRef("aws", "staging", "always-on")),
    "always-on plan to failover": (REF, "apply", StackRef("aws", "dev", "failover")),
    "destroy plan as apply": (REF, "destroy", REF),
}


@pytest.mark.parametrize("planned_ref, planned_action, asked_ref", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_a_stored_plan_is_not_applied_to_another_stack_or_as_another_action(fake, store, planned_ref, planned_action,
                                                                            asked_ref):
    plan_and_apply(fake, WANT_V1)  # the stacks exist, so a destroy plan has something to destroy
    fake.make_root("aws", "staging")
    fake.set_scenario({f"aws/{e}/{s}": WANT_V2 for e in ("dev", "staging") for s in ("always-on", "failover")})
    settings = settings_for(fake)
    record = plan_stack(planned_ref, settings, planned_action, store, "run-mismatch")
    states = {(e, s): fake.state("aws", e, s) for e in ("dev", "staging") for s in ("always-on", "failover")}
    with pytest.raises(PlanIntegrityError, match=rf"is for {planned_ref.label} \({planned_action}\), not "
                                                 rf"{asked_ref.label} \(apply\): nothing was applied"):
        apply_stack(asked_ref, settings, store, record.plan_url, record.plan_sha256)  # as drctl terraform apply
    assert fake.starts("apply")[1:] == [], "terraform apply ran"
    assert {(e, s): fake.state("aws", e, s) for e, s in states} == states
    assert not any("/applied-" in n for n in store.blobs.blobs)


def _drctl_with(fake, monkeypatch, tmp_path, store):
    """drctl's `terraform` commands on the fake binary, saved plans in `store` instead of Azure Blob."""
    import yaml

    from multicloud_dr import cli

    topology = Path(__file__).resolve().parents[2] / "include" / "topology.yaml"
    data = yaml.safe_load(topology.read_text())
    data["terraform"] = {"root": str(fake.roots), "credentials": {"aws": None, "azure": None, "gcp": None},
                         "lock_timeout_seconds": 0}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    monkeypatch.setattr(cli, "_storage", lambda conn_id: None)
    monkeypatch.setattr(PlanStore, "from_service", classmethod(lambda cls, service, location: store))
    return cli.main


def test_drctl_refuses_to_apply_a_dev_plan_to_staging(fake, monkeypatch, tmp_path, store, capsys):
    main = _drctl_with(fake, monkeypatch, tmp_path, store)
    fake.make_root("aws", "staging")
    fake.set_scenario({"aws/dev/always-on": WANT_V1, "aws/staging/always-on": WANT_V1})
    stack = ["--cloud", "aws", "--stack", "always-on"]
    assert main(["terraform", "plan", "--environment", "dev", *stack]) == 0
    plan = json.loads(capsys.readouterr().out)
    code = main(["terraform", "apply", "--environment", "staging", *stack, "--plan", plan["plan_url"],
                 "--sha256", plan["plan_sha256"], "--confirm", "staging"])
    err = capsys.readouterr().err
    assert code == 2 and "is for aws/dev/always-on (apply), not aws/staging/always-on (apply)" in err, err
    assert fake.starts("apply") == [] and fake.state("aws", "staging", "always-on") is None
    assert fake.state("aws", "dev", "always-on") is None
    assert not any("/applied-" in n for n in store.blobs.blobs)


# ---------------------------------------------------------------- credentials, outputs, binary


@pytest.mark.parametrize("cloud, connection, variable, secret_value", [
    ("aws", {"conn_type": "aws", "login": "AKIAFAKEKEY", "password": SECRET, "extra": {"region_name": "eu-west-1"}},
     "AWS_SECRET_ACCESS_KEY", SECRET),
    ("azure", {"conn_type": "azure", "login": "client-id", "password": SECRET,
               "extra": {"tenantId": "tenant-1", "subscriptionId": "sub-1"}}, "ARM_CLIENT_SECRET", SECRET),
    ("gcp", {"conn_type": "google_cloud_platform",
             "extra": {"keyfile_dict": json.dumps({"type": "service_account", "private_key": SECRET}),
                       "project": "dr-project"}},
     "GOOGLE_CREDENTIALS", json.dumps({"type": "service_account", "private_key": SECRET})),
])
def test_credentials_reach_terraform_by_environment_never_argv_or_logs(fake, monkeypatch, caplog, cloud, connection,
                                                                        variable, secret_value):
    monkeypatch.setenv("AIRFLOW_CONN_TF_CREDS_TEST", json.dumps(connection))
    settings = settings_for(fake, credentials={"aws": None, "azure": None, "gcp": None, cloud: "tf_creds_test"})
    with caplog.at_level("DEBUG"):
        plan_stack(StackRef(cloud, "dev", "always-on"), settings, "plan", None, "run")
    starts = fake.starts()
    assert {s["command"] for s in starts} >= {"init", "plan", "show"}
    for start in starts:
        assert SECRET not in json.dumps(start["argv"])
        assert start["env"][variable]["sha256"] == hashlib.sha256(secret_value.encode()).hexdigest()
        assert start["env"]["TF_IN_AUTOMATION"] == "1" and start["env"]["TF_INPUT"] == "0"
    assert SECRET not in caplog.text
    expected = {"aws": ("AWS_REGION", "eu-west-1"), "azure": ("ARM_TENANT_ID", "tenant-1"),
                "gcp": ("GOOGLE_PROJECT", "dr-project")}[cloud]
    assert starts[0]["env"][expected[0]] == expected[1]


def test_each_step_has_its_own_data_dir_removed_afterwards(fake, store):
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "run6")
    apply_stack(REF, settings, store, record.plan_url, record.plan_sha256)
    dirs = {s["env"]["TF_DATA_DIR"] for s in fake.starts()}
    assert len(dirs) == 2, dirs   # the plan step's and the apply step's: the apply did its own init
    assert not any(Path(d).exists() for d in dirs)
    assert not (fake.roots / "aws" / "dev" / ".terraform").exists()


def test_sensitive_outputs_are_dropped_and_only_named(fake, caplog):
    plan_and_apply(fake, WANT_V1)
    with caplog.at_level("INFO"):
        outputs = stack_outputs(REF, settings_for(fake))
    assert outputs.values == {"vpc_id": "vpc-0abc"} and outputs.sensitive == ["db_password"]
    assert "db_password" in caplog.text and SECRET not in caplog.text
    assert split_outputs({"unmarked": {"value": 1}}) == ({}, ["unmarked"])


def test_a_missing_binary_is_a_clear_error(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TerraformNotFoundError) as raised:
        runner(fake)
    message = str(raised.value)
    assert "'terraform' was not found on PATH" in message and "install" in message and "terraform.binary" in message
    with pytest.raises(TerraformNotFoundError, match="'tofu' was not found"):
        plan_stack(REF, settings_for(fake, binary="tofu"), "plan", None, "run")


def test_drctl_reports_a_missing_binary_in_one_line(fake, monkeypatch, tmp_path, capsys):
    from multicloud_dr.cli import main

    topology = Path(__file__).resolve().parents[2] / "include" / "topology.yaml"
    import yaml

    data = yaml.safe_load(topology.read_text())
    data["terraform"] = {"root": str(fake.roots), "credentials": {"aws": None, "azure": None, "gcp": None}}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["terraform", "output", "--cloud", "aws", "--environment", "dev", "--stack", "always-on"])
    err = capsys.readouterr().err
    assert code == 2 and "drctl: error: 'terraform' was not found on PATH" in err and "Traceback" not in err


# ---------------------------------------------------------------- locks and interrupts


def _start_slow_apply(fake, monkeypatch, seconds: str = "30"):
    """A runner applying a plan of four resources slowly, in a thread; returns (runner, thread, errors)."""
    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    monkeypatch.setenv("FAKE_TERRAFORM_APPLY_SECONDS", seconds)
    tf = runner(fake).__enter__()
    tf.init("backend-always-on.hcl")
    plan = tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            tf.apply(plan.plan_file)
        except BaseException as err:  # handed to the test
            errors.append(err)

    thread = threading.Thread(target=apply)
    thread.start()
    wait_for(lambda: fake.locks() and any(r["event"] == "start" and r["command"] == "apply" for r in fake.records()),
             "terraform apply to start and take the lock")
    return tf, thread, errors


def test_interrupting_an_apply_sends_sigint_and_the_lock_is_released(fake, monkeypatch):
    tf, thread, errors = _start_slow_apply(fake, monkeypatch)
    started = time.monotonic()
    assert tf.interrupt() is True
    thread.join(15)
    tf.__exit__(None, None, None)
    assert not thread.is_alive() and time.monotonic() - started < 10, "terraform did not stop on SIGINT"
    assert len(errors) == 1 and isinstance(errors[0], TerraformInterruptedError), errors

    signals = [r for r in fake.records() if r["event"] == "signal"]
    assert [s["signal"] for s in signals] == ["SIGINT"], "exactly one SIGINT (a second one leaves the lock)"
    exit_record = [r for r in fake.records() if r["event"] == "exit" and r["command"] == "apply"][-1]
    assert exit_record["code"] == 1 and exit_record["lock_released"] is True
    assert fake.locks() == []
    state = fake.state("aws", "dev", "always-on")
    assert 1 <= len(state["resources"]) < 4, "the resource in flight is finished and recorded, the rest not started"
    with runner(fake) as again:  # the state is not locked: a new plan works and shows the rest to do
        again.init("backend-always-on.hcl")
        assert again.plan(again.data_dir / "p.tfplan", variables={"stack": "always-on"}).changes


def test_once_stopped_between_two_commands_no_further_command_starts(fake):
    with runner(fake) as tf:
        tf.init("backend-always-on.hcl")
        assert tf.interrupt() is False  # nothing running at this moment
        with pytest.raises(TerraformInterruptedError, match="not started"):
            tf.plan(tf.data_dir / "p.tfplan", variables={"stack": "always-on"})
    assert fake.starts("plan") == []


def test_the_operator_on_kill_interrupts_terraform(fake, monkeypatch, store):
    from multicloud_dr.operators.terraform import TerraformApplyOperator

    fake.set_scenario({"aws/dev/always-on": WANT_V1})
    settings = settings_for(fake)
    record = plan_stack(REF, settings, "apply", store, "run7")
    monkeypatch.setenv("FAKE_TERRAFORM_APPLY_SECONDS", "30")
    operator = TerraformApplyOperator(task_id="apply", cloud="aws", environment="dev", stack="always-on",
                                      action="apply")
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            apply_stack(REF, settings, store, record.plan_url, record.plan_sha256, on_runner=operator._track)
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=apply)
    thread.start()
    wait_for(lambda: fake.locks() and fake.starts("apply"), "terraform apply to start")
    operator.on_kill()
    thread.join(15)
    assert not thread.is_alive() and isinstance(errors[0], TerraformInterruptedError)
    assert [r["signal"] for r in fake.records() if r["event"] == "signal"] == ["SIGINT"]
    assert fake.locks() == []
    assert not any("/applied-" in n for n in store.blobs.blobs), "an interrupted apply was marked applied"


def test_a_locked_state_fails_a_plan_but_not_the_drift_check(fake, monkeypatch):
    tf, thread, _ = _start_slow_apply(fake, monkeypatch)
    try:
        settings = settings_for(fake)
        with pytest.raises(TerraformLockedError, match="locked by another run"):
            plan_stack(REF, settings, "plan", None, "run")
        drift = check_drift(REF, settings)  # plans with -lock=false: it writes nothing
        assert drift.drifted is True
        assert "-lock=false" in fake.starts("plan")[-1]["argv"]
    finally:
        tf.interrupt()
        thread.join(15)
        tf.__exit__(None, None, None)


# ---------------------------------------------------------------- approval rules


def test_route_after_plan(fake):
    settings = settings_for(fake)
    plan = {"changes": True, "environment": "production", "action": "apply"}
    assert route_after_plan(plan, settings) == NEEDS_APPROVAL
    assert route_after_plan({**plan, "environment": "dev"}, settings) == NO_APPROVAL
    assert route_after_plan({**plan, "environment": "dev", "action": "destroy"}, settings) == NEEDS_APPROVAL
    assert route_after_plan({**plan, "changes": False}, settings) == STOP
    assert route_after_plan({**plan, "action": "plan"}, settings) == STOP


def test_check_approval():
    approved = {"chosen_options": ["Approve"], "params_input": {"confirm_environment": ""},
                "responded_by_user": {"id": "1", "name": "alice"}}
    assert check_approval(approved, environment="production", action="apply") == "alice"
    with pytest.raises(ApprovalError, match="not approved"):
        check_approval({**approved, "chosen_options": ["Reject"]}, environment="production", action="apply")
    with pytest.raises(ApprovalError, match="no"):
        check_approval(None, environment="production", action="apply")
    with pytest.raises(ApprovalError, match="confirm_environment was 'prod'"):
        check_approval({**approved, "params_input": {"confirm_environment": "prod"}}, environment="production",
                       action="destroy")
    confirmed = {**approved, "params_input": {"confirm_environment": "production"}}
    assert check_approval(confirmed, environment="production", action="destroy") == "alice"


# ---------------------------------------------------------------- published outputs


def test_published_outputs_are_read_back_and_a_destroyed_stack_says_so(monkeypatch):
    from multicloud_dr.terraform.outputs import (
        OutputsNotPublishedError,
        outputs_variable_key,
        published_document,
        read_published_outputs,
    )

    ref = StackRef("aws", "dr", "failover")
    key = outputs_variable_key(ref)
    assert key == "terraform_outputs__aws__dr__failover"
    with pytest.raises(OutputsNotPublishedError, match="run environment_provision"):
        read_published_outputs("aws", "dr", "failover")
    document = published_document(ref, {"app_gateway_ip": "203.0.113.7"}, ["db_password"], run_id="r1")
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", json.dumps(document))
    assert read_published_outputs("aws", "dr", "failover") == {"app_gateway_ip": "203.0.113.7"}
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", json.dumps({**document, "outputs": {}, "destroyed": True}))
    with pytest.raises(OutputsNotPublishedError, match="was destroyed by run r1"):
        read_published_outputs("aws", "dr", "failover")
