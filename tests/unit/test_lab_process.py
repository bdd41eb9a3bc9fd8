"""The lab's process handling: it signals only processes it started, and names taken ports."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from multicloud_dr.exceptions import PortInUseError
from multicloud_dr.lab import process
from multicloud_dr.lab.settings import LabSecrets, LabSettings


def test_spawned_process_is_ours_and_stops(tmp_path):
    pid = process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path,
                        log_file=tmp_path / "log", pid_file=tmp_path / "pid")
    assert process.read_pid(tmp_path / "pid") == pid
    assert process.pid_is_ours(pid, tmp_path)
    assert process.stop_pid(pid, tmp_path, timeout=5)
    assert not process.pid_is_ours(pid, tmp_path)


def test_a_reused_pid_of_another_program_is_never_signalled(tmp_path):
    lab_dir, elsewhere = tmp_path / "svc", tmp_path / "other"
    lab_dir.mkdir()
    elsewhere.mkdir()
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=elsewhere)
    try:
        (lab_dir / "pid").write_text(f"{foreign.pid}\n")  # a stale pid file now naming someone else
        assert not process.pid_is_ours(foreign.pid, lab_dir)
        assert process.stop_pid(foreign.pid, lab_dir, timeout=1) is False
        assert foreign.poll() is None, "a process the lab did not start was killed"
    finally:
        foreign.kill()
        foreign.wait()


def test_taken_port_error_names_port_and_setting():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as err:
            process.ensure_port_free(port, "gcs", "DRLAB_GCS_PORT")
    assert str(port) in str(err.value) and "DRLAB_GCS_PORT" in str(err.value)


def test_ports_move_with_their_setting(monkeypatch, tmp_path):
    settings = LabSettings(home=tmp_path, root=tmp_path)
    monkeypatch.delenv("DRLAB_MYSQL_PRIMARY_PORT", raising=False)   # the default, even where a user moved it
    assert settings.port("mysql-primary") == 13306
    monkeypatch.setenv("DRLAB_MYSQL_PRIMARY_PORT", "23306")
    assert settings.port("mysql-primary") == 23306


def test_lab_secrets_are_private_and_stable(tmp_path):
    path = tmp_path / "secrets.json"
    first = LabSecrets.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert LabSecrets.load_or_create(path) == first
    assert len({first.mysql_admin, first.mysql_repl, first.pg_admin}) == 3


def test_log_excerpt_prefers_error_lines(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("starting\n" * 50 + "[ERROR] Can't open the mysql.plugin table\n" + "shutdown\n" * 30)
    assert "Can't open the mysql.plugin table" in process.excerpt(log)
