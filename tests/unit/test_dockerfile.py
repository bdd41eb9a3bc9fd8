"""Static checks of the runtime image: Dockerfile and .dockerignore.

No Docker engine exists on CI, so the image is never built here; these tests read the two files and check what a
build would do: only the runtime requirements installed, the tools the DR tasks run present (MariaDB client,
zstd, a terraform pinned by version and checksum), the final image running as the non-root airflow user, and a
build context that leaves out the tests and the lab but keeps everything the Dockerfile copies.
(tests/unit/test_compose.py checks the base image tag against requirements.txt and pyproject.toml.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from .test_compose import _dockerfile_instructions  # one parser of Dockerfile instructions

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PACKAGE = REPO_ROOT / "plugins" / "multicloud_dr"
LAB = PACKAGE / "lab"

# Dev-only distributions (requirements-dev.in): none may be installed into the runtime image.
DEV_ONLY = ("moto", "gcp-storage-emulator", "pytest", "ruff", "hypothesis", "python-hcl2", "aiosmtpd", "selenium")
# Only needed to compile mysqlclient; they belong to the build stage, not to the image that runs.
BUILD_ONLY_PACKAGES = ("gcc", "libmariadb-dev", "pkg-config", "build-essential")


# --------------------------------------------------------------------------------------------------- helpers ---


def _stages(instructions: list[str]) -> list[list[str]]:
    stages: list[list[str]] = []
    for instruction in instructions:
        if instruction.split()[0].upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _keyword(instruction: str) -> str:
    return instruction.split()[0].upper()


def _context_copies(instructions: list[str]) -> list[str]:
    """Sources of COPY/ADD instructions that come from the build context (not --from another stage)."""
    sources = []
    for instruction in instructions:
        parts = instruction.split()
        if _keyword(instruction) not in ("COPY", "ADD") or any(p.startswith("--from=") for p in parts):
            continue
        args = [p for p in parts[1:] if not p.startswith("--")]
        sources += [s.rstrip("/") for s in args[:-1]]
    return sources


def _apt_installs(stage: list[str]) -> set[str]:
    packages: set[str] = set()
    for instruction in stage:
        for match in re.finditer(r"apt-get install ((?:\s*-\S+)*)((?:\s+[a-z0-9][a-z0-9+.-]*)+)", instruction):
            packages.update(match.group(2).split())
    return packages


def _ignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) for each .dockerignore line, in order (the last matching line wins)."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**", i):
                regex += ".*"
                i += 2
                if line.startswith("/", i):
                    regex += "/?"
                    i += 1
                continue
            char = line[i]
            regex += "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char)
            i += 1
        patterns.append((exception, re.compile(regex)))
    return patterns


def _excluded(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: it or a parent directory matches."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exception, regex in patterns:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not exception
    return excluded


@pytest.fixture(scope="module")
def instructions() -> list[str]:
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    return _dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(instructions: list[str]) -> list[str]:
    stages = _stages(instructions)
    assert stages, f"{DOCKERFILE} has no FROM"
    return stages[-1]


@pytest.fixture(scope="module")
def ignore() -> list[tuple[bool, re.Pattern[str]]]:
    assert DOCKERIGNORE.is_file(), f"{DOCKERIGNORE} is missing"
    return _ignore_patterns(DOCKERIGNORE.read_text())


# ------------------------------------------------------------------------------------------------- the image ---
def test_final_image_runs_as_airflow(final_stage: list[str]) -> None:
    users = [i.split()[1] for i in final_stage if _keyword(i) == "USER"]
    assert users, "the final stage never sets USER"
    assert users[-1] in ("airflow", "50000"), f"the image ends as user {users[-1]!r}, not the non-root airflow user"
    assert _keyword(final_stage[-1]) == "USER", "the last instruction should be `USER airflow`"


def test_pip_runs_as_airflow(final_stage: list[str]) -> None:
    user = "root"
    for instruction in final_stage:
        if _keyword(instruction) == "USER":
            user = instruction.split()[1]
        elif _keyword(instruction) == "RUN" and re.search(r"\bpip\S*\s+install\b", instruction):
            assert user == "airflow", f"pip runs as {user!r} (the official image expects airflow): {instruction}"


def test_only_runtime_requirements_are_installed(instructions: list[str]) -> None:
    text = "\n".join(instructions)
    assert "requirements-dev" not in text, "the Dockerfile refers to requirements-dev (emulators, test tools)"
    for instruction in instructions:
        if _keyword(instruction) != "RUN" or not re.search(r"\bpip\S*\s+install\b", instruction):
            continue
        for requirement_file in re.findall(r"\s(?:-r|--requirement)[\s=]+(\S+)", instruction):
            assert requirement_file.endswith("/requirements.txt"), f"pip installs {requirement_file}"
        for name in DEV_ONLY:
            assert not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", instruction), (
                f"pip installs the dev-only {name}: {instruction}"
            )


def test_dr_tools_are_in_the_image_and_build_tools_are_not(final_stage: list[str]) -> None:
    packages = _apt_installs(final_stage)
    for package in ("mariadb-client", "zstd"):
        assert package in packages, f"the runtime image does not install {package}"
    leftovers = sorted(set(BUILD_ONLY_PACKAGES) & packages)
    assert not leftovers, f"the runtime stage installs build-only packages {leftovers}; build in a separate stage"


def test_mysqlclient_wheel_comes_from_the_lock(instructions: list[str]) -> None:
    stages = _stages(instructions)
    assert len(stages) >= 2, "no build stage for the mysqlclient wheel"
    builder = "\n".join(stages[0])
    assert re.search(r"pip wheel\b.*--no-deps", builder) and "^mysqlclient==" in builder, (
        "the build stage must build the mysqlclient version pinned in requirements.txt"
    )
    final = "\n".join(stages[-1])
    assert "--find-links /tmp/wheels" in final and "COPY --from=" in final, (
        "the runtime stage does not install the wheel built in the first stage"
    )


def test_terraform_is_pinned_and_checksum_verified(final_stage: list[str]) -> None:
    args = dict(
        i.split(None, 1)[1].split("=", 1) for i in final_stage if _keyword(i) == "ARG" and "=" in i
    )
    version = args.get("TERRAFORM_VERSION", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"TERRAFORM_VERSION {version!r} is not an exact version"
    for arch in ("AMD64", "ARM64"):
        digest = args.get(f"TERRAFORM_SHA256_{arch}", "")
        assert re.fullmatch(r"[0-9a-f]{64}", digest), f"TERRAFORM_SHA256_{arch} is not a SHA-256"
    assert args["TERRAFORM_SHA256_AMD64"] != args["TERRAFORM_SHA256_ARM64"]
    [run] = [i for i in final_stage if _keyword(i) == "RUN" and "releases.hashicorp.com/terraform" in i]
    assert "${TERRAFORM_VERSION}" in run, "the terraform download URL does not use TERRAFORM_VERSION"
    assert "sha256sum -c" in run, "the terraform download is not verified with sha256sum -c"
    assert run.index("sha256sum -c") < run.index("unzip -o"), "terraform is unpacked before its checksum is checked"
    # The modules under include/terraform declare the versions they accept.
    for versions_tf in sorted((REPO_ROOT / "include" / "terraform").rglob("versions.tf")):
        match = re.search(r'required_version\s*=\s*"([^"]+)"', versions_tf.read_text())
        if match:
            spec = SpecifierSet(match.group(1).replace(" ", ""))
            assert spec.contains(version), f"terraform {version} does not satisfy {versions_tf}: {match.group(1)}"


def test_project_dags_and_include_are_baked_in(instructions: list[str]) -> None:
    sources = set(_context_copies(instructions))
    for needed in ("requirements.txt", "pyproject.toml", "README.md", "plugins", "dags", "include"):
        assert needed in sources, f"the Dockerfile does not COPY {needed} (the image must run without mounts)"


# ------------------------------------------------------------------------------------------- build context ---
def test_context_leaves_out_tests_lab_and_dev_files(ignore: list[tuple[bool, re.Pattern[str]]]) -> None:
    for path in (".lab", ".lab/env", "tests", "tests/unit/test_dockerfile.py", ".venv/bin/python", ".git/HEAD",
                 "requirements-dev.txt", "bench/backup.py", ".env", "plugins/multicloud_dr/lab/core.py",
                 "plugins/multicloud_dr/__pycache__/config.cpython-311.pyc", "plugins/multicloud_dr.egg-info/PKG-INFO"):
        assert _excluded(path, ignore), f".dockerignore lets {path} into the build context"


def test_context_keeps_everything_the_dockerfile_copies(
    instructions: list[str], ignore: list[tuple[bool, re.Pattern[str]]]
) -> None:
    for source in _context_copies(instructions):
        assert not _excluded(source, ignore), f"the Dockerfile copies {source}, which .dockerignore excludes"
        path = REPO_ROOT / source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = [
            f for f in files
            if "__pycache__" not in f.parts and ".egg-info" not in str(f) and not f.is_relative_to(LAB)
        ]
        assert kept, f"{source} has no files"
        dropped = [str(f.relative_to(REPO_ROOT)) for f in kept if _excluded(str(f.relative_to(REPO_ROOT)), ignore)]
        assert not dropped, f".dockerignore drops files the image needs: {dropped[:5]}"


def test_nothing_outside_the_lab_imports_it_at_module_level() -> None:
    """The lab is left out of the image: only lazy imports (inside functions, e.g. `drctl lab`) may name it."""
    offenders = []
    for source in sorted(PACKAGE.rglob("*.py")) + sorted((REPO_ROOT / "dags").glob("*.py")):
        if source.is_relative_to(LAB):
            continue
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(name == "multicloud_dr.lab" or name.startswith("multicloud_dr.lab.") for name in names):
                offenders.append(str(source.relative_to(REPO_ROOT)))
    assert not offenders, (
        f"these modules import multicloud_dr.lab at import time, but the image has no lab: {offenders}"
    )


def test_ignore_matcher_follows_docker_rules() -> None:
    patterns = _ignore_patterns("tests\n**/__pycache__\n*.md\n!README.md\nplugins/x/lab\n")
    assert _excluded("tests/unit/a.py", patterns)
    assert _excluded("plugins/multicloud_dr/__pycache__/a.pyc", patterns)
    assert _excluded("CHANGES.md", patterns)
    assert not _excluded("README.md", patterns)
    assert not _excluded("docs/CHANGES.md", patterns)  # `*` does not cross directories
    assert _excluded("plugins/x/lab/core.py", patterns)
    assert not _excluded("plugins/x/labels.py", patterns)
    assert not _excluded("testsuite/a.py", patterns)
