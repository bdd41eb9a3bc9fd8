"""Start, find and stop the lab's server processes, by pid, touching nothing the lab did not start.

A process counts as ours only if its pid file names it AND its working directory lies inside the
service's lab directory (every server is started there, or chdirs into its data directory), so a
recycled pid that now belongs to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from multicloud_dr.exceptions import PortInUseError


def pid_is_ours(pid: int, service_dir: Path) -> bool:
    """True when `pid` is alive and runs inside `service_dir` (so it is the lab's, not a reused pid)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return False
    if state == b"Z":  # a zombie is dead; only its parent has not reaped it yet
        return False
    root = service_dir.resolve()
    return cwd == root or root in cwd.parents


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().split()
    except FileNotFoundError:
        return None
    return int(text[0]) if text and text[0].isdigit() else None


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, service: str, setting: str) -> None:
    if not port_is_free(port):
        raise PortInUseError(
            f"port {port} for lab service {service} is in use by another program; "
            f"set {setting} to a free port (e.g. export {setting}={port + 100}) and run again"
        )


def spawn(argv: Sequence[str], *, cwd: Path, log_file: Path, pid_file: Path,
          env: dict[str, str] | None = None) -> int:
    """Start a long-running server detached from us (own session), output appended to its log."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pid: int, service_dir: Path, timeout: float = 30.0) -> bool:
    """SIGTERM the process (and its group, which the lab created), SIGKILL after `timeout`."""
    if not pid_is_ours(pid, service_dir):
        return False
    _signal_group(pid, signal.SIGTERM)
    if wait_until(lambda: not pid_is_ours(pid, service_dir), timeout):
        return True
    _signal_group(pid, signal.SIGKILL)
    wait_until(lambda: not pid_is_ours(pid, service_dir), 5.0)
    return True


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll a local health predicate (the lab's own bootstrapping, not a DAG task)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:])


def excerpt(path: Path, lines: int = 15) -> str:
    """The log lines that name a problem, else its tail: what to show when a server fails."""
    text = tail(path, 400).splitlines()
    flagged = [line for line in text if any(w in line.lower() for w in ("error", "fatal", "failed", "denied"))]
    return "\n".join(flagged[-lines:]) if flagged else "\n".join(text[-lines:])
