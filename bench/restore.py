"""Benchmark: `drctl restore` against the plain client (`zstd -dc | mysql`) and against myloader.

Run with the project's interpreter (the lab is brought up if it is not running):

    .venv/bin/python bench/restore.py [--mb N] [--runs R] [--jobs J]

Method
------
1. `Lab().up()` starts whatever part of the local lab is not running; its settings are read from
   `.lab/env`. The restores go to the lab's DR server (`mysql_dr`), the backup is read from Azurite.
2. The source database is bench/backup.py's: its builder (`ensure_database`, imported from
   bench/backup.py) builds `bench_petclinic` on the lab's primary, or reuses it when its marker
   records the same N (the default, 480 MiB, is bench/backup.py's default: both benches share it).
   A size that neither is the default nor matches the marker is built as a private database
   `bench_petclinic_<N>mb` and dropped at the end, so a quick check does not throw away the shared
   database (rebuilding 480 MiB takes minutes, plus the replica catching up).
3. Untimed preparation: one `drctl backup --source ... --to wasb://dr-backups/bench-restore-<run-id>`
   and `drctl verify MANIFEST`; the backup's object(s) are downloaded once to a temporary file for the
   plain client; if mydumper/myloader are installed, `mydumper --threads 2 --rows 100000 --triggers
   --events --routines` dumps the source database once to a temporary directory.
4. Three steps are then timed (wall clock), R times each, in the same run; the order is reversed on
   every other round and the median is kept. Each step restores into a fresh database on the DR
   server, which is dropped (untimed) as soon as the step is measured:
     plain     `zstd -dc FILE | mysql --defaults-file=CNF DB` (bash, pipefail), DB created beforehand
     myloader  `myloader --threads 2 --directory DIR --source-db SRC --database DB`, DB created beforehand
               (skipped, with a note, when myloader is not installed)
     drctl     `drctl restore --from MANIFEST --target mysql_dr --database DB --jobs J` as a child
               process; its wall clock is the measure, its own reported `seconds` is shown too. It
               includes what drctl does beyond loading: streaming from storage, re-reading the data
               to compare row counts and checksums with the manifest, the atomic rename.
   After the plain and myloader steps the restored tables' rows are counted (untimed) and compared
   with the backup's: a partial load fails the bench rather than looking fast. drctl checks itself
   and reports `verified`.
   The mysql clients get their credentials from 0600 `--defaults-file`s and drctl its servers as
   connection ids whose URIs are in its environment: no password is ever in a process's argv.
5. The table and the ratios are printed; nothing is asserted on timing:
     drctl / plain      <= 0.45   a parallel, streamed restore at least ~2.2x faster than the client
     myloader / plain   (informational, when measured)
   A missed target prints MISS; the exit status is 0 either way, 1 only when a step fails.
6. Cleanup: every database made on the DR server (and drctl's scratch databases and bookkeeping rows
   for them in `_multicloud_dr.restores`) is dropped/deleted, every blob under bench-restore-<run-id>/
   is deleted, temporary files go with their directory.

MB means 2**20 bytes throughout. rows/s and MB/s are computed from the backup's row count and its
uncompressed SQL size (`bytes_raw`), the same for every step, so they compare like with like.
The DR server writes a binlog (`log_bin` is shown in the header): the plain client's load is
binlogged, myloader and drctl turn it off for their sessions (`sql_log_bin = 0`, as each does by
default). Numbers depend on the machine and on what else runs on it: ratios compare within one run.
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
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobLeaseClient, BlobServiceClient, ContainerClient

from multicloud_dr.backup import source as src
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.connections import Endpoint, parse_uri
from multicloud_dr.lab.airflow_run import read_env_file
from multicloud_dr.lab.core import Lab
from multicloud_dr.restore.mysql_restore import STATE_DB, scratch_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backup as bench_backup  # bench/backup.py, same folder: its builder and helpers

MB = bench_backup.MB
DATABASE = bench_backup.DATABASE
DEFAULT_MB = bench_backup.DEFAULT_MB
SOURCE_CONN_ID = bench_backup.SOURCE_CONN_ID   # drctl resolves it from AIRFLOW_CONN_BENCH_MYSQL_PRIMARY
TARGET_CONN_ID = "mysql_dr"                     # drctl resolves it from AIRFLOW_CONN_MYSQL_DR
MYDUMPER_OPTIONS = ["--threads", "2", "--rows", "100000", "--triggers", "--events", "--routines"]
MYLOADER_THREADS = 2

TARGET_RATIO = 0.45      # drctl / plain, at most

BenchError = bench_backup.BenchError
say = bench_backup.say
connect = bench_backup.connect


# --------------------------------------------------------------------------------------------------
# The source database (bench/backup.py's builder)
# --------------------------------------------------------------------------------------------------

def source_database(lab: Lab, megabytes: float) -> tuple[str, bool]:
    """(name, private): `bench_petclinic` for the default size or when its marker records this size,
    else a private `bench_petclinic_<N>mb` that is dropped at the end."""
    marker = lab.mysql_primary.dir / f"{DATABASE}.json"
    recorded = json.loads(marker.read_text()).get("megabytes") if marker.exists() else None
    if megabytes == DEFAULT_MB or recorded == megabytes:
        return DATABASE, False
    return f"{DATABASE}_{megabytes:g}mb".replace(".", "_"), True


@contextlib.contextmanager
def as_bench_database(name: str):
    """bench/backup.py's builder works on its module's DATABASE: point it at `name` for the call."""
    saved = bench_backup.DATABASE
    bench_backup.DATABASE = name
    try:
        yield
    finally:
        bench_backup.DATABASE = saved


# --------------------------------------------------------------------------------------------------
# The DR server
# --------------------------------------------------------------------------------------------------

def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def execute(endpoint: Endpoint, *statements: str) -> None:
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        conn.commit()


def count_rows(endpoint: Endpoint, database: str) -> tuple[int, int]:
    """(base tables, rows) of a restored database, with exact COUNT(*)s."""
    with contextlib.closing(connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_type = 'BASE TABLE'", (database,))
        tables = [r[0] for r in cur.fetchall()]
        rows = 0
        for table in tables:
            cur.execute(f"SELECT COUNT(*) FROM {q(table)}")
            rows += cur.fetchone()[0]
    return len(tables), rows


def server_line(endpoint: Endpoint) -> str:
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION(), @@log_bin, @@innodb_buffer_pool_size, @@innodb_flush_log_at_trx_commit")
        version, log_bin, pool, flush = cur.fetchone()
    return (f"{version} at {endpoint.describe()}: log_bin {'ON' if log_bin else 'OFF'}, buffer pool "
            f"{int(pool) / MB:.0f} MB, innodb_flush_log_at_trx_commit {flush}")


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return f"{argv[0]}: ?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return " ".join(text[0].strip("* ").split()) if text else f"{argv[0]}: ?"


# --------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------

@dataclass
class Bench:
    primary: Endpoint
    dr: Endpoint
    lab_env: dict[str, str]
    container: ContainerClient
    drctl: str
    mysql: str
    source_db: str
    jobs: int
    dr_cnf: Path
    primary_cnf: Path
    workdir: Path
    run_id: str
    manifest: str = ""
    backup: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    mydumper_dir: Path | None = None
    times: dict[str, list[float]] = field(default_factory=dict)
    drctl_results: list[dict] = field(default_factory=list)
    made: list[str] = field(default_factory=list)   # databases created on the DR server

    @property
    def prefix(self) -> str:
        return f"bench-restore-{self.run_id}"

    @property
    def tag(self) -> str:
        return self.run_id.rsplit("-", 1)[-1]

    def env(self) -> dict[str, str]:
        return os.environ | self.lab_env | {"AIRFLOW_CONN_BENCH_MYSQL_PRIMARY": self.lab_env["LAB_MYSQL_PRIMARY_URI"],
                                            "AIRFLOW_CONN_MYSQL_DR": self.lab_env["LAB_MYSQL_DR_URI"]}

    def drctl_json(self, argv: list[str], what: str) -> dict:
        with tempfile.TemporaryFile() as stderr:
            result = subprocess.run([self.drctl, *argv], stdout=subprocess.PIPE, stderr=stderr, env=self.env(),
                                    check=False)
            if result.returncode != 0:
                stderr.seek(0)
                raise BenchError(f"drctl {what} exited {result.returncode}: {stderr.read().decode()[-2000:]}")
        return json.loads(result.stdout)

    # -- untimed preparation --------------------------------------------------------------------

    def make_backup(self) -> float:
        t0 = time.perf_counter()
        self.backup = self.drctl_json(["backup", "--source", SOURCE_CONN_ID, "--database", self.source_db,
                                       "--to", f"wasb://{self.container.container_name}/{self.prefix}"], "backup")
        seconds = time.perf_counter() - t0
        self.manifest = self.backup["manifest"]
        verified = self.drctl_json(["verify", self.manifest], "verify")
        if verified.get("status") != "verified":
            raise BenchError(f"drctl verify: {verified.get('status')}: {verified.get('detail')}")
        return seconds

    def download(self) -> int:
        size = 0
        for index, obj in enumerate(self.backup["objects"]):
            url = StorageUrl.parse(obj["name"])
            path = self.workdir / f"backup-{index:03d}.sql.zst"
            with path.open("wb") as handle:
                self.container.get_blob_client(url.path).download_blob(max_concurrency=4).readinto(handle)
            size += path.stat().st_size
            self.files.append(path)
        return size

    def mydumper(self) -> tuple[float, int, int]:
        """(seconds, files, bytes) of one mydumper run into the work directory."""
        out = self.workdir / "mydumper"
        argv = ["mydumper", f"--defaults-file={self.primary_cnf}", "--database", self.source_db,
                "--outputdir", str(out), *MYDUMPER_OPTIONS, "--verbose", "1"]
        t0 = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, check=False)
        seconds = time.perf_counter() - t0
        if result.returncode != 0:
            raise BenchError(f"mydumper exited {result.returncode}: "
                             f"{(result.stderr or result.stdout).decode()[-2000:]}")
        self.mydumper_dir = out
        files = list(out.iterdir())
        return seconds, len(files), sum(f.stat().st_size for f in files)

    # -- fresh databases on the DR server --------------------------------------------------------

    def fresh(self, step: str, round_no: int, create: bool) -> str:
        name = f"bench_rst_{self.tag}_{step}_{round_no + 1}"
        self.made.append(name)
        execute(self.dr, f"DROP DATABASE IF EXISTS {q(name)}")
        if create:
            execute(self.dr, f"CREATE DATABASE {q(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return name

    def drop(self, name: str) -> None:
        execute(self.dr, f"DROP DATABASE IF EXISTS {q(name)}")

    def check_rows(self, step: str, name: str) -> None:
        tables, rows = count_rows(self.dr, name)
        if (tables, rows) != (self.backup["tables"], self.backup["rows"]):
            raise BenchError(f"{step}: {tables} tables, {rows:,} rows restored into {name}; the backup has "
                             f"{self.backup['tables']} tables, {self.backup['rows']:,} rows")

    # -- timed steps ----------------------------------------------------------------------------

    def plain(self, round_no: int) -> float:
        name = self.fresh("plain", round_no, create=True)
        files = " ".join(shlex.quote(str(p)) for p in self.files)
        script = (f"set -o pipefail; zstd -dc {files} | "
                  f"{shlex.join([self.mysql, f'--defaults-file={self.dr_cnf}', name])}")
        try:
            t0 = time.perf_counter()
            result = subprocess.run(["bash", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    check=False)
            seconds = time.perf_counter() - t0
            if result.returncode != 0:
                raise BenchError(f"zstd -dc | mysql exited {result.returncode}: {result.stderr.decode()[-2000:]}")
            self.check_rows("plain", name)
            return seconds
        finally:
            self.drop(name)

    def myloader(self, round_no: int) -> float:
        name = self.fresh("myloader", round_no, create=True)
        argv = ["myloader", f"--defaults-file={self.dr_cnf}", "--threads", str(MYLOADER_THREADS),
                "--directory", str(self.mydumper_dir), "--source-db", self.source_db, "--database", name,
                "--verbose", "1"]
        try:
            t0 = time.perf_counter()
            result = subprocess.run(argv, capture_output=True, check=False)
            seconds = time.perf_counter() - t0
            if result.returncode != 0:
                raise BenchError(f"myloader exited {result.returncode}: "
                                 f"{(result.stderr or result.stdout).decode()[-2000:]}")
            self.check_rows("myloader", name)
            return seconds
        finally:
            self.drop(name)

    def drctl_restore(self, round_no: int) -> float:
        name = self.fresh("drctl", round_no, create=False)
        argv = ["restore", "--from", self.manifest, "--target", TARGET_CONN_ID, "--database", name,
                "--jobs", str(self.jobs)]
        try:
            t0 = time.perf_counter()
            result = self.drctl_json(argv, "restore")
            seconds = time.perf_counter() - t0
            if not result.get("verified") or result.get("rows") != self.backup["rows"]:
                raise BenchError(f"drctl restore: verified={result.get('verified')}, {result.get('rows')} rows; "
                                 f"the backup has {self.backup['rows']:,}")
            self.drctl_results.append(result)
            return seconds
        finally:
            self.drop(name)

    # -- cleanup --------------------------------------------------------------------------------

    def cleanup_databases(self) -> int:
        if not self.made:
            return 0
        names = sorted(set(self.made))
        statements = []
        for name in names:
            statements += [f"DROP DATABASE IF EXISTS {q(name)}",
                           f"DROP DATABASE IF EXISTS {q(scratch_name(name, 'restore'))}",
                           f"DROP DATABASE IF EXISTS {q(scratch_name(name, 'old'))}"]
        execute(self.dr, *statements)
        with contextlib.closing(connect(self.dr)) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'restores'",
                        (STATE_DB,))
            if cur.fetchone():
                cur.execute(f"DELETE FROM {q(STATE_DB)}.restores WHERE database_name IN "
                            f"({', '.join(['%s'] * len(names))})", names)
            conn.commit()
        return len(names)

    def cleanup_blobs(self) -> int:
        deleted = 0
        for item in self.container.list_blobs(name_starts_with=f"{self.prefix}/"):
            blob = self.container.get_blob_client(item.name)
            try:
                blob.delete_blob()
            except HttpResponseError as err:
                if err.status_code != 412:  # 412: leased (a backup or restore that was interrupted)
                    raise
                BlobLeaseClient(blob).break_lease(lease_break_period=0)
                blob.delete_blob()
            deleted += 1
        return deleted


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def report(bench: Bench, runs: int, megabytes: float) -> None:
    med = {step: statistics.median(values) for step, values in bench.times.items()}
    rows = bench.backup["rows"]
    raw_mb = bench.backup["bytes_raw"] / MB
    stored_mb = bench.backup["bytes_stored"] / MB
    labels = {"plain": "plain: zstd -dc FILE | mysql",
              "myloader": f"myloader --threads {MYLOADER_THREADS} (mydumper files)",
              "drctl": f"drctl restore --jobs {bench.jobs}"}
    say()
    say(f"{'step':<40} {'median s':>9} {'rows/s':>10} {'SQL MB/s':>9}   runs (s)")
    for step, label in labels.items():
        if step not in med:
            continue
        seconds = med[step]
        runs_text = " ".join(f"{t:.2f}" for t in bench.times[step])
        say(f"{label:<40} {seconds:>9.2f} {rows / seconds:>10,.0f} {raw_mb / seconds:>9.1f}   {runs_text}")

    own = statistics.median(r["seconds"] for r in bench.drctl_results)
    last = bench.drctl_results[-1]
    say()
    say(f"database   {bench.source_db}: {megabytes:g} MiB of generated values, {bench.backup['tables']} tables, "
        f"{rows:,} rows")
    say(f"backup     {raw_mb:.1f} MB of SQL -> {stored_mb:.1f} MB {bench.backup['codec']} "
        f"({raw_mb / stored_mb:.2f}x), {len(bench.backup['objects'])} object(s)")
    say(f"drctl      own timer median {own:.2f} s (wall clock adds Python start-up); verified="
        f"{all(r['verified'] for r in bench.drctl_results)}, binlog {last.get('checks', {}).get('binlog', '?')}, "
        f"{last['bytes'] / MB:.1f} MB read from storage")
    say()
    say(f"{'ratio':<38} {'measured':>10} {'target':>10}")
    ratio = med["drctl"] / med["plain"]
    say(f"{'drctl / plain':<38} {ratio:>10.3f} {'<= ' + format(TARGET_RATIO, '.2f'):>10}  "
        f"{bench_backup.verdict(ratio <= TARGET_RATIO)}  (speedup {1 / ratio:.2f}x)")
    if "myloader" in med:
        say(f"{'myloader / plain':<38} {med['myloader'] / med['plain']:>10.3f} {'-':>10}  "
            f"(speedup {med['plain'] / med['myloader']:.2f}x)")
        say(f"{'drctl / myloader':<38} {med['drctl'] / med['myloader']:>10.3f} {'-':>10}")
    else:
        say(f"{'myloader / plain':<38} {'-':>10} {'-':>10}  not measured (myloader not installed)")
    say()
    say(f"medians of {runs} run(s) each, order alternated; informational, no timed assertion")


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    say("lab: bringing up what is not running")
    lab = Lab()
    lab.up(report=say)
    lab_env = read_env_file(lab.settings.env_file)
    primary = parse_uri(lab_env["LAB_MYSQL_PRIMARY_URI"])
    dr = parse_uri(lab_env["LAB_MYSQL_DR_URI"])
    service = BlobServiceClient.from_connection_string(lab_env["LAB_AZURE_CONNECTION_STRING"])
    container = service.get_container_client(lab_env.get("LAB_AZURE_CONTAINER", "dr-backups"))
    mysql = shutil.which("mysql") or shutil.which("mariadb")
    if not mysql or not shutil.which("zstd"):
        raise BenchError("the plain baseline needs mysql (or mariadb) and zstd: apt-get install mariadb-client zstd")
    have_myloader = bool(shutil.which("mydumper") and shutil.which("myloader"))

    source_db, private = source_database(lab, args.mb)
    with as_bench_database(source_db):
        bench_backup.ensure_database(lab, primary, args.mb)

    with src.option_file(dr) as dr_cnf, src.option_file(primary) as primary_cnf, \
            tempfile.TemporaryDirectory(prefix="bench-restore-") as work:
        bench = Bench(primary=primary, dr=dr, lab_env=lab_env, container=container, drctl=bench_backup.drctl_path(),
                      mysql=mysql, source_db=source_db, jobs=args.jobs, dr_cnf=dr_cnf, primary_cnf=primary_cnf,
                      workdir=Path(work),
                      run_id=datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6])
        say()
        say(bench_backup.machine_line())
        say(f"target     {server_line(dr)}")
        tools = [tool_version(["zstd", "--version"]), tool_version([mysql, "--version"])]
        if have_myloader:
            tools.append(tool_version(["myloader", "--version"]))
        say(f"tools      {'; '.join(tools)}")
        say(f"blobs      wasb://{container.container_name}/{bench.prefix}/")
        if not have_myloader:
            say("myloader: not installed (apt-get install mydumper)")
        try:
            say(f"backup of {source_db} with drctl, then drctl verify (untimed) ...")
            seconds = bench.make_backup()
            say(f"  {bench.backup['bytes_raw'] / MB:.1f} MB of SQL -> {bench.backup['bytes_stored'] / MB:.1f} MB in "
                f"{seconds:.1f} s; verified: {bench.manifest}")
            t0 = time.perf_counter()
            size = bench.download()
            say(f"  downloaded {size / MB:.1f} MB to a temporary file in {time.perf_counter() - t0:.1f} s (untimed)")
            steps: list[tuple[str, Callable[[int], float]]] = [("plain", bench.plain)]
            if have_myloader:
                say(f"mydumper of {source_db} to a temporary directory (untimed) ...")
                seconds, files, size = bench.mydumper()
                say(f"  {size / MB:.1f} MB in {files} files in {seconds:.1f} s")
                steps.append(("myloader", bench.myloader))
            steps.append(("drctl", bench.drctl_restore))
            bench.times = {name: [] for name, _ in steps}
            for round_no in range(args.runs):
                order = steps if round_no % 2 == 0 else steps[::-1]
                for name, step in order:
                    seconds = step(round_no)
                    bench.times[name].append(seconds)
                    extra = f" (own timer {bench.drctl_results[-1]['seconds']:.2f} s)" if name == "drctl" else ""
                    say(f"  round {round_no + 1}/{args.runs} {name:<8} {seconds:7.2f} s{extra}")
            report(bench, args.runs, args.mb)
        finally:
            try:
                say(f"dropped {bench.cleanup_databases()} database(s) made on the DR server")
            except Exception as err:
                say(f"warning: dropping the databases made on the DR server failed ({err}): {', '.join(bench.made)}")
            say(f"deleted {bench.cleanup_blobs()} blob(s) under wasb://{container.container_name}/{bench.prefix}/")
            if private:
                with as_bench_database(source_db):
                    bench_backup.drop_database(lab, primary)
    if not private:
        say(f"database {source_db} left on the lab primary for the next run")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=DEFAULT_MB,
                        help=f"MiB of generated values in the source database (default {DEFAULT_MB}, shared with "
                             f"bench/backup.py)")
    parser.add_argument("--runs", type=int, default=2, help="rounds of the steps; medians reported (default 2)")
    parser.add_argument("--jobs", type=int, default=4, help="drctl restore --jobs (default 4)")
    args = parser.parse_args(argv)
    if args.mb <= 0 or args.runs < 1 or args.jobs < 1:
        parser.error("--mb must be positive, --runs and --jobs at least 1")
    try:
        return run(args)
    except Exception as err:  # BenchError, or a lab/SDK error
        print(f"bench/restore.py: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
