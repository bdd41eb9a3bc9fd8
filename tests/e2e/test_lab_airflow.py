"""`make airflow` (= `drctl lab airflow`): the lab's `airflow standalone`, on 127.0.0.1 only, and stopped whole.

`airflow standalone` by itself stops its components only on Ctrl-C; a SIGTERM to it leaves the scheduler and
api-server running. These tests run the real thing on the lab's settings and look at /proc afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multicloud_dr.lab.airflow_run import read_env_file, standalone_pid_file, stop_standalone
from multicloud_dr.lab.process import pid_is_ours, read_pid

from .conftest import _wait_healthy

DRCTL = str(Path(sys.executable).with_name("drctl"))


def _lab_airflow_processes(home: Path) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and pid_is_ours(int(p), home)]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


@pytest.fixture
def lab_airflow(lab):
    settings = lab.settings
    env = read_env_file(settings.env_file)
    url = env["AIRFLOW__API__BASE_URL"]
    port = int(env["AIRFLOW__API__PORT"])
    log = settings.airflow_home / "lab-airflow-test.log"
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen([DRCTL, "lab", "airflow"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc, log, timeout=240)
        yield proc, settings, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        stop_standalone(settings)


def test_lab_airflow_listens_on_loopback_only_and_sigterm_stops_everything(lab_airflow):
    proc, settings, port = lab_airflow
    assert _listening_addresses(port) == {"0100007F"}, "the api-server must listen on 127.0.0.1 only"
    assert len(_lab_airflow_processes(settings.airflow_home)) >= 5   # standalone and its four components
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while (left := _lab_airflow_processes(settings.airflow_home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"processes of the lab's Airflow outlived make airflow: {left}"
    assert not standalone_pid_file(settings).exists()


def test_a_killed_supervisor_leaves_nothing_that_lab_down_does_not_stop(lab_airflow):
    proc, settings, _ = lab_airflow
    os.kill(proc.pid, signal.SIGKILL)   # make airflow's process, killed: its standalone lives on
    proc.wait()
    assert read_pid(standalone_pid_file(settings)) is not None
    assert _lab_airflow_processes(settings.airflow_home), "standalone should still be running here"
    assert stop_standalone(settings) is True   # what `drctl lab down` runs first
    assert _lab_airflow_processes(settings.airflow_home) == []
