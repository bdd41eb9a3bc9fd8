"""The terraform (or OpenTofu) CLI as a child process.

- list-form argv with `-chdir=<root>`; nothing secret is ever in argv: credentials arrive as environment
  variables (`extra_env`), which are never logged;
- its own TF_DATA_DIR per runner (a private temporary directory unless one is given), so two runs on one
  worker never share `.terraform`, plus TF_IN_AUTOMATION=1 and TF_INPUT=0;
- stdout and stderr are logged line by line while terraform runs; machine-readable output (`show -json`,
  `output -json`, which hold sensitive values) is captured and never logged;
- `interrupt()` sends one SIGINT, which makes terraform finish what is in flight, write its state and
  release the state lock; only after a grace period does it get SIGTERM (a second interrupt: terraform
  exits at once, possibly leaving the lock) and then SIGKILL.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from multicloud_dr.exceptions import DrError, InputError
from multicloud_dr.terraform.summary import PlanSummary, summarize_plan

log = logging.getLogger(__name__)

TAIL_LINES = 40
KILL_AFTER_TERM_SECONDS = 10.0


class TerraformError(DrError):
    """terraform exited with an error (a retry may help: a provider API or the backend may have failed)."""


class TerraformLockedError(TerraformError):
    """The state is locked by another run; retrying later may succeed."""


class TerraformInterruptedError(TerraformError):
    """terraform was interrupted (the task was stopped); it stopped after what was in flight."""


class StalePlanError(InputError):
    """The saved plan no longer matches the state: applying it again cannot work, a new plan is needed."""


class TerraformNotFoundError(InputError):
    """Neither the configured binary nor a path to it exists."""


def find_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise TerraformNotFoundError(
            f"{name!r} was not found on PATH: install Terraform (https://developer.hashicorp.com/terraform/install) "
            f"or OpenTofu (https://opentofu.org/docs/intro/install/) on the workers, or set `terraform.binary` in "
            f"the topology (include/topology.yaml) to the binary's path")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    seconds: float
    stdout: bytes = field(default=b"", repr=False)   # only for captured (machine-readable) commands
    tail: str = ""                                   # the last lines terraform printed (not captured ones)


@dataclass(frozen=True)
class PlanResult:
    changes: bool               # -detailed-exitcode 2
    exit_code: int
    plan_file: Path
    plan_sha256: str
    summary: PlanSummary
    destroy: bool
    seconds: float

    def to_dict(self) -> dict:
        return {"changes": self.changes, "exit_code": self.exit_code, "plan_sha256": self.plan_sha256,
                "summary": self.summary.by_type, "totals": self.summary.totals, "replaced": self.summary.replaced,
                "deleted": self.summary.deleted, "output_changes": self.summary.output_changes,
                "destroy": self.destroy, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ApplyResult:
    exit_code: int
    plan_sha256: str
    seconds: float


class TerraformRunner:
    """One root directory (and one TF_DATA_DIR) of terraform. Use as a context manager: the data directory
    it made is deleted on exit."""

    def __init__(self, root: Path, *, binary: str = "terraform", extra_env: Mapping[str, str] | None = None,
                 data_dir: Path | None = None, label: str | None = None, lock_timeout_seconds: int = 300,
                 grace_seconds: float = 60.0, logger: logging.Logger | None = None) -> None:
        self.root = Path(root)
        self.binary = find_binary(binary)
        self.name = Path(self.binary).name
        self.extra_env = dict(extra_env or {})
        self.label = label or str(self.root)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.grace_seconds = grace_seconds
        self.log = logger or log
        self._given_data_dir = data_dir
        self.data_dir: Path | None = data_dir
        self._proc: subprocess.Popen | None = None
        self._exited: threading.Event | None = None
        self._interrupted = False       # the running command got its SIGINT
        self._stop_requested = False    # no further command starts

    # -- lifetime

    def __enter__(self) -> TerraformRunner:
        if self.data_dir is None:
            # mkdtemp: mode 0700; the data dir holds the backend settings and provider plugins.
            self.data_dir = Path(tempfile.mkdtemp(prefix="multicloud-dr-tf-"))
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def __exit__(self, *exc) -> None:
        if self._given_data_dir is None and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def _environment(self) -> dict[str, str]:
        if self.data_dir is None:
            raise RuntimeError("use TerraformRunner as a context manager (it owns a TF_DATA_DIR)")
        env = dict(os.environ)
        env.update(self.extra_env)
        env.update({"TF_DATA_DIR": str(self.data_dir), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
        return env

    # -- commands

    def version(self) -> str:
        result = self._run(["version", "-json"], capture=True)
        try:
            return json.loads(result.stdout).get("terraform_version", "?")
        except json.JSONDecodeError:
            return result.stdout.decode(errors="replace").splitlines()[0] if result.stdout else "?"

    def init(self, backend_config: str | None = None) -> CommandResult:
        args = ["init", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout_seconds}s"]
        if backend_config:
            args.append(f"-backend-config={backend_config}")
        result = self._run(args)
        self.log.info("%s init %s: done in %.1f s", self.name, self.label, result.seconds)
        return result

    def plan(self, out: Path, *, variables: Mapping[str, str] | None = None, destroy: bool = False,
             lock: bool = True) -> PlanResult:
        """`plan -detailed-exitcode -out=FILE`, then `show -json FILE` to count the changes. Variables go in
        argv: pass only non-secret ones (secrets reach terraform as TF_VAR_* in `extra_env`)."""
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}"]
        args += [f"-var={key}={value}" for key, value in (variables or {}).items()]
        if destroy:
            args.append("-destroy")
        args.append(f"-lock-timeout={self.lock_timeout_seconds}s" if lock else "-lock=false")
        result = self._run(args, ok_codes=(0, 2))
        summary = summarize_plan(self.show_json(out))
        sha = sha256_file(out)
        plan = PlanResult(changes=result.exit_code == 2, exit_code=result.exit_code, plan_file=out,
                          plan_sha256=sha, summary=summary, destroy=destroy, seconds=result.seconds)
        self.log.info("%s plan%s %s: %s in %.1f s (exit %d); plan sha256 %s", self.name, " -destroy" if destroy else "",
                      self.label, summary.one_line() if plan.changes else "no changes", result.seconds,
                      result.exit_code, sha)
        return plan

    def show_json(self, plan_file: Path) -> dict:
        result = self._run(["show", "-json", "-no-color", str(plan_file)], capture=True)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as err:
            raise TerraformError(f"{self.name} show -json printed no JSON ({err.msg})") from None

    def apply(self, plan_file: Path) -> ApplyResult:
        """Apply exactly a saved plan (never a fresh one: there is no -auto-approve path here)."""
        sha = sha256_file(plan_file)
        result = self._run(["apply", "-input=false", "-no-color", f"-lock-timeout={self.lock_timeout_seconds}s",
                            str(plan_file)])
        self.log.info("%s apply %s: applied plan sha256 %s in %.1f s", self.name, self.label, sha, result.seconds)
        return ApplyResult(exit_code=result.exit_code, plan_sha256=sha, seconds=result.seconds)

    def output_json(self) -> dict:
        result = self._run(["output", "-json", "-no-color"], capture=True)
        try:
            return json.loads(result.stdout or b"{}")
        except json.JSONDecodeError as err:
            raise TerraformError(f"{self.name} output -json printed no JSON ({err.msg})") from None

    # -- stopping

    def interrupt(self) -> bool:
        """Ask a running terraform to stop cleanly (one SIGINT); escalate only after the grace period.
        Safe to call from a signal handler or another thread; True if a process was signalled."""
        self._stop_requested = True
        proc, exited = self._proc, self._exited
        if proc is None or exited is None or exited.is_set():
            return False
        if self._interrupted:
            return True  # a second SIGINT would make terraform exit at once and leave the state locked
        self._interrupted = True
        self.log.warning("stopping %s (pid %d): SIGINT, so it finishes what is in flight, writes its state and "
                         "releases the lock (up to %.0f s before SIGTERM)", self.name, proc.pid, self.grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        threading.Thread(target=self._escalate, args=(proc, exited), daemon=True,
                         name=f"terraform-escalate-{proc.pid}").start()
        return True

    def wait_stopped(self, timeout: float) -> bool:
        exited = self._exited
        return True if exited is None else exited.wait(timeout)

    def _escalate(self, proc: subprocess.Popen, exited: threading.Event) -> None:
        if exited.wait(self.grace_seconds):
            return
        self.log.error("%s (pid %d) did not stop within %.0f s of SIGINT: SIGTERM (the state may stay locked: "
                       "`terraform force-unlock` once nothing runs)", self.name, proc.pid, self.grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        if exited.wait(KILL_AFTER_TERM_SECONDS):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the provider plugins go too

    # -- the child process

    def _run(self, args: list[str], *, capture: bool = False, ok_codes: tuple[int, ...] = (0,)) -> CommandResult:
        argv = [self.binary, f"-chdir={self.root}", *args]
        command = args[0]
        if self._stop_requested:  # stopped between two commands: start no other
            raise TerraformInterruptedError(f"{self.name} {command} in {self.label} not started: the task is stopping")
        self.log.info("running %s", shlex.join([self.name, *argv[1:]]))
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        captured: list[bytes] = []
        started = time.monotonic()
        exited = threading.Event()
        self._interrupted = False
        # A session of its own: a Ctrl-C or signal to the worker's process group must not reach terraform a
        # second time (two interrupts = exit at once, state possibly locked); we send exactly one.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self._environment(), start_new_session=True)
        self._proc, self._exited = proc, exited
        pumps = [
            threading.Thread(target=self._pump, args=(proc.stdout, logging.INFO, tail, captured if capture else None),
                             daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, logging.WARNING, tail, None), daemon=True),
        ]
        for pump in pumps:
            pump.start()

        def reap() -> None:
            proc.wait()
            exited.set()

        # The wait happens in a thread so that on_kill (a signal handler on this thread) can wait for it.
        threading.Thread(target=reap, daemon=True, name=f"terraform-wait-{proc.pid}").start()
        try:
            exited.wait()
        except BaseException:
            # The task timed out or is being stopped while terraform runs: let it stop cleanly, then go on.
            self.interrupt()
            exited.wait(self.grace_seconds + KILL_AFTER_TERM_SECONDS + 5)
            raise
        finally:
            for pump in pumps:
                pump.join(timeout=10)
            self._proc = None
        seconds = time.monotonic() - started
        code = proc.returncode
        result = CommandResult(command, code, seconds, b"".join(captured), "\n".join(tail))
        if code not in ok_codes:
            self._raise(result)
        return result

    def _pump(self, stream: IO[bytes], level: int, tail: collections.deque, captured: list[bytes] | None) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                if captured is not None:
                    captured.append(raw)  # JSON with sensitive values: kept, never logged
                    continue
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    tail.append(line)
                    self.log.log(level, "%s: %s", self.name, line)

    def _raise(self, result: CommandResult) -> None:
        what = f"{self.name} {result.command} in {self.label}"
        text = result.tail
        if self._interrupted:
            raise TerraformInterruptedError(
                f"{what} was interrupted and stopped after {result.seconds:.0f} s (exit {result.exit_code}); whatever "
                f"it finished is in the state: make a new plan")
        if "Saved plan is stale" in text:
            raise StalePlanError(
                f"{what}: the saved plan is stale (the state changed after it was made): make a new plan, apply that")
        if "Error acquiring the state lock" in text:
            raise TerraformLockedError(
                f"{what}: the state is locked by another run (see the lock info above); it is retried, or run "
                f"`{self.name} force-unlock LOCK_ID` in {self.root} once you are sure nothing else runs")
        last = "\n".join(text.splitlines()[-15:]) or "(no output)"
        raise TerraformError(f"{what} failed with exit code {result.exit_code}:\n{last}")


OnRunner = Callable[[TerraformRunner | None], None]   # told the active runner, so on_kill can interrupt it
