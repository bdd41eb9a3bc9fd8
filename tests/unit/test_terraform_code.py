"""Static checks of the Terraform code under include/terraform.

The terraform binary is not installable here, so these tests parse the HCL with python-hcl2 and
check what `terraform validate` would (a module call passes only declared variables and every
required one; every `var.x` is declared) plus the project's own contract: thin roots with a
partial backend per stack (the provisioning runner runs `terraform init
-backend-config=backend-<stack>.hcl` and `terraform plan -var=stack=<stack>` with nothing else),
secure defaults (no database reachable from 0.0.0.0/0), and no typed-in App Gateway backend IP.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "include" / "terraform"
MODULES = TERRAFORM / "modules"
ENVIRONMENTS = TERRAFORM / "environments"

CLOUDS = ("aws", "azure", "gcp")
ENVS = ("dev", "staging", "production", "dr")
STACKS = ("always-on", "failover")
BACKEND_TYPE = {"aws": "s3", "azure": "azurerm", "gcp": "gcs"}
# The argument of a backend that names the state: it must come from the per-stack file only.
STATE_KEY_ARGUMENT = {"aws": "key", "azure": "key", "gcp": "prefix"}

EXPECTED_MODULES = (
    "aws-backup-iam",
    "aws-eks",
    "aws-network",
    "aws-rds-mysql",
    "azure-always-on",
    "azure-failover",
    "gcp-always-on",
    "gcp-failover",
    "traffic",
    "vpn",
)
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
META_ARGUMENTS = {"source", "version", "count", "for_each", "providers", "depends_on"}

# Outputs the other DAGs read, per cloud (null where a stack does not create them).
REQUIRED_OUTPUTS = {
    "aws": {"stack", "app_endpoint", "cluster_name", "database_endpoint", "cloudfront_distribution_id"},
    "azure": {
        "stack",
        "app_endpoint",
        "cluster_name",
        "database_endpoint",
        "app_gateway_public_ip",
        "backup_container",
    },
    "gcp": {"stack", "app_endpoint", "cluster_name", "database_endpoint", "ingress_ip", "backup_bucket"},
}

# Sources meaning "anyone on the internet" in AWS, Azure and GCP rules.
OPEN_TO_THE_WORLD = {"0.0.0.0/0", "::/0", "*", "Internet", "any"}
DATABASE_PORTS = {3306, 5432}

_PARSE_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=_PARSE_OPTIONS)


def hcl_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*") if p.suffix in {".tf", ".hcl", ".tfvars"} and p.is_file())


def blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """Single-label blocks (variable, output, module) of one file as (name, body)."""
    return [(name, body) for block in parse(path).get(kind, []) for name, body in block.items()]


def resources(directory: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource block of a directory's .tf files."""
    found = []
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    found.append((rtype, name, body))
    return found


def variables(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in blocks(directory / "variables.tf", "variable")}


def outputs(directory: Path) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in blocks(directory / "outputs.tf", "output")}


def module_calls(root: Path) -> list[tuple[str, dict[str, Any]]]:
    return [call for path in sorted(root.glob("*.tf")) for call in blocks(path, "module")]


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def root_dirs() -> list[Path]:
    return sorted(p for p in ENVIRONMENTS.glob("*/*") if p.is_dir())


def backend(root: Path) -> tuple[str, dict[str, Any]]:
    (terraform,) = parse(root / "versions.tf")["terraform"]
    (backend_block,) = terraform["backend"]
    ((kind, settings),) = backend_block.items()
    return kind, settings


