"""Test-side handle on the fake `terraform` executable next to this file: roots to plan in, the scenario
(what each root's configuration wants), and what the fake recorded (its invocations, states and locks).
Tests are not a package: test modules load this file by its path."""

from __future__ import annotations

import json
import os
from pathlib import Path

FAKES = Path(__file__).resolve().parent
BINARY = FAKES / "terraform"


class FakeTerraform:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.roots = home / "environments"
        self.state_dir = home / "fake-state"
        self.log = home / "fake-terraform.jsonl"
        self.scenario_file = home / "scenario.json"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self.set_scenario({})

    def env(self) -> dict[str, str]:
        """What the process running terraform needs: the fake first on PATH, and where it keeps things."""
        return {"PATH": f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}",
                "FAKE_TERRAFORM_STATE": str(self.state_dir), "FAKE_TERRAFORM_LOG": str(self.log),
                "FAKE_TERRAFORM_SCENARIO": str(self.scenario_file)}

    def make_root(self, cloud: str, environment: str) -> Path:
        root = self.roots / cloud / environment
        root.mkdir(parents=True, exist_ok=True)
        (root / "main.tf").write_text("# the fake terraform reads no HCL; this root only has to exist\n")
        for stack in ("always-on", "failover"):
            (root / f"backend-{stack}.hcl").write_text(f'key = "{cloud}/{environment}/{stack}.tfstate"\n')
        return root

    def set_scenario(self, roots: dict, default: dict | None = None) -> None:
        self.scenario_file.write_text(json.dumps({"roots": roots, "default": default or {}}))

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def starts(self, command: str | None = None) -> list[dict]:
        return [r for r in self.records() if r["event"] == "start" and (command is None or r["command"] == command)]

    def state(self, cloud: str, environment: str, stack: str) -> dict | None:
        key = f"{cloud}/{environment}/{stack}.tfstate"
        for path in (self.state_dir / "states").glob("*.json"):
            data = json.loads(path.read_text())
            if data["backend_key"] == key and Path(data["root"]).parts[-2:] == (cloud, environment):
                return data
        return None

    def locks(self) -> list[Path]:
        return sorted((self.state_dir / "states").glob("*.lock"))
