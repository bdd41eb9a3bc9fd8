"""Benchmark: the binlog archive's lag behind a busy primary, and the point-in-time replay's rate against the
plain pipe (`mariadb-binlog | mariadb`) over the same binlogs, in the same run.

    .venv/bin/python bench/binlog.py [--seconds S] [--tps N] [--interval I]

Method
------
1. `Lab().up()` starts whatever part of the lab is not running; its settings come from `.lab/env`. A database
   `bench_binlog_<id>` with one table is made on the lab's MariaDB primary, backed up and verified (drctl's
   library, untimed); its archive goes to `wasb://dr-backups/bench-binlog-<id>/`.
2. Load: a writer inserts small rows at --tps transactions a second (default 300; one row each, committed)
   for --seconds (default 180). Meanwhile the archiver (`run_archiver`, the DAG's task) reads the primary every
   --interval seconds (default 10, the topology's default). Every second a sampler compares the primary's clock
   with the newest point the archive covers (`archived_to.json`'s `covered_until`, the time of the archiver's
   last read to the primary's end): that difference is the data a restore from the archive would lose at that
   moment. p50 / p99 / max are printed; the goal is p99 <= 60 s.
3. Replay (after the load, one final archive pass): the backup is restored twice into the DR server, untimed:
   - ours: `restore_backup(..., until_gtid=<the archive's last GTID>)`; the replay's own time
     (`checks.point_in_time.seconds`: downloading each piece, checking its SHA-256, replaying) is the measure;
   - plain: the same backup restored without replay, then every archived piece, downloaded beforehand, piped
     `mariadb-binlog --database --rewrite-db --start-position FILES | mariadb` (timed: the pipe only).
   Both restored tables' rows are compared with the primary's: a short replay fails the bench.
4. Printed: the lag figures, both replay times, rows/s and the ratio ours / plain (the check and the download
   are the difference). Nothing is asserted on timing; exit 1 only when a step fails.
5. Cleanup: the bench's databases on the primary and the DR server, and its blobs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from multicloud_dr.backup import binlog
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.source import connect, option_file
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.connections import parse_uri
from multicloud_dr.lab.airflow_run import read_env_file
from multicloud_dr.lab.core import Lab
from multicloud_dr.restore.mysql_restore import RestoreRequest, restore_backup, scratch_name
from multicloud_dr.restore.pitr import client_binary

GOAL_P99 = 60.0


def say(message: str = "") -> None:
    print(message, flush=True)


def server_now(endpoint) -> datetime:
    with contextlib.closing(connect(endpoint)) as conn, conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        return cur.fetchone()[0].replace(tzinfo=UTC)


def count(endpoint, database: str) -> int:
    with contextlib.closing(connect(endpoint, database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM events")
        return cur.fetchone()[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Writer(threading.Thread):
    def __init__(self, endpoint, database: str, tps: int) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.database, self.tps = endpoint, database, tps
        self.stop, self.written, self.error = threading.Event(), 0, None

    def run(self) -> None:
        try:
            with contextlib.closing(connect(self.endpoint, self.database)) as conn, conn.cursor() as cur:
                started = time.monotonic()
                while not self.stop.is_set():
                    cur.execute("INSERT INTO events (written_at, note) VALUES (UTC_TIMESTAMP(6), 'bench')")
                    conn.commit()
                    self.written += 1
                    ahead = self.written / self.tps - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except BaseException as err:
            self.error = err


def run(args: argparse.Namespace) -> int:
    say("lab: bringing up what is not running")
    lab = Lab()
    lab.up(report=say)
    env = read_env_file(lab.settings.env_file)
    primary, dr = parse_uri(env["LAB_MYSQL_PRIMARY_URI"]), parse_uri(env["LAB_MYSQL_DR_URI"])
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(env["LAB_AZURE_CONNECTION_STRING"])
    run_id = uuid.uuid4().hex[:8]
    database = f"bench_binlog_{run_id}"
    root = StorageUrl("wasb", env.get("LAB_AZURE_CONTAINER", "dr-backups"), f"bench-binlog-{run_id}")
    store = BackupStore(service, root.bucket)
    targets = [f"bench_pitr_ours_{run_id}", f"bench_pitr_plain_{run_id}"]
    with contextlib.closing(connect(primary)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}`")
        cur.execute(f"CREATE TABLE `{database}`.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    f"written_at DATETIME(6) NOT NULL, note VARCHAR(20) NOT NULL)")
    try:
        backup = run_backup(BackupRequest(primary, database, root, server_now(primary).replace(microsecond=0)),
                            service)
        if verify_backup(store, backup.manifest_url).status != "verified":
            raise RuntimeError("the bench's backup did not verify")
        manifest = store.read_manifest(backup.manifest_url).manifest
        archive = binlog.BinlogArchive(store, root, database)
        say(f"load: {args.tps} transactions/s for {args.seconds} s; archiver every {args.interval} s")

        writer = Writer(primary, database, args.tps)
        archiver_error: list[BaseException] = []

        def archiver() -> None:
            try:
                binlog.run_archiver(primary, store, root, database, seconds=args.seconds, interval=args.interval,
                                    lease_seconds=15)
            except BaseException as err:
                archiver_error.append(err)

        arch = threading.Thread(target=archiver, daemon=True)
        writer.start()
        arch.start()
        lags: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            time.sleep(1)
            status = archive.read_status()
            if status and status.get("covered_until"):
                lags.append((server_now(primary) - datetime.fromisoformat(status["covered_until"])).total_seconds())
            if int(time.monotonic() - started) % 30 == 0 and lags:
                say(f"  {time.monotonic() - started:5.0f} s: {writer.written:,} rows written, archive lag "
                    f"{lags[-1]:.1f} s")
        writer.stop.set()
        writer.join()
        arch.join()
        if writer.error or archiver_error:
            raise RuntimeError(f"load failed: {writer.error or archiver_error[0]}")
        binlog.run_archiver(primary, store, root, database, seconds=0, lease_seconds=15)
        pieces = archive.pieces()
        cov = binlog.coverage(pieces, manifest.binlog_file, manifest.binlog_position)
        rows = count(primary, database)
        say(f"archived {len(pieces)} pieces, {sum(p.bytes for p in pieces):,} bytes; {rows:,} rows on the primary")

        ours = restore_backup(RestoreRequest(dr, targets[0], until_gtid=cov.last_gtid), service, "latest", root,
                              database)
        ours_seconds = ours.checks["point_in_time"]["seconds"]
        restore_backup(RestoreRequest(dr, targets[1]), service, "latest", root, database)
        with tempfile.TemporaryDirectory(prefix="bench-binlog-") as work:
            files = []
            for index, piece in enumerate(cov.pieces):
                path = Path(work) / f"{index:06d}.binlog"
                head = archive.download_piece(piece, path)
                files.append((path, head, piece))
            _, first_head, first_piece = files[0]
            start = binlog.local_position(first_piece, manifest.binlog_position, first_head)
            with option_file(dr) as defaults:
                t0 = time.perf_counter()
                # The baseline as an operator types it; no secret in it (the option file is a memfd path).
                pipe = subprocess.run(  # noqa: S602
                    f"set -o pipefail; {binlog.binlog_tool()} --database={database} "
                    f"--rewrite-db='{database}->{targets[1]}' --disable-log-bin --start-position={start} "
                    + " ".join(str(p) for p, _, _ in files)
                    + f" | {client_binary()} --defaults-file={defaults} --binary-mode --batch {targets[1]}",
                    shell=True, executable="/bin/bash", capture_output=True, text=True, check=False)
                plain_seconds = time.perf_counter() - t0
            if pipe.returncode != 0:
                raise RuntimeError(f"the plain pipe failed: {pipe.stderr[-500:]}")
        got = {name: count(dr, name) for name in targets}
        if any(n != rows for n in got.values()):
            raise RuntimeError(f"a replay fell short: {got} rows restored, {rows} on the primary")
        replayed = rows - manifest.total_rows
        say()
        say(f"archive lag behind the primary ({len(lags)} samples): p50 {percentile(lags, 0.5):.1f} s, "
            f"p99 {percentile(lags, 0.99):.1f} s, max {max(lags):.1f} s, mean {statistics.mean(lags):.1f} s "
            f"(goal p99 <= {GOAL_P99:.0f} s: {'ok' if percentile(lags, 0.99) <= GOAL_P99 else 'MISS'})")
        say(f"replay of {replayed:,} transactions: ours {ours_seconds:.2f} s ({replayed / ours_seconds:,.0f}/s), "
            f"plain pipe {plain_seconds:.2f} s ({replayed / plain_seconds:,.0f}/s); ours / plain = "
            f"{ours_seconds / plain_seconds:.2f}")
        return 0
    finally:
        with contextlib.suppress(Exception), contextlib.closing(connect(primary)) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        with contextlib.suppress(Exception), contextlib.closing(connect(dr)) as conn, conn.cursor() as cur:
            for name in targets:
                for each in (name, scratch_name(name, "restore"), scratch_name(name, "old")):
                    cur.execute(f"DROP DATABASE IF EXISTS `{each}`")
        container = service.get_container_client(root.bucket)
        for blob in container.list_blobs(name_starts_with=root.path + "/"):
            with contextlib.suppress(Exception):
                container.delete_blob(blob.name, delete_snapshots="include")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=180, help="how long the write load runs (default 180)")
    parser.add_argument("--tps", type=int, default=300, help="transactions a second (default 300)")
    parser.add_argument("--interval", type=int, default=10, help="seconds between the archiver's reads (default 10)")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as err:
        print(f"bench/binlog.py: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
