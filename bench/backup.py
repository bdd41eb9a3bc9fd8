"""Benchmark: `drctl backup` against a bare mysqldump and against the seeds' gzip-then-upload pipeline.

Run with the project's interpreter (the lab is brought up if it is not running):

    .venv/bin/python bench/backup.py [--mb N] [--runs R] [--keep] [--drop]

Method
------
1. `Lab().up()` starts whatever part of the local lab is not running; its settings are read from
   `.lab/env`.
2. A database `bench_petclinic` of about N MiB of generated values (`sample_data.generate_rows`,
   seed 42) is built on the lab's MariaDB primary, or reused when it exists and its marker file
   (`.lab/mysql-primary/bench_petclinic.json`) records the same N. With `--drop` it is dropped at
   the end; otherwise it stays for the next run. After a build, the bench waits for the lab's
   replica to apply the new rows so that it does not compete with the measurements.
3. One untimed warm-up dump is read through a pipe and counted: that is the dump size reported
   (the default --mb 480 gives a dump of about 900 MB), and it brings the table pages into the
   server's buffer pool so the first timed step does not pay for a cold cache alone.
4. Three steps are then timed (wall clock), R times each, in the same run; the order of the steps
   is reversed on every other round so that neither always goes first, and the median is kept:
     bare   mysqldump --single-transaction --quick --routines --triggers --events --hex-blob
            --master-data=2 --gtid bench_petclinic > /dev/null
     seeds  the seeds' pipeline: `mysqldump ... | gzip > FILE` (bash, pipefail), then
            FILE uploaded to Azurite with azure-storage-blob's `upload_blob` (default settings);
            dump, compression and upload are timed together, the file and blob are deleted after
     drctl  `drctl backup --source ... --database bench_petclinic --to wasb://dr-backups/bench-<run-id>
            --logical-date <unique per round>` as a child process; while it runs, the resident set
            of drctl and all its descendants (stdbuf/mysqldump) is summed every ~50 ms from /proc
            (psutil) and the largest sum is its peak RSS;
     mydumper  only when `mydumper` is installed (Debian: apt-get install mydumper): `mydumper --threads
            <--mydumper-threads, default 2> --database bench_petclinic --trx-consistency-only --routines
            --triggers --events` into a directory on /dev/shm (memory, so no disk write is timed; emptied after
            each run): the parallel dump tool teams pick instead of mysqldump, the yardstick of the parallel
            engine to come (issue 17). mydumper has no streaming output, so its files are what it makes.
   mysqldump always gets its credentials from a 0600 `--defaults-file`, and drctl gets its source
   as a connection id whose URI is in its environment: no password is ever in a process's argv.
5. The table and the ratios are printed, each against its target; nothing is asserted on timing:
     drctl / bare      <= 1.10   streaming compression, hashing and upload add at most 10 % to the dump
     seeds / drctl     >= 3.5    speedup over gzip-to-disk-then-upload
     peak RSS          <= 256 MB drctl and its children, whatever the database size
   A missed target prints MISS; the exit status is 0 either way, 1 only when a step fails. With mydumper,
   `mydumper / bare` is printed as well, for information (no target of its own).
6. Every blob written under bench-<run-id>/ is deleted unless --keep.

MB means 2**20 bytes throughout, as in the project's progress lines.
Numbers depend on the machine (core count, disk) and on what else runs on it: the lab is shared,
so the header shows the load average, and ratios are only comparable within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pymysql
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobLeaseClient, BlobServiceClient, ContainerClient

from multicloud_dr.backup import source as src
from multicloud_dr.connections import Endpoint, parse_uri
from multicloud_dr.connections.mysql import MySqlConnection
from multicloud_dr.lab import sample_data
from multicloud_dr.lab.airflow_run import read_env_file
from multicloud_dr.lab.core import Lab

MB = 1024 * 1024
DATABASE = "bench_petclinic"
SEED = 42
DEFAULT_MB = 480  # ~900 MB of mysqldump output: the dump is ~1.87x the generated values (hex, SQL syntax)
SOURCE_CONN_ID = "bench_mysql_primary"  # drctl resolves it from AIRFLOW_CONN_BENCH_MYSQL_PRIMARY
DUMP_OPTIONS = ["--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
                "--master-data=2", "--gtid"]
RSS_INTERVAL = 0.05

TARGET_OVERHEAD = 1.10   # drctl / bare, at most
TARGET_SPEEDUP = 3.5     # seeds / drctl, at least
TARGET_RSS_MB = 256      # peak RSS of drctl and its children, at most


class BenchError(Exception):
    """A step failed: the numbers would mean nothing."""


def say(message: str = "") -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------------------------------
# The bench database
# --------------------------------------------------------------------------------------------------

def connect(endpoint: Endpoint, database: str | None = None) -> pymysql.connections.Connection:
    return MySqlConnection(endpoint).connect(database=database, charset="utf8mb4", connect_timeout=10,
                                             autocommit=False)   # with the endpoint's TLS


def database_exists(endpoint: Endpoint) -> bool:
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (DATABASE,))
        return cur.fetchone() is not None


def ensure_database(lab: Lab, endpoint: Endpoint, megabytes: float) -> None:
    """Reuse `bench_petclinic` if its marker says it holds `megabytes`, else (re)build it."""
    marker = lab.mysql_primary.dir / f"{DATABASE}.json"
    if marker.exists() and database_exists(endpoint):
        recorded = json.loads(marker.read_text())
        if recorded.get("megabytes") == megabytes and recorded.get("seed") == SEED:
            rows = sum(recorded.get("counts", {}).values())
            say(f"reusing database {DATABASE}: {megabytes:g} MiB of values, {rows:,} rows "
                f"(built {recorded.get('built', '?')})")
            return
    marker.unlink(missing_ok=True)  # written only once the last row is in
    say(f"building database {DATABASE}: {megabytes:g} MiB of generated values (seed {SEED}) ...")
    t0 = time.monotonic()
    with contextlib.closing(connect(endpoint)) as conn:
        counts = sample_data.create_database(conn, DATABASE, megabytes, seed=SEED)
    marker.write_text(json.dumps({"database": DATABASE, "megabytes": megabytes, "seed": SEED, "counts": counts,
                                  "built": datetime.now(UTC).isoformat(timespec="seconds")}))
    say(f"  {sum(counts.values()):,} rows in {time.monotonic() - t0:.0f} s")
    t0 = time.monotonic()
    try:
        lab.mysql_replica.wait_caught_up(timeout=3600)
        say(f"  replica caught up in {time.monotonic() - t0:.0f} s")
    except Exception as err:  # the replica is context, not part of the benchmark
        say(f"  warning: replica not caught up ({err}); it may compete with the measurements")


def drop_database(lab: Lab, endpoint: Endpoint) -> None:
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
    (lab.mysql_primary.dir / f"{DATABASE}.json").unlink(missing_ok=True)
    say(f"dropped database {DATABASE}")


# --------------------------------------------------------------------------------------------------
# The three steps
# --------------------------------------------------------------------------------------------------

@dataclass
class Bench:
    endpoint: Endpoint
    lab_env: dict[str, str]
    container: ContainerClient
    mysqldump: str
    drctl: str
    defaults_file: Path
    workdir: Path
    run_id: str
    times: dict[str, list[float]] = field(default_factory=lambda: {"bare": [], "seeds": [], "drctl": []})
    mydumper: str | None = None      # its path, when installed
    mydumper_threads: int = 2
    peak_rss: list[int] = field(default_factory=list)
    drctl_results: list[dict] = field(default_factory=list)
    gzip_bytes: list[int] = field(default_factory=list)
    _date: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def prefix(self) -> str:
        return f"bench-{self.run_id}"

    def dump_argv(self) -> list[str]:
        return [self.mysqldump, f"--defaults-file={self.defaults_file}", *DUMP_OPTIONS, DATABASE]

    def warm_up(self) -> int:
        """An untimed dump read through a pipe: returns its size in bytes."""
        size = 0
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(self.dump_argv(), stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
            fd = proc.stdout.fileno()  # type: ignore[union-attr]
            while chunk := os.read(fd, MB):
                size += len(chunk)
            proc.stdout.close()  # type: ignore[union-attr]
            if proc.wait() != 0:
                stderr.seek(0)
                raise BenchError(f"warm-up mysqldump exited {proc.returncode}: {stderr.read().decode()[-2000:]}")
        return size

    def bare(self) -> float:
        t0 = time.perf_counter()
        result = subprocess.run(self.dump_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        seconds = time.perf_counter() - t0
        if result.returncode != 0:
            raise BenchError(f"bare mysqldump exited {result.returncode}: {result.stderr.decode()[-2000:]}")
        return seconds

    def mydumper_run(self, round_no: int) -> float:
        """mydumper into a fresh directory in memory (/dev/shm where there is one), removed after the run."""
        shm = Path("/dev/shm")  # noqa: S108 (mkdtemp makes a private 0700 directory in it)
        out = Path(tempfile.mkdtemp(prefix=f"bench-mydumper-{round_no}-", dir=shm if shm.is_dir() else self.workdir))
        argv = [self.mydumper, f"--defaults-file={self.defaults_file}", "--threads", str(self.mydumper_threads),
                "--database", DATABASE, "--outputdir", str(out), "--trx-consistency-only", "--routines", "--triggers",
                "--events", "--verbose", "1"]
        try:
            t0 = time.perf_counter()
            result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            seconds = time.perf_counter() - t0
            if result.returncode != 0:
                raise BenchError(f"mydumper exited {result.returncode}: {result.stderr.decode()[-2000:]}")
            return seconds
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def seeds(self, round_no: int) -> float:
        path = self.workdir / f"{DATABASE}.sql.gz"
        blob = self.container.get_blob_client(f"{self.prefix}/seeds/{round_no}/{DATABASE}.sql.gz")
        script = f"set -o pipefail; {shlex.join(self.dump_argv())} | gzip > {shlex.quote(str(path))}"
        try:
            t0 = time.perf_counter()
            result = subprocess.run(["bash", "-c", script], stderr=subprocess.PIPE, check=False)
            if result.returncode != 0:
                raise BenchError(f"mysqldump | gzip exited {result.returncode}: {result.stderr.decode()[-2000:]}")
            with path.open("rb") as handle:
                blob.upload_blob(handle, overwrite=True)
            seconds = time.perf_counter() - t0
            self.gzip_bytes.append(path.stat().st_size)
            return seconds
        finally:
            path.unlink(missing_ok=True)
            with contextlib.suppress(ResourceNotFoundError):
                blob.delete_blob()

    def drctl_backup(self, round_no: int) -> float:
        logical_date = (self._date + timedelta(minutes=round_no)).strftime("%Y-%m-%dT%H:%M:%SZ")
        argv = [self.drctl, "backup", "--source", SOURCE_CONN_ID, "--database", DATABASE,
                "--to", f"wasb://{self.container.container_name}/{self.prefix}", "--logical-date", logical_date]
        env = os.environ | self.lab_env | {"AIRFLOW_CONN_BENCH_MYSQL_PRIMARY": self.lab_env["LAB_MYSQL_PRIMARY_URI"]}
        with tempfile.TemporaryFile() as stderr:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=env)
            with sample_tree_rss(proc.pid) as peak:
                stdout, _ = proc.communicate()
            seconds = time.perf_counter() - t0
            if proc.returncode != 0:
                stderr.seek(0)
                raise BenchError(f"drctl backup exited {proc.returncode}: {stderr.read().decode()[-2000:]}")
        result = json.loads(stdout)
        if not result.get("created"):
            raise BenchError(f"drctl backup wrote nothing (the backup {result.get('backup_id')} already existed)")
        self.peak_rss.append(peak[0])
        self.drctl_results.append(result)
        return seconds

    def cleanup(self) -> int:
        deleted = 0
        for item in self.container.list_blobs(name_starts_with=f"{self.prefix}/"):
            blob = self.container.get_blob_client(item.name)
            try:
                blob.delete_blob()
            except HttpResponseError as err:
                if err.status_code != 412:  # 412: leased (a backup that was interrupted)
                    raise
                BlobLeaseClient(blob).break_lease(lease_break_period=0)
                blob.delete_blob()
            deleted += 1
        return deleted


@contextlib.contextmanager
def sample_tree_rss(pid: int) -> Iterator[list[int]]:
    """Yields a one-item list that holds, on exit, the largest sum of RSS over `pid` and its descendants
    seen at ~RSS_INTERVAL sampling (psutil reads VmRSS's value from /proc/<pid>/statm)."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in tree:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    total += proc.memory_info().rss
            peak[0] = max(peak[0], total)
            stop.wait(RSS_INTERVAL)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(bench: Bench, dump_bytes: int, megabytes: float, runs: int) -> None:
    med = {step: statistics.median(values) for step, values in bench.times.items()}
    dump_mb = dump_bytes / MB
    labels = {"bare": "bare mysqldump > /dev/null", "seeds": "seeds: mysqldump | gzip > file, upload_blob",
              "drctl": "drctl backup (zstd, streamed)"}
    if bench.times.get("mydumper"):
        labels["mydumper"] = f"mydumper -t{bench.mydumper_threads} > files in memory"
    say()
    say(f"{'step':<44} {'median s':>9} {'dump MB/s':>10}   runs (s)")
    for step, label in labels.items():
        rate = dump_mb / med[step] if med[step] > 0 else 0.0
        runs_text = " ".join(f"{t:.2f}" for t in bench.times[step])
        say(f"{label:<44} {med[step]:>9.2f} {rate:>10.1f}   {runs_text}")

    last = bench.drctl_results[-1]
    stored_mb = statistics.median(r["bytes_stored"] for r in bench.drctl_results) / MB
    raw_mb = last["bytes_raw"] / MB
    gzip_mb = statistics.median(bench.gzip_bytes) / MB
    internal = statistics.median(r["seconds"] for r in bench.drctl_results)
    peak_mb = max(bench.peak_rss) / MB
    overhead = med["drctl"] / med["bare"]
    speedup = med["seeds"] / med["drctl"]

    say()
    say(f"database   {DATABASE}: {megabytes:g} MiB of generated values, {last['tables']} tables, {last['rows']:,} rows")
    say(f"dump       {dump_mb:.1f} MB measured (warm-up dump); drctl counted {raw_mb:.1f} MB")
    say(f"stored     {stored_mb:.1f} MB zstd -> compression ratio {raw_mb / stored_mb:.2f}x "
        f"(seeds' gzip file: {gzip_mb:.1f} MB, {dump_mb / gzip_mb:.2f}x)")
    say(f"drctl      own timer (after start-up) median {internal:.2f} s; wall clock includes Python start-up")
    say(f"peak RSS   drctl + children, per run: {' '.join(f'{r / MB:.0f}' for r in bench.peak_rss)} MB")
    say()
    say(f"{'ratio':<38} {'measured':>10} {'target':>10}")
    say(f"{'drctl / bare (overhead)':<38} {overhead:>10.3f} {'<= ' + format(TARGET_OVERHEAD, '.2f'):>10}  "
        f"{verdict(overhead <= TARGET_OVERHEAD)}")
    say(f"{'seeds / drctl (speedup)':<38} {speedup:>9.2f}x {'>= ' + format(TARGET_SPEEDUP, '.1f') + 'x':>10}  "
        f"{verdict(speedup >= TARGET_SPEEDUP)}")
    say(f"{'peak RSS drctl + children (MB)':<38} {peak_mb:>10.1f} {'<= ' + str(TARGET_RSS_MB):>10}  "
        f"{verdict(peak_mb <= TARGET_RSS_MB)}")
    if "mydumper" in labels:
        say(f"{'mydumper / bare (for information)':<38} {med['mydumper'] / med['bare']:>10.3f}")
    say()
    say(f"medians of {runs} run(s) each, order alternated; informational, no timed assertion")


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

def drctl_path() -> str:
    beside = Path(sys.executable).with_name("drctl")
    found = str(beside) if beside.exists() else shutil.which("drctl")
    if not found:
        raise BenchError("drctl is not installed: pip install -e . in the project's virtualenv")
    return found


def machine_line() -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine    {cores} cores ({usable} usable), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"load average {load}")


