"""Static security scan of include/terraform with checkov.

checkov runs from its own venv (.tools/checkov-venv, made by `make install` through
scripts/install-checkov.sh) because its pins conflict with the Airflow environment. It runs
offline: BC_SKIP_MAPPING and --skip-download keep it from calling the Prisma Cloud API, and
without an API key checkov has no severities, so every failed check is either fixed or justified.

Justifications live next to the code as `#checkov:skip=CKV_...:reason` comments on the resource.
What cannot be said there, because one module serves several environments and only some of them
accept the trade-off, is listed below with the root it applies to.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "include" / "terraform"
CHECKOV = REPO_ROOT / ".tools" / "checkov-venv" / "bin" / "checkov"

# (check id, calling root) -> why that environment accepts the failed check.
ACCEPTED_PER_ENVIRONMENT = {
    ("CKV_AWS_157", "/environments/aws/dev/main.tf"): "dev runs RDS single-AZ to halve its cost; no SLA.",
    ("CKV_AWS_293", "/environments/aws/dev/main.tf"): "dev databases are torn down and rebuilt from backups at will.",
    ("CKV_AZURE_206", "/environments/azure/dev/main.tf"): "dev backups are zone-redundant (ZRS) only; "
    "losing a region's dev backups is acceptable.",
    ("CKV_AZURE_94", "/environments/azure/dev/main.tf"): "dev DR database is a burstable server without "
    "geo-redundant backups; it is refilled from the nightly backup.",
    ("CKV_AZURE_170", "/environments/azure/dev/main.tf"): "dev AKS uses the Free tier: no uptime SLA needed.",
}

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


_checkov_run: dict = {}


def start_checkov() -> subprocess.Popen | None:
    """Start the scan once, in the background (None when checkov is not installed). tests/unit/conftest.py calls
    this as soon as the session is collected, so the scan (20-30 s of checkov here) overlaps the tests that
    run before this module's; the fixture below then only waits for its report."""
    if "proc" not in _checkov_run:
        if not CHECKOV.is_file():
            return None
        command = [
            str(CHECKOV),
            "--directory", str(TERRAFORM),
            "--framework", "terraform",
            "--output", "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ]
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
        env.pop("BC_API_KEY", None)
        # the report files live as long as the scan, past this function: read and closed by the fixture
        stdout, stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
        _checkov_run.update(proc=subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env),
                            stdout=stdout, stderr=stderr, started=time.monotonic())
    return _checkov_run["proc"]


@pytest.fixture(scope="module")
def checkov_report() -> dict:
    proc = start_checkov()
    if proc is None:
        pytest.fail(
            f"checkov is not installed at {CHECKOV.relative_to(REPO_ROOT)}: run `make install` "
            "(or scripts/install-checkov.sh)",
            pytrace=False,
        )
    try:
        # 240 s for the scan itself, counted from its start (it may have been running for a while already)
        returncode = proc.wait(timeout=max(1.0, _checkov_run["started"] + 240 - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    stdout, stderr = (_checkov_run[name] for name in ("stdout", "stderr"))
    with stdout, stderr:
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read().decode(), stderr.read().decode(errors="replace")
    # checkov exits 1 when a check fails; anything else (or no JSON) is a crash.
    assert returncode in (0, 1), f"checkov crashed ({returncode}):\n{err[-3000:]}"
    report = json.loads(out)
    assert isinstance(report, dict) and report.get("check_type") == "terraform", out[:500]
    return report


def test_checkov_parsed_everything(checkov_report: dict) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["passed"] > 300, f"checkov evaluated too little, was the tree found? {summary}"


def test_no_failed_check_without_a_reason(checkov_report: dict) -> None:
    failed = checkov_report["results"].get("failed_checks", [])
    unexplained = [
        f"{c['check_id']} {c['check_name']}\n    {c['resource']} in {c['file_path']}:{c['file_line_range'][0]}"
        f" (called from {c.get('caller_file_path') or '-'})"
        for c in failed
        if (c["check_id"], c.get("caller_file_path")) not in ACCEPTED_PER_ENVIRONMENT
    ]
    assert not unexplained, (
        "checkov found problems: fix the HCL, or if the check does not apply, add "
        "`#checkov:skip=<ID>:<reason>` to the resource.\n" + "\n".join(unexplained)
    )


def test_accepted_failures_are_still_needed(checkov_report: dict) -> None:
    failing = {(c["check_id"], c.get("caller_file_path")) for c in checkov_report["results"].get("failed_checks", [])}
    stale = set(ACCEPTED_PER_ENVIRONMENT) - failing
    assert not stale, f"these accepted failures no longer fail; remove them from ACCEPTED_PER_ENVIRONMENT: {stale}"


def test_every_skip_comment_gives_a_reason() -> None:
    """Runs without checkov: a skip without a reason is a silenced finding."""
    skips = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match:
                skips.append((path.relative_to(TERRAFORM), number, match.group(1), (match.group(2) or "").strip()))
    assert skips, "expected the justified skips of the modules"
    vague = [f"{path}:{number} {check}" for path, number, check, reason in skips if len(reason) < 20]
    assert not vague, f"checkov skips need a reason that says why the check does not apply: {vague}"
