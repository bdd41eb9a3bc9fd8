"""The Disaster recovery page and `GET /dr/api/status` (plugins/dr_page_plugin.py, multicloud_dr/monitoring) on a
real `airflow standalone` of the lab (the session's), whose api-server loads the project's plugins folder.

- Authentication: no token, a forged or garbage one answer 401 and show nothing; Airflow's own JWT (a bearer
  token from POST /auth/token, or the UI's `_token` cookie) gets the data.
- The data follows the lab: after a backup and a replication_health run, the JSON's RPO and checks are the newest
  replication_health asset event's, and its RPO equals `drctl replication check --json` within the time between
  the two measurements; a stopped replica SQL thread turns the verdict and its check red on the next run, a
  healed one green again.
- A real browser (Debian's chromium, headless, through chromedriver and Selenium) signs in on the login page,
  opens "Disaster recovery" from the navigation, and reads the same verdict and RPO inside the UI's frame as
  the JSON says. The screenshot is written to `test-artifacts/dr-page.png` at the repository's root (or
  $DR_TEST_ARTIFACTS).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.config import load_topology
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.wasb import blob_service_client

from .conftest import ROOT

DRCTL = str(Path(sys.executable).with_name("drctl"))
ARTIFACTS = Path(os.environ.get("DR_TEST_ARTIFACTS") or ROOT / "test-artifacts")
pytestmark = pytest.mark.timeout(600)


def status(api, **kwargs) -> requests.Response:
    return requests.get(f"{api.base_url}/dr/api/status", timeout=30, **kwargs)


def bearer(api) -> dict:
    return {"headers": {"Authorization": f"Bearer {api.token}"}}


@pytest.fixture(scope="module")
def fresh_backup(lab, delete_blob_prefix):
    """A verified backup of petclinic in the topology's own location (what the page reads), removed afterwards."""
    topology = load_topology()
    root = StorageUrl.parse(topology.backup.location)
    service = blob_service_client(get_endpoint(topology.backup.storage_conn_id))
    result = run_backup(BackupRequest(get_endpoint("mysql_primary"), "petclinic", root,
                                      datetime.now(UTC).replace(microsecond=0)), service)
    assert verify_backup(BackupStore(service, root.bucket), result.manifest_url).status == "verified"
    yield result
    delete_blob_prefix(service, StorageUrl(root.scheme, root.bucket, result.manifest_url.path.rsplit("/", 1)[0]))


@pytest.fixture(scope="module")
def health_runs(airflow_standalone):
    """Runs replication_health through the REST API; paused again afterwards (it is scheduled every 5 min)."""
    def run() -> dict:
        return airflow_standalone.run_dag("replication_health", timeout=240)

    yield run
    with contextlib.suppress(Exception):
        airflow_standalone.call("PATCH", "/dags/replication_health", {"is_paused": True})


@pytest.fixture
def sql_thread_stopped(lab):
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
    try:
        yield
    finally:
        with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
            cur.execute("START SLAVE SQL_THREAD")


def newest_event(api) -> dict:
    env = load_topology().environment
    (asset,) = [a for a in api.call("GET", f"/assets?name_pattern=replication_health.{env}")["assets"]
                if a["name"] == f"replication_health.{env}"]
    return api.call("GET", f"/assets/events?asset_id={asset['id']}&order_by=-timestamp&limit=1")["asset_events"][0]