def run(args: argparse.Namespace) -> int:
    say("lab: bringing up what is not running")
    lab = Lab()
    lab.up(report=say)
    lab_env = read_env_file(lab.settings.env_file)
    endpoint = parse_uri(lab_env["LAB_MYSQL_PRIMARY_URI"])
    service = BlobServiceClient.from_connection_string(lab_env["LAB_AZURE_CONNECTION_STRING"])
    container = service.get_container_client(lab_env.get("LAB_AZURE_CONTAINER", "dr-backups"))
    mysqldump, mysqldump_version = src.dump_binary()
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (server_version,) = cur.fetchone()

    ensure_database(lab, endpoint, args.mb)

    with src.option_file(endpoint) as defaults_file, tempfile.TemporaryDirectory(prefix="bench-backup-") as work:
        bench = Bench(endpoint=endpoint, lab_env=lab_env, container=container, mysqldump=mysqldump,
                      drctl=drctl_path(), defaults_file=defaults_file, workdir=Path(work),
                      run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6],
                      mydumper=shutil.which("mydumper"), mydumper_threads=args.mydumper_threads)
        say()
        say(machine_line())
        say(f"server     {server_version} at {endpoint.describe()}")
        gzip_version = subprocess.run(["gzip", "--version"], capture_output=True, text=True, check=False).stdout
        say(f"tools      {mysqldump_version}; {gzip_version.splitlines()[0] if gzip_version else 'gzip'}")
        if bench.mydumper:
            version = subprocess.run([bench.mydumper, "--version"], capture_output=True, text=True, check=False)
            say(f"           {(version.stdout or version.stderr).strip().splitlines()[0]}")
        else:
            say("           mydumper not installed: its step is skipped (apt-get install mydumper)")
        say(f"blobs      wasb://{container.container_name}/{bench.prefix}/")
        try:
            say("warm-up dump (untimed) ...")
            t0 = time.perf_counter()
            dump_bytes = bench.warm_up()
            say(f"  {dump_bytes / MB:.1f} MB in {time.perf_counter() - t0:.2f} s")
            steps: list[tuple[str, Callable[[int], float]]] = [
                ("bare", lambda _: bench.bare()), ("seeds", bench.seeds), ("drctl", bench.drctl_backup)]
            if bench.mydumper:
                bench.times["mydumper"] = []
                steps.append(("mydumper", bench.mydumper_run))
            for round_no in range(args.runs):
                order = steps if round_no % 2 == 0 else steps[::-1]
                for name, step in order:
                    seconds = step(round_no)
                    bench.times[name].append(seconds)
                    extra = f", peak RSS {bench.peak_rss[-1] / MB:.0f} MB" if name == "drctl" else ""
                    say(f"  round {round_no + 1}/{args.runs} {name:<6} {seconds:7.2f} s{extra}")
            report(bench, dump_bytes, args.mb, args.runs)
        finally:
            if args.keep:
                say(f"kept blobs under wasb://{container.container_name}/{bench.prefix}/ (--keep)")
            else:
                say(f"deleted {bench.cleanup()} blob(s) under wasb://{container.container_name}/{bench.prefix}/")

    if args.drop:
        drop_database(lab, endpoint)
    else:
        say(f"database {DATABASE} left on the lab primary for the next run (--drop removes it)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=DEFAULT_MB,
                        help=f"MiB of generated values in {DATABASE} (default {DEFAULT_MB}: a ~900 MB dump)")
    parser.add_argument("--runs", type=int, default=3, help="rounds of the three steps; medians reported (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the backups drctl wrote (default: delete them)")
    parser.add_argument("--drop", action="store_true", help=f"drop {DATABASE} at the end instead of keeping it")
    parser.add_argument("--mydumper-threads", type=int, default=2, help="mydumper's --threads (default 2)")
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.runs < 1:
        parser.error("--mb must be positive and --runs at least 1")
    try:
        return run(args)
    except Exception as err:  # BenchError, or a lab/SDK error
        print(f"bench/backup.py: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
