"""Static checks of the workstation stack: docker-compose.yaml and Dockerfile.

No Docker engine exists on CI, so the stack is never started here; these tests parse the files and
check the properties that would otherwise only fail on a developer's machine (or leak a secret).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
PYPROJECT = REPO_ROOT / "pyproject.toml"

EXPECTED_AIRFLOW_VERSION = "3.3.2"

# Airflow component -> the command its service runs.
AIRFLOW_COMMANDS = {
    "api-server": "api-server",
    "scheduler": "scheduler",
    "dag-processor": "dag-processor",
    "triggerer": "triggerer",
    "worker": "celery worker",
}

# Settings that every Airflow component must agree on.
SHARED_AIRFLOW_SETTINGS = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)

# Connection ids the DAGs use by default -> the compose service that stands in for the real thing.
LAB_CONNECTIONS = {
    "AIRFLOW_CONN_MYSQL_PRIMARY": "mariadb-primary",
    "AIRFLOW_CONN_MYSQL_DR": "mariadb-dr",
    "AIRFLOW_CONN_AZURE_BLOB_DR": "azurite",
    "AIRFLOW_CONN_AWS_PRIMARY": "moto",
}

# Credentials of the emulators that are public and documented by their vendors, and may therefore
# appear literally: moto's dummy AWS key pair.  (Azurite's account key lives inside a connection
# string, which the checks below do not treat as a password field.)
PUBLIC_EMULATOR_CREDENTIALS = {"testing"}

SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET", re.IGNORECASE)
# scheme://user:password@host -- the password group may be empty (e.g. redis://:@redis).
URI_CREDENTIALS_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<password>[^@/\s]*)@", re.IGNORECASE)


# --------------------------------------------------------------------------------------- helpers ---
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE} does not parse to a mapping"
    assert isinstance(data.get("services"), dict) and data["services"], f"{COMPOSE_FILE} has no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile_instructions() -> list[str]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return _dockerfile_instructions(DOCKERFILE.read_text())


def _dockerfile_instructions(text: str) -> list[str]:
    """Instructions of a Dockerfile, comments dropped and backslash continuations joined."""
    instructions: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        instructions.append(current + line)
        current = ""
    if current:
        instructions.append(current.strip())
    return instructions


def _from_images(instructions: list[str]) -> list[str]:
    images = []
    for instruction in instructions:
        match = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)", instruction, re.IGNORECASE)
        if match:
            images.append(match.group(1))
    return images


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    return " ".join(str(command).split())


def _image_tag_problem(image: str) -> str | None:
    """Why `image` is not pinned to an explicit tag, or None when it is."""
    if "${" in image or "$" in image:
        return "uses a variable, so its tag is not fixed in the file"
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag (implicitly :latest)"
    tag = name.split(":", 1)[1]
    if tag.lower() == "latest":
        return "is tagged :latest"
    if not re.search(r"\d", tag):
        return f"uses the floating tag {tag!r} (no version number in it)"
    return None


def _is_airflow_service(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("apache/airflow")


def _airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if _is_airflow_service(svc)}


def _find_airflow_component(services: dict[str, dict[str, Any]], component: str) -> str | None:
    command = AIRFLOW_COMMANDS[component]
    for name, svc in _airflow_services(services).items():
        if _command(svc) == command or name == f"airflow-{component}":
            return name
    return None


def _find_by_image(services: dict[str, dict[str, Any]], repository: str) -> list[str]:
    return [
        name
        for name, svc in services.items()
        if str(svc.get("image", "")).split("@", 1)[0].rsplit(":", 1)[0] == repository
    ]


def _requirements_airflow_pin() -> str:
    assert REQUIREMENTS.is_file(), f"{REQUIREMENTS} is missing"
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"\s*apache-airflow\s*==\s*([^\s;#]+)", line)
        if match:
            return match.group(1)
    pytest.fail(f"{REQUIREMENTS} has no `apache-airflow==X` pin")


def _airflow_base_image(instructions: list[str]) -> str:
    airflow_images = [img for img in _from_images(instructions) if img.startswith("apache/airflow:")]
    assert airflow_images, f"{DOCKERFILE} has no `FROM apache/airflow:<tag>` line"
    return airflow_images[0]


# ----------------------------------------------------------------------------------------- tests ---
def test_every_image_is_pinned(
    services: dict[str, dict[str, Any]], dockerfile_instructions: list[str]
) -> None:
    for name, svc in services.items():
        if "image" in svc:
            problem = _image_tag_problem(str(svc["image"]))
            assert problem is None, f"service {name!r}: image {svc['image']!r} {problem}; pin a version tag"
        else:
            assert "build" in svc, f"service {name!r} has neither an image nor a build"
    built = [name for name, svc in services.items() if "build" in svc and "image" not in svc]
    if built:
        froms = _from_images(dockerfile_instructions)
        assert froms, f"services {built} build {DOCKERFILE}, which has no FROM line"
        for image in froms:
            problem = _image_tag_problem(image)
            assert problem is None, (
                f"{DOCKERFILE}: base image {image!r} (used by {built}) {problem}; pin a version tag"
            )


def test_build_context_is_the_repository(compose: dict[str, Any]) -> None:
    anchor = compose.get("x-airflow-common")
    assert isinstance(anchor, dict), "docker-compose.yaml has no x-airflow-common block"
    build = anchor.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    assert context in (".", "./"), f"x-airflow-common must `build: .` from the repository root, got {build!r}"


def test_dockerfile_airflow_version_matches_requirements(dockerfile_instructions: list[str]) -> None:
    image = _airflow_base_image(dockerfile_instructions)
    tag = image.split(":", 1)[1]
    match = re.fullmatch(r"(?P<version>\d+\.\d+\.\d+)(?:-python(?P<python>\d+\.\d+))?", tag)
    assert match, f"{DOCKERFILE}: Airflow tag {tag!r} is not of the form X.Y.Z[-pythonA.B]"
    version = match.group("version")
    assert version == EXPECTED_AIRFLOW_VERSION, (
        f"{DOCKERFILE}: FROM uses Airflow {version}, expected exactly {EXPECTED_AIRFLOW_VERSION}"
    )
    pin = _requirements_airflow_pin()
    assert version == pin, (
        f"{DOCKERFILE} builds on Airflow {version} but {REQUIREMENTS.name} pins apache-airflow=={pin}"
    )
    assert match.group("python"), (
        f"{DOCKERFILE}: tag {tag!r} does not pin the Python version (-pythonX.Y); it would float with "
        "the image's default"
    )


def test_dockerfile_python_satisfies_requires_python(dockerfile_instructions: list[str]) -> None:
    if not PYPROJECT.is_file():
        pytest.skip(f"{PYPROJECT} not present")
    requires = tomllib.loads(PYPROJECT.read_text()).get("project", {}).get("requires-python")
    if not requires:
        pytest.skip("pyproject.toml declares no requires-python")
    from packaging.specifiers import SpecifierSet

    tag = _airflow_base_image(dockerfile_instructions).split(":", 1)[1]
    python = re.search(r"-python(\d+\.\d+)$", tag)
    assert python, f"{DOCKERFILE}: tag {tag!r} does not name its Python version"
    assert SpecifierSet(requires).contains(f"{python.group(1)}.0"), (
        f"{DOCKERFILE}: image Python {python.group(1)} does not satisfy requires-python {requires!r}"
    )


def test_dockerfile_installs_requirements_and_project(dockerfile_instructions: list[str]) -> None:
    copies = {}
    for instruction in dockerfile_instructions:
        parts = instruction.split()
        if parts[0].upper() in ("COPY", "ADD"):
            args = [p for p in parts[1:] if not p.startswith("--")]
            for source in args[:-1]:
                copies[source.rstrip("/")] = args[-1]
    assert "requirements.txt" in copies, f"{DOCKERFILE} never COPYs requirements.txt into the image"
    destination = copies["requirements.txt"]
    if destination.endswith("/"):
        destination += "requirements.txt"
    runs = [i for i in dockerfile_instructions if i.split()[0].upper() == "RUN"]
    assert any(
        re.search(rf"pip\S*\s+install\b.*\s-r\s*{re.escape(destination)}(\s|$)", run) for run in runs
    ), f"{DOCKERFILE} copies requirements.txt to {destination} but no RUN does `pip install -r {destination}`"
    assert "pyproject.toml" in copies and "plugins" in copies, (
        f"{DOCKERFILE} must COPY pyproject.toml and plugins/ to install the multicloud_dr package"
    )
    assert any(re.search(r"pip\S*\s+install\b.*--no-deps", run) for run in runs), (
        f"{DOCKERFILE} never installs the project package (`pip install --no-deps ...`)"
    )


def test_required_services_exist(services: dict[str, dict[str, Any]]) -> None:
    missing = [c for c in AIRFLOW_COMMANDS if _find_airflow_component(services, c) is None]
    assert not missing, f"no Airflow service runs {[AIRFLOW_COMMANDS[c] for c in missing]}"
    assert "postgres" in services or _find_by_image(services, "postgres"), "no postgres metadata DB service"
    assert "redis" in services or _find_by_image(services, "redis"), "no redis (Celery broker) service"
    init = services.get("airflow-init")
    assert init is not None, "no airflow-init service (db migrate)"
    assert "db migrate" in _command(init), "airflow-init does not run `airflow db migrate`"


def test_lab_services_exist(services: dict[str, dict[str, Any]]) -> None:
    expected_images = {
        "mariadb-primary": "mariadb",
        "mariadb-dr": "mariadb",
        "azurite": "mcr.microsoft.com/azure-storage/azurite",
        "moto": "motoserver/moto",
    }
    for name, repository in expected_images.items():
        assert name in services, f"lab service {name!r} is missing; the DAGs' default connections need it"
        assert name in _find_by_image(services, repository), (
            f"service {name!r} should run a {repository} image, got {services[name].get('image')!r}"
        )


def test_mariadb_replication_flags(services: dict[str, dict[str, Any]]) -> None:
    server_ids = {}
    for name in ("mariadb-primary", "mariadb-dr"):
        command = _command(services[name]).split()
        for flag in ("--log-bin", "--binlog-format=ROW", "--gtid-strict-mode=ON"):
            assert any(part == flag or part.startswith(f"{flag}=") for part in command), (
                f"{name}: command lacks {flag} (binlog/GTID replication needs it)"
            )
        ids = [part.split("=", 1)[1] for part in command if part.startswith("--server-id=")]
        assert ids, f"{name}: command sets no --server-id"
        server_ids[name] = ids[0]
    assert len(set(server_ids.values())) == len(server_ids), f"MariaDB server ids collide: {server_ids}"


def test_airflow_services_share_settings(services: dict[str, dict[str, Any]]) -> None:
    airflow = _airflow_services(services)
    assert airflow, "no Airflow services found (none uses the built image)"
    for setting in SHARED_AIRFLOW_SETTINGS:
        values = {name: _environment(svc).get(setting) for name, svc in airflow.items()}
        unset = sorted(name for name, value in values.items() if not value)
        assert not unset, f"{setting} is not set on Airflow services {unset}"
        assert len(set(values.values())) == 1, f"Airflow services disagree on {setting}: {values}"
    env = _environment(next(iter(airflow.values())))
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", "executor must be CeleryExecutor"
    assert re.fullmatch(r"\$\{AIRFLOW_JWT_SECRET:\?[^}]*\}", env["AIRFLOW__API_AUTH__JWT_SECRET"]), (
        "AIRFLOW__API_AUTH__JWT_SECRET must be `${AIRFLOW_JWT_SECRET:?...}` (required, never a literal), "
        f"got {env['AIRFLOW__API_AUTH__JWT_SECRET']!r}"
    )
    url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    match = re.fullmatch(r"https?://([^:/]+):(\d+)/execution/?", url)
    assert match, (
        f"AIRFLOW__CORE__EXECUTION_API_SERVER_URL {url!r} is not http://<api-server>:<port>/execution/"
    )
    api_name = _find_airflow_component(services, "api-server")
    assert match.group(1) == api_name, (
        f"AIRFLOW__CORE__EXECUTION_API_SERVER_URL points at {match.group(1)!r}, "
        f"but the api-server service is {api_name!r}"
    )


def test_connections_parse_and_point_at_lab_services(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow_services(services).items():
        env = _environment(svc)
        for key in LAB_CONNECTIONS:
            assert key in env, f"service {name!r} lacks {key}"
        for key, value in env.items():
            if not key.startswith("AIRFLOW_CONN_"):
                continue
            text = value.strip()
            if text.startswith("{"):
                try:
                    parsed = json.loads(text)
                except json.JSONDecodeError as exc:
                    pytest.fail(f"service {name!r}: {key} looks like JSON but does not parse: {exc}")
                assert isinstance(parsed, dict) and parsed.get("conn_type"), (
                    f"service {name!r}: {key} JSON has no conn_type"
                )
                if key in LAB_CONNECTIONS:
                    assert LAB_CONNECTIONS[key] in json.dumps(parsed), (
                        f"service {name!r}: {key} does not point at the {LAB_CONNECTIONS[key]!r} service"
                    )
            elif key in LAB_CONNECTIONS:
                match = re.match(r"[a-z0-9+]+://(?:[^@/]*@)?([^:/?]+)", text)
                assert match and match.group(1) == LAB_CONNECTIONS[key], (
                    f"service {name!r}: {key} host should be {LAB_CONNECTIONS[key]!r}, got {text!r}"
                )
    env = _environment(next(iter(_airflow_services(services).values())))
    aws = json.loads(env["AIRFLOW_CONN_AWS_PRIMARY"])
    assert aws["conn_type"] == "aws", "AIRFLOW_CONN_AWS_PRIMARY must have conn_type aws"
    assert aws["extra"].get("endpoint_url") == "http://moto:5000", (
        "AWS connection must use endpoint http://moto:5000"
    )
    assert aws["extra"].get("region_name") == "us-east-1", "AWS connection must use region_name us-east-1"
    wasb = json.loads(env["AIRFLOW_CONN_AZURE_BLOB_DR"])
    assert wasb["conn_type"] == "wasb", "AIRFLOW_CONN_AZURE_BLOB_DR must have conn_type wasb"
    assert "connection_string" in wasb.get("extra", {}), (
        "AIRFLOW_CONN_AZURE_BLOB_DR needs extra.connection_string"
    )


def _literal_secrets(key: str, value: str) -> list[str]:
    """Problems with `value` (of environment key `key`) carrying a literal credential."""
    problems = []
    if SECRET_KEY_RE.search(key) and value and "${" not in value and value not in PUBLIC_EMULATOR_CREDENTIALS:
        problems.append(f"{key} holds a literal value; use a ${{VAR:?...}} substitution")
    for match in URI_CREDENTIALS_RE.finditer(value):
        password = match.group("password")
        if password and not password.startswith("${"):
            problems.append(f"{key} has a URI with a literal password ({match.group(0)!r})")
    if value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return problems
        stack = [parsed]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for k, v in node.items():
                    if isinstance(v, (dict, list)):
                        stack.append(v)
                    elif (
                        SECRET_KEY_RE.search(str(k))
                        and v
                        and "${" not in str(v)
                        and v not in PUBLIC_EMULATOR_CREDENTIALS
                    ):
                        problems.append(f"{key} JSON field {k!r} holds a literal value")
            elif isinstance(node, list):
                stack.extend(node)
    return problems


def test_no_literal_passwords(services: dict[str, dict[str, Any]]) -> None:
    problems = []
    for name, svc in services.items():
        for key, value in _environment(svc).items():
            problems += [f"service {name!r}: {p}" for p in _literal_secrets(key, value)]
    assert not problems, "literal credentials in docker-compose.yaml:\n" + "\n".join(problems)


def test_secret_checker_catches_literals() -> None:
    """The checker above must itself flag what it is meant to flag."""
    assert _literal_secrets("POSTGRES_PASSWORD", "airflow")
    assert _literal_secrets("X", "postgresql://airflow:airflow@postgres/airflow")
    assert _literal_secrets("AIRFLOW_CONN_X", '{"conn_type": "mysql", "password": "hunter2"}')
    assert not _literal_secrets("POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:?set it}")
    assert not _literal_secrets("X", "mysql://root:${PW:?set it}@mariadb-primary:3306")
    assert not _literal_secrets("X", "redis://:@redis:6379/0")


def test_airflow_mounts(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow_services(services).items():
        volumes = [
            str(v) if not isinstance(v, dict) else f"{v.get('source')}:{v.get('target')}"
            for v in svc.get("volumes") or []
        ]
        for mount in (
            "./dags:/opt/airflow/dags",
            "./plugins:/opt/airflow/plugins",
            "./include:/opt/airflow/include",
        ):
            assert any(v == mount or v.startswith(f"{mount}:") for v in volumes), (
                f"service {name!r} does not mount {mount}"
            )


def test_api_server_publishes_8080(services: dict[str, dict[str, Any]]) -> None:
    name = _find_airflow_component(services, "api-server")
    assert name, "no api-server service"
    ports = [str(p) for p in services[name].get("ports") or []]
    assert any(p.endswith("8080:8080") for p in ports), f"{name} does not publish port 8080 (ports: {ports})"


def test_healthchecked_dependencies(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], f"service {name!r} has no healthcheck"
    for name, svc in _airflow_services(services).items():
        depends = svc.get("depends_on") or {}
        for dep in ("postgres", "redis"):
            assert isinstance(depends, dict) and depends.get(dep, {}).get("condition") == "service_healthy", (
                f"service {name!r} must depend on {dep} with condition service_healthy"
            )


# ------------------------------------------------------------------------- the topology the stack ships ---
TOPOLOGY_ENV = "MULTICLOUD_DR_TOPOLOGY"
SHIPPED_TOPOLOGY = REPO_ROOT / "include" / "topology.compose.yaml"


def _host_path(svc: dict[str, Any], container_path: str) -> Path | None:
    """The repository file a bind mount of `svc` shows at `container_path` (None if no mount covers it)."""
    for volume in svc.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":", 1)[0]
        if source.startswith(".") and (container_path == target or container_path.startswith(target.rstrip("/") + "/")):
            return (REPO_ROOT / source / container_path[len(target):].lstrip("/")).resolve()
    return None


def _topology_conn_ids(node: Any) -> set[str]:
    """Every Airflow connection id a loaded topology names: any field whose name ends in `conn_id`, at any
    depth, and the fields of TerraformCredentials (one connection id per cloud, named after the cloud)."""
    from pydantic import BaseModel

    from multicloud_dr.config import TerraformCredentials

    ids: set[str] = set()
    if isinstance(node, TerraformCredentials):
        return {value for value in node.model_dump().values() if value}
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if name.endswith("conn_id"):
                if value:
                    ids.add(value)
            else:
                ids |= _topology_conn_ids(value)
    elif isinstance(node, dict):
        for value in node.values():
            ids |= _topology_conn_ids(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            ids |= _topology_conn_ids(value)
    return ids


def _defined_conn_ids(svc: dict[str, Any]) -> set[str]:
    return {key[len("AIRFLOW_CONN_"):].lower() for key in _environment(svc) if key.startswith("AIRFLOW_CONN_")}


def test_airflow_services_read_the_shipped_topology(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _airflow_services(services).items():
        value = _environment(svc).get(TOPOLOGY_ENV)
        assert value, f"service {name!r} does not set {TOPOLOGY_ENV}: the DAGs would read the lab's topology"
        host = _host_path(svc, value)
        assert host == SHIPPED_TOPOLOGY.resolve(), (
            f"service {name!r}: {TOPOLOGY_ENV}={value} is not include/topology.compose.yaml through a mount "
            f"(resolves to {host})"
        )
    assert SHIPPED_TOPOLOGY.is_file(), f"{SHIPPED_TOPOLOGY} is missing"


def test_every_connection_the_topology_names_exists_in_the_stack(services: dict[str, dict[str, Any]]) -> None:
    from multicloud_dr.config import load_topology

    topology = load_topology(SHIPPED_TOPOLOGY)
    named = _topology_conn_ids(topology)
    assert named, f"{SHIPPED_TOPOLOGY.name} names no connection at all"
    for name, svc in _airflow_services(services).items():
        missing = sorted(named - _defined_conn_ids(svc))
        assert not missing, (
            f"{SHIPPED_TOPOLOGY.name} names connections service {name!r} does not define: {missing}; define "
            "AIRFLOW_CONN_<ID> in x-airflow-common or set them to null in the topology"
        )


def test_conn_id_collector_sees_every_kind_of_connection(services: dict[str, dict[str, Any]]) -> None:
    """The lab's topology names connections the stack lacks; the check above must notice them."""
    from multicloud_dr.config import load_topology

    lab = _topology_conn_ids(load_topology(REPO_ROOT / "include" / "topology.yaml"))
    for conn_id in ("mysql_replica", "postgres_primary", "gcs_dr", "azure_terraform", "eks_primary", "app_dr",
                    "cloudflare", "mysql_dr", "azure_blob_dr"):
        assert conn_id in lab, f"the collector misses {conn_id} in include/topology.yaml"
    api_server = services[_find_airflow_component(services, "api-server")]
    assert lab - _defined_conn_ids(api_server), "the lab topology should not fit the compose stack"