def test_the_page_and_its_api_answer_401_without_a_valid_airflow_token(airflow_standalone):
    api = airflow_standalone
    for kwargs in ({}, {"headers": {"Authorization": "Bearer not-a-token"}},
                   {"headers": {"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}},
                   {"cookies": {"_token": "forged"}}):
        for path in ("/dr/api/status", "/dr/"):
            response = requests.get(f"{api.base_url}{path}", timeout=30, **kwargs)
            assert response.status_code == 401, (path, kwargs, response.text[:200])
            assert "verdict" not in response.text and "rpo" not in response.text.lower()
    assert status(api, **bearer(api)).status_code == 200
    assert status(api, cookies={"_token": api.token}).status_code == 200   # the UI's session cookie


def test_the_status_follows_the_lab_through_a_stopped_and_a_healed_replica(
        lab, airflow_standalone, fresh_backup, health_runs, request):
    api = airflow_standalone
    first = health_runs()
    assert first["run"]["state"] == "success", first
    body = status(api, **bearer(api)).json()
    event = newest_event(api)
    assert body["rpo_seconds"] == event["extra"]["rpo_seconds"]
    assert [(c["name"], c["status"], c["value"]) for c in body["checks"]] == \
        [(c["name"], c["status"], c["value"]) for c in event["extra"]["checks"]]
    assert body["verdict"]["ready"] is True, body["verdict"]
    assert body["backups"]["databases"]["petclinic"]["backup_id"] == fresh_backup.manifest.backup_id
    assert set(body) >= {"rpo_seconds", "verdict", "checks", "backups", "drills", "state", "drift", "approvals"}

    # The same RPO as a shell measures now, give or take the time between the two measurements.
    shell = subprocess.run([DRCTL, "replication", "check", "--json"], capture_output=True, text=True, timeout=120,
                           check=False)
    measured = json.loads(shell.stdout)
    # A backup's age grows by the second: the spread is the time since the event's measurement began.
    since = datetime.now(UTC) - datetime.fromisoformat(body["rpo"]["measured_at"].replace("Z", "+00:00"))
    spread = since.total_seconds() + 5
    assert abs(measured["rpo_seconds"] - body["rpo_seconds"]) <= spread, (measured["rpo_seconds"], body["rpo_seconds"])

    # A stopped SQL thread: the next run's check is not ok, and the verdict names it.
    request.getfixturevalue("sql_thread_stopped")
    health_runs()
    red = status(api, **bearer(api)).json()
    check = {c["name"]: c for c in red["checks"]}["mysql_replica/petclinic"]
    assert check["status"] != "ok", check
    assert red["verdict"]["ready"] is False and "mysql_replica/petclinic" in red["verdict"]["text"], red["verdict"]
    page = requests.get(f"{api.base_url}/dr/", timeout=30, **bearer(api)).text
    assert "class='verdict blocked'" in page and "data-dr-check='mysql_replica/petclinic'" in page

    # Healed: green again on the next run.
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("START SLAVE SQL_THREAD")
    lab.mysql_replica.wait_caught_up()
    assert health_runs()["run"]["state"] == "success"
    green = status(api, **bearer(api)).json()
    assert green["verdict"]["ready"] is True, green["verdict"]
    assert {c["name"]: c["status"] for c in green["checks"]}["mysql_replica/petclinic"] == "ok"
    loads = []
    for _ in range(3):
        t0 = time.monotonic()
        assert requests.get(f"{api.base_url}/dr/", timeout=30, **bearer(api)).status_code == 200
        loads.append(time.monotonic() - t0)
    print(f"DR page: RPO {green['rpo_seconds']} s, built in {green['seconds']} s; page loads {loads}")


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="chromium and chromium-driver are installed by make install")
def test_a_browser_signs_in_opens_the_page_from_the_navigation_and_sees_the_api_s_verdict(
        airflow_standalone, fresh_backup, health_runs):
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api = airflow_standalone
    health_runs()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    # The UI redirects / to its login page while the first lookups run ("aborted by navigation"): keep waiting.
    wait = WebDriverWait(driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException,
                                                         WebDriverException))
    try:
        driver.get(f"{api.base_url}/")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name=username]"))).send_keys("admin")
        driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(api.passwords["admin"] + Keys.ENTER)
        entry = wait.until(ec.element_to_be_clickable(
            (By.XPATH, "//*[normalize-space(text())='Disaster recovery']/ancestor-or-self::a")))
        entry.click()
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[src*='/dr/']")))
        driver.switch_to.frame(frame)
        shown = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-dr=verdict]"))).text
        rpo_shown = driver.find_element(By.CSS_SELECTOR, "[data-dr=rpo_seconds]").text
        active = driver.find_element(By.CSS_SELECTOR, "[data-dr=active_site]").text
        driver.switch_to.default_content()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "dr-page.png"))
    finally:
        driver.quit()
    body = status(api, **bearer(api)).json()
    assert shown == body["verdict"]["text"]
    assert rpo_shown.endswith(("s", "min", "h", "d")) and rpo_shown != "unknown"
    assert active == body["state"]["active_site"]
    assert (ARTIFACTS / "dr-page.png").stat().st_size > 10_000
    print(f"DR page screenshot: {ARTIFACTS / 'dr-page.png'}")
