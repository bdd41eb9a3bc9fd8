"""A task process ends with the worker that runs it (FAULTS.md F35: a distributed worker lost mid-task).

Airflow runs a task in a task runner process that its supervisor forks; under the CeleryExecutor the supervisor is
a Celery pool process, which Celery already ties to its worker with a parent-death signal. Nothing ties the task
runner to the supervisor: when a worker is SIGKILLed (lost with its machine's agent, OOM-killed) the supervisor
goes with it, but its task runner lives on unsupervised, and so does the mysqldump it started. The scheduler then
fails the silent task and retries it on another worker while the orphan is still dumping and uploading into the
same backup: two writers, and the retry's manifest could describe blobs the orphan replaced.

`die_with_supervisor()`, called by the plugin's listener as every task starts (`on_task_instance_running`, in the
task runner itself), asks the kernel to SIGKILL the task runner the moment its supervisor exits. The dump inherits
nothing of it, but the backup starts it with a parent-death signal of its own (backup/source.py), so the chain
worker -> supervisor -> task runner -> dump dies as one. A task run in the process that asked for it (`dag.test()`,
`drctl`) is left alone: its parent is a shell, not a supervisor.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def _forked_from_parent() -> bool:
    """True when the parent runs the same executable as this process: a supervisor that forked its task runner
    (Airflow forks, it does not exec), not a shell or a process manager that started us."""
    try:
        return os.readlink(f"/proc/{os.getppid()}/exe") == os.readlink("/proc/self/exe")
    except OSError:
        return False


def die_with_supervisor() -> bool:
    """SIGKILL this process when its parent exits (Linux; elsewhere nothing). Returns whether it was set."""
    if not sys.platform.startswith("linux") or not _forked_from_parent():
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %s): this task outlives a lost worker", ctypes.get_errno())
        return False
    if os.getppid() != parent:   # the supervisor died before the signal was asked for: nothing would send it
        os.kill(os.getpid(), signal.SIGKILL)
    return True


class TaskGuard:
    """The listener the plugin registers."""

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance) -> None:
        die_with_supervisor()


task_guard = TaskGuard()