def strings(value: Any) -> list[str]:
    """Every string inside a parsed HCL value (nested lists and dicts included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def is_literal_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def test_every_hcl_file_parses() -> None:
    files = hcl_files()
    assert len(files) > 50, "expected the modules and twelve roots under include/terraform"
    for path in files:
        assert isinstance(parse(path), dict), path


# --- modules ---------------------------------------------------------------------------------


def test_the_expected_modules_exist_with_their_files() -> None:
    assert tuple(p.name for p in module_dirs()) == EXPECTED_MODULES
    for module in module_dirs():
        missing = [name for name in MODULE_FILES if not (module / name).is_file()]
        assert not missing, f"{module.name} lacks {missing}"


@pytest.mark.parametrize("module", EXPECTED_MODULES)
def test_module_variables_are_typed_and_described(module: str) -> None:
    declared = variables(MODULES / module)
    assert declared, f"{module} declares no variable"
    for name, body in declared.items():
        assert "type" in body, f"{module}: variable {name} has no type"
        assert str(body.get("description", "")).strip(), f"{module}: variable {name} has no description"


@pytest.mark.parametrize("module", EXPECTED_MODULES)
def test_module_outputs_are_described(module: str) -> None:
    declared = outputs(MODULES / module)
    assert declared, f"{module} declares no output"
    for name, body in declared.items():
        assert str(body.get("description", "")).strip(), f"{module}: output {name} has no description"


@pytest.mark.parametrize("module", EXPECTED_MODULES)
def test_module_readme_names_every_input_and_output(module: str) -> None:
    readme = (MODULES / module / "README.md").read_text()
    names = [*variables(MODULES / module), *outputs(MODULES / module)]
    missing = [name for name in names if f"`{name}`" not in readme and f"{name}`" not in readme]
    assert not missing, f"{module}/README.md does not mention {missing}"


@pytest.mark.parametrize("directory", [*EXPECTED_MODULES, *[f"../environments/{c}/{e}" for c in CLOUDS for e in ENVS]])
def test_versions_pin_terraform_and_every_provider(directory: str) -> None:
    (terraform,) = parse(MODULES / directory / "versions.tf")["terraform"]
    assert str(terraform.get("required_version", "")).startswith(">="), directory
    providers = {name: spec for block in terraform["required_providers"] for name, spec in block.items()}
    assert providers, f"{directory} requires no provider"
    for name, spec in providers.items():
        assert spec["source"].count("/") == 1, f"{directory}: provider {name} has no source"
        assert re.fullmatch(r"~> \d+\.\d+", spec["version"]), (
            f"{directory}: provider {name} must be pinned to a minor range like ~> 5.80, not {spec['version']!r}"
        )


@pytest.mark.parametrize("directory", [*EXPECTED_MODULES, *[f"../environments/{c}/{e}" for c in CLOUDS for e in ENVS]])
def test_every_variable_reference_is_declared(directory: str) -> None:
    path = (MODULES / directory).resolve()
    declared = set(variables(path))
    text = "\n".join(p.read_text() for p in path.glob("*.tf"))
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", text))
    assert used <= declared, f"{path.relative_to(TERRAFORM)} uses undeclared variables {sorted(used - declared)}"


def test_secret_inputs_are_sensitive_and_not_defaulted_to_a_value() -> None:
    for directory in [*module_dirs(), *root_dirs()]:
        for name, body in variables(directory).items():
            if body["type"] == "string" and re.search(r"password|preshared|secret_key|token", name):
                where = directory.relative_to(TERRAFORM)
                assert body.get("sensitive") is True, f"{where}: variable {name} must be sensitive = true"
                assert body.get("default") is None, f"{where}: variable {name} must not have a default value"


def test_no_output_exposes_a_secret_unless_sensitive() -> None:
    for directory in [*module_dirs(), *root_dirs()]:
        for name, body in outputs(directory).items():
            value = " ".join(strings(body.get("value")))
            if re.search(r"random_password\.\w+\.result|\.(administrator_)?password\b|\.secret_data|\.shared_key"
                         r"|var\.\w*(password|preshared)", value):
                where = directory.relative_to(TERRAFORM)
                assert body.get("sensitive") is True, f"{where}: output {name} leaks a secret"


# --- environments ----------------------------------------------------------------------------


def test_exactly_twelve_environment_roots() -> None:
    found = {(p.parent.name, p.name) for p in root_dirs()}
    assert found == {(cloud, env) for cloud in CLOUDS for env in ENVS}
    assert sorted(p.name for p in ENVIRONMENTS.iterdir() if p.is_dir()) == list(CLOUDS)


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_root_is_thin_and_calls_modules_by_relative_path(root: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "terraform.tfvars"):
        assert (root / name).is_file(), f"{root} lacks {name}"
    assert not resources(root), f"{root}: roots only call modules, resources belong in modules/"
    calls = module_calls(root)
    assert calls, f"{root} calls no module"
    for name, call in calls:
        source = call["source"]
        assert source.startswith("../../../modules/"), f"{root}: module {name} source {source!r}"
        target = (root / source).resolve()
        assert target.parent == MODULES.resolve() and target.is_dir(), f"{root}: module {name} -> {target}"


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_module_calls_match_the_modules_variables(root: Path) -> None:
    for name, call in module_calls(root):
        declared = variables((root / call["source"]).resolve())
        passed = set(call) - META_ARGUMENTS
        unknown = passed - set(declared)
        assert not unknown, f"{root}: module {name} passes undeclared variables {sorted(unknown)}"
        required = {var for var, body in declared.items() if "default" not in body}
        missing = required - passed
        assert not missing, f"{root}: module {name} does not pass required variables {sorted(missing)}"


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_root_has_a_partial_backend_and_one_state_per_stack(root: Path) -> None:
    cloud, env = root.parent.name, root.name
    kind, settings = backend(root)
    assert kind == BACKEND_TYPE[cloud], f"{root}: backend {kind}, expected {BACKEND_TYPE[cloud]}"
    assert STATE_KEY_ARGUMENT[cloud] not in settings, f"{root}: the state key belongs in backend-<stack>.hcl"
    if cloud == "aws":
        assert settings.get("dynamodb_table") and settings.get("encrypt") is True
    for stack in STACKS:
        config = parse(root / f"backend-{stack}.hcl")
        expected = f"gcp/{env}/{stack}" if cloud == "gcp" else f"{cloud}/{env}/{stack}.tfstate"
        assert config == {STATE_KEY_ARGUMENT[cloud]: expected}, f"{root}/backend-{stack}.hcl"


def test_state_keys_are_unique_across_roots_and_stacks() -> None:
    keys = [next(iter(parse(root / f"backend-{stack}.hcl").values())) for root in root_dirs() for stack in STACKS]
    assert len(keys) == len(set(keys)) == 24


@pytest.mark.parametrize(
    "root", [r for r in root_dirs() if r.parent.name != "aws"], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_remote_state_reads_the_always_on_stack_of_the_same_backend(root: Path) -> None:
    """The failover stack finds the always-on state where backend-always-on.hcl puts it (AWS's is empty)."""
    cloud, env = root.parent.name, root.name
    main = (root / "main.tf").read_text()
    (local_values,) = [block for block in parse(root / "main.tf")["locals"]]
    key_name = "always_on_state_prefix" if cloud == "gcp" else "always_on_state_key"
    rendered = local_values[key_name].replace("${var.environment}", env)
    assert rendered == next(iter(parse(root / "backend-always-on.hcl").values()))
    _, settings = backend(root)
    for value in settings.values():
        if isinstance(value, str):
            assert f'"{value}"' in main, f"{root}: remote state config does not repeat backend setting {value!r}"


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stack_variable_splits_the_modules(root: Path) -> None:
    stack = variables(root)["stack"]
    assert stack["type"] == "string"
    condition = str(stack["validation"][0]["condition"])
    assert "always-on" in condition and "failover" in condition
    assert "default" not in stack, "the runner passes -var=stack=<stack>; a default would hide a missing one"
    for name, call in module_calls(root):
        count = str(call.get("count", ""))
        assert "always_on" in count or "failover" in count or "var.stack" in count, (
            f"{root}: module {name} must be counted in or out by the stack"
        )
    if root.parent.name in {"azure", "gcp"}:
        failover_sources = [c["source"] for _, c in module_calls(root) if "failover" in str(c.get("count", ""))]
        assert failover_sources == [f"../../../modules/{root.parent.name}-failover"], (
            f"{root}: the failover stack must create the DR site with the {root.parent.name}-failover module"
        )


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tfvars_set_only_declared_variables_and_every_required_one(root: Path) -> None:
    declared = variables(root)
    tfvars = parse(root / "terraform.tfvars")
    assert set(tfvars) <= set(declared), f"{root}: tfvars sets undeclared {sorted(set(tfvars) - set(declared))}"
    required = {name for name, body in declared.items() if "default" not in body} - {"stack"}
    missing = required - set(tfvars)
    assert not missing, f"{root}: plan -input=false would stop on unset variables {sorted(missing)}"
    assert tfvars["environment"] == root.name
    for name, body in declared.items():
        assert "type" in body and str(body.get("description", "")).strip(), f"{root}: variable {name}"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_environment_sizes_differ(cloud: str) -> None:
    sized = {env: parse(ENVIRONMENTS / cloud / env / "terraform.tfvars") for env in ENVS}
    size_keys = [key for key in sized["production"] if re.search(r"node|database|mysql|capacity", key)]
    assert size_keys, f"{cloud}: no sizes in terraform.tfvars"
    for key in size_keys:
        assert sized["dev"][key] != sized["production"][key], f"{cloud}: {key} is the same in dev and production"
    assert len({repr([sized[env][k] for k in size_keys]) for env in ENVS}) == len(ENVS)


@pytest.mark.parametrize("root", root_dirs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_root_publishes_the_outputs_the_dags_read(root: Path) -> None:
    declared = outputs(root)
    missing = REQUIRED_OUTPUTS[root.parent.name] - set(declared)
    assert not missing, f"{root} lacks outputs {sorted(missing)}"
    for name, body in declared.items():
        assert str(body.get("description", "")).strip(), f"{root}: output {name} has no description"


def test_roots_of_one_cloud_differ_only_in_tfvars_and_backend_files() -> None:
    """No copy-pasted environments: the .tf wiring is the same, what differs is data."""
    for cloud in CLOUDS:
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            texts = {(ENVIRONMENTS / cloud / env / name).read_text() for env in ENVS}
            assert len(texts) == 1, f"{cloud}/*/{name} drifted between environments"


# --- secure defaults -------------------------------------------------------------------------


def _ports(rule: dict[str, Any]) -> set[int] | None:
    """Ports a rule admits; None means all ports (or not knowable statically)."""
    low = rule.get("from_port", rule.get("port"))
    high = rule.get("to_port", low)
    ranges = rule.get("destination_port_range") or rule.get("destination_port_ranges")
    if ranges is not None:
        found: set[int] = set()
        for item in strings(ranges):
            if item == "*":
                return None
            first, _, last = item.partition("-")
            found |= set(range(int(first), int(last or first) + 1))
        return found
    if isinstance(low, int) and isinstance(high, int):
        return set(range(low, high + 1)) if (low, high) != (0, 0) else None
    if "ports" in rule:
        items = strings(rule["ports"])
        return {int(p) for item in items for p in [item.split("-")[0]]} if items else None
    return None


def _open_rules() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, resource, rule) of every rule that admits traffic from anywhere."""
    found = []
    for module in module_dirs():
        for rtype, name, body in resources(module):
            where = f"{module.name}: {rtype}.{name}"
            candidates: list[dict[str, Any]] = []
            if rtype == "aws_security_group":
                candidates += [r for r in body.get("ingress", []) if isinstance(r, dict)]
            if rtype == "aws_security_group_rule" and body.get("type") == "ingress":
                candidates.append(body)
            if rtype == "aws_vpc_security_group_ingress_rule":
                candidates.append(body)
            if rtype == "azurerm_network_security_group":
                candidates += [r for r in body.get("security_rule", []) if isinstance(r, dict)]
            if rtype == "azurerm_network_security_rule":
                candidates.append(body)
            if rtype == "google_compute_firewall" and body.get("allow"):
                candidates += [{**body, "ports": a.get("ports", [])} for a in body["allow"]]
            for rule in candidates:
                inbound = rule.get("direction", "Inbound") in {"Inbound", "INGRESS"}
                if rule.get("access", "Allow") != "Allow" or not inbound:
                    continue
                sources = strings(
                    {k: v for k, v in rule.items() if re.search(r"cidr|source_address|source_ranges", k)}
                )
                if OPEN_TO_THE_WORLD & set(sources):
                    found.append((where, name, rule))
    return found


def test_no_firewall_rule_opens_a_database_port_to_the_world() -> None:
    for where, _, rule in _open_rules():
        ports = _ports(rule)
        assert ports is not None, f"{where} admits every port from anywhere"
        assert not ports & DATABASE_PORTS, f"{where} admits a database port from anywhere"


def test_rds_admits_only_the_given_cidrs_which_can_never_be_the_world() -> None:
    module = MODULES / "aws-rds-mysql"
    rules = [(t, b) for t, _, b in resources(module) if "security_group" in t and "rule" in t]
    assert rules, "aws-rds-mysql has no security group rule"
    for rtype, body in rules:
        assert body.get("from_port") == 3306 and body.get("to_port") == 3306, rtype
        assert body.get("cidr_ipv4") == "${each.key}" and "var.allowed_cidr_blocks" in body["for_each"], rtype
    (instance,) = [b for t, _, b in resources(module) if t == "aws_db_instance"]
    assert instance["publicly_accessible"] is False and instance["storage_encrypted"] is True
    condition = str(variables(module)["allowed_cidr_blocks"]["validation"][0]["condition"])
    assert "/0" in condition, "allowed_cidr_blocks must refuse /0 ranges"
    for root in (ENVIRONMENTS / "aws").iterdir():
        (call,) = [c for n, c in module_calls(root) if c["source"].endswith("/aws-rds-mysql")]
        assert "app_subnet_cidrs" in call["allowed_cidr_blocks"], f"{root}: the database must admit the app subnets"
        passed = strings(call["allowed_cidr_blocks"]) + strings(parse(root / "terraform.tfvars"))
        assert not OPEN_TO_THE_WORLD & set(passed), f"{root} opens the database to the world"


def test_dr_databases_are_private() -> None:
    (cloud_sql,) = [b for t, _, b in resources(MODULES / "gcp-failover") if t == "google_sql_database_instance"]
    ip_config = cloud_sql["settings"][0]["ip_configuration"][0]
    assert ip_config["ipv4_enabled"] is False, "Cloud SQL must have no public IP"
    assert "authorized_networks" not in ip_config, "Cloud SQL must not list authorized networks"
    assert cloud_sql["settings"][0]["backup_configuration"][0]["enabled"] is True

    azure = resources(MODULES / "azure-failover")
    (mysql,) = [b for t, _, b in azure if t == "azurerm_mysql_flexible_server"]
    assert mysql.get("delegated_subnet_id") and mysql.get("private_dns_zone_id"), "MySQL must use private access"
    assert not [t for t, _, _ in azure if "firewall_rule" in t], "a private MySQL server has no firewall rules"


def test_backup_storage_is_private_and_encrypted() -> None:
    azure = {t: b for t, _, b in resources(MODULES / "azure-always-on")}
    account = azure["azurerm_storage_account"]
    assert account["min_tls_version"] == "TLS1_2"
    assert account["allow_nested_items_to_be_public"] is False
    assert account["infrastructure_encryption_enabled"] is True
    blob = account["blob_properties"][0]
    assert blob["versioning_enabled"] is True and blob["delete_retention_policy"]
    assert azure["azurerm_storage_container"]["container_access_type"] == "private"
    rule = azure["azurerm_storage_management_policy"]["rule"][0]
    assert "delete_after_days_since_modification_greater_than" in rule["actions"][0]["base_blob"][0]
    assert variables(MODULES / "azure-always-on")["lifecycle_delete_after_days"]["default"] == 35

    (bucket,) = [b for t, _, b in resources(MODULES / "gcp-always-on") if t == "google_storage_bucket"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"][0]["enabled"] is True
    assert bucket["lifecycle_rule"], "the backup bucket needs a lifecycle rule"


def test_app_gateway_backend_is_never_a_literal_ip() -> None:
    (gateway,) = [b for t, _, b in resources(MODULES / "azure-failover") if t == "azurerm_application_gateway"]
    for pool in gateway["backend_address_pool"]:
        for key in ("ip_addresses", "fqdns"):
            values = strings(pool.get(key, []))
            assert all(v.startswith("${") for v in values), f"backend pool {key} must come from a variable: {values}"
    literal = [v for v in strings(gateway) if is_literal_ip(v)]
    assert not literal, f"literal IPs in the Application Gateway: {literal}"
    for root in (ENVIRONMENTS / "azure").iterdir():
        (call,) = [c for _, c in module_calls(root) if c["source"].endswith("/azure-failover")]
        addresses = strings(call["app_backend_addresses"])
        assert addresses, f"{root}: no backend addresses"
        for address in addresses:
            assert address.startswith("${") and re.search(r"module\.|outputs\.", address), (
                f"{root}: the App Gateway backend must be fed from a module output, not {address!r}"
            )
            assert not is_literal_ip(address), f"{root}: literal backend IP {address}"


def test_traffic_module_fails_over_over_https_only() -> None:
    traffic = {(t, n): b for t, n, b in resources(MODULES / "traffic")}
    records = [b for (t, _), b in traffic.items() if t == "aws_route53_record" and "failover_routing_policy" in b]
    assert {r["failover_routing_policy"][0]["type"] for r in records} == {"PRIMARY", "SECONDARY"}
    assert all(r.get("health_check_id") for r in records)
    distribution = traffic[("aws_cloudfront_distribution", "this")]
    assert distribution["viewer_certificate"][0]["minimum_protocol_version"] == "TLSv1.2_2021"
    assert distribution["origin_group"], "CloudFront needs an origin group (primary -> DR)"
    origin = distribution["dynamic"][0]["origin"]["content"][0]["custom_origin_config"][0]
    assert origin["origin_protocol_policy"] == "https-only"
    assert ("cloudflare_load_balancer", "this") in traffic
    assert ("cloudflare_load_balancer_monitor", "https") in traffic
