"""What the runtime image installs, against what the code imports.

- pyproject.toml's `dependencies` name every distribution that plugins/ and dags/ import (a missing one
  works here, where the dev set is installed too, and fails in the image);
- requirements.txt (the runtime lock the image installs) pins each of them, and holds no emulator or
  test tool: those are in requirements-dev.txt;
- the mysql provider is installed, so the Airflow UI offers the MySQL connection type the README tells
  users to create.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("moto", "gcp-storage-emulator", "pytest", "pytest-timeout", "ruff", "hypothesis", "python-hcl2",
            "aiosmtpd")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_canonical(re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]) for dep in deps}


def _pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _imports() -> dict[str, str]:
    """module imported -> a file that imports it (third-party only, absolute imports)."""
    found: dict[str, str] = {}
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            # `from google.cloud import storage` imports google.cloud.storage (the longest prefix that is a
            # module decides, see _distribution_of).
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "multicloud_dr":
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


@cache
def _files_of(dist: str) -> frozenset[str]:
    return frozenset(str(f) for f in (md.distribution(dist).files or ()))


@cache
def _top_level_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()   # reads every installed distribution's metadata: once, not per import


def _distribution_of(module: str) -> str | None:
    """The distribution that installs `module` (namespace packages like azure.* and google.* are shared
    by many distributions, so the module's own file decides)."""
    candidates = _top_level_distributions().get(module.split(".")[0], [])
    if len(set(candidates)) == 1:
        return candidates[0]
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
            continue
        origin = Path(spec.origin)
        for dist in candidates:
            for site in map(Path, sys.path):
                try:
                    rel = str(origin.relative_to(site))
                except ValueError:
                    continue
                if rel in _files_of(dist):
                    return dist
    return None


def test_pyproject_declares_every_distribution_the_code_imports():
    declared = _declared()
    missing = {}
    for module, where in _imports().items():
        dist = _distribution_of(module)
        assert dist is not None, f"{where} imports {module}, which no installed distribution provides"
        # The task SDK and the core come with apache-airflow.
        if _canonical(dist) in ("apache-airflow-core", "apache-airflow-task-sdk"):
            dist = "apache-airflow"
        # The lab runs the emulators it wraps (moto for its Route 53 correction): dev tools, as the lab itself.
        if where.startswith("plugins/multicloud_dr/lab/") and _canonical(dist) in {_canonical(d) for d in DEV_ONLY}:
            continue
        if _canonical(dist) not in declared:
            missing[module] = (dist, where)
    assert not missing, f"imported but not declared in pyproject.toml dependencies: {missing}"


def test_runtime_lock_pins_every_dependency_and_no_dev_tool():
    runtime = _pinned(ROOT / "requirements.txt")
    unpinned = sorted(dep for dep in _declared() if dep not in runtime)
    assert not unpinned, f"declared in pyproject.toml but not pinned in requirements.txt: {unpinned}"
    leaked = sorted(tool for tool in DEV_ONLY if _canonical(tool) in runtime)
    assert not leaked, f"emulators/test tools in the runtime lock (move them to requirements-dev.in): {leaked}"
    dev = _pinned(ROOT / "requirements-dev.txt")
    assert {_canonical(t) for t in DEV_ONLY} <= set(dev), "requirements-dev.txt must pin the lab's emulators"
    for name, version in dev.items():  # the dev lock is constrained by the runtime lock
        assert runtime.get(name, version) == version, f"{name} is pinned differently in the two locks"


def test_the_ui_offers_a_mysql_connection_type():
    from airflow.providers_manager import ProvidersManager

    provider = ProvidersManager().providers.get("apache-airflow-providers-mysql")
    assert provider is not None, "apache-airflow-providers-mysql is not installed"
    types = {entry["connection-type"] for entry in provider.data.get("connection-types", [])}
    assert "mysql" in types, "no installed provider registers the `mysql` connection type"
