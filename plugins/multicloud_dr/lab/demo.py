"""`make demo`: the lab, a check of every service through Airflow, the nightly backup DAG and the
restore drill DAG, each run by Airflow itself (`dag.test()` against the lab's SQLite metadata DB).
Task logs go to .lab/demo.log; what a user wants to see is printed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from multicloud_dr.lab import airflow_run
from multicloud_dr.lab.core import Lab

MB = 2**20


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _run(dag_id: str, dags: Path, log: Path) -> tuple[Any, dict[str, Any], float]:
    _say(f"demo: running DAG {dag_id} with Airflow (task logs: {log})")
    t0 = time.monotonic()
    with airflow_run.output_to(log):
        dag_run = airflow_run.run_dag(dag_id, dags)
    return dag_run, airflow_run.task_results(dag_run), time.monotonic() - t0


def _states(results: dict[str, Any]) -> None:
    for task_id, (state, _) in sorted(results.items()):
        print(f"  {task_id:<32} {state}")


def _returned(results: dict[str, Any], suffix: str) -> dict | None:
    return next((value for task_id, (_, value) in results.items() if task_id.endswith(suffix) and value), None)


def _demo_topology(lab: Lab) -> None:
    """The shipped topology with the binlog archive on (backup.binlogs), for this process's DAG runs: the demo
    archives the primary's binlogs after the backup, and replication_health then measures the backup path's
    RPO by the archive (check binlog_archive/<db>) instead of by the nightly backup's age."""
    import os

    import yaml

    from multicloud_dr.config import topology_path

    data = yaml.safe_load(topology_path().read_text())
    data["backup"]["binlogs"] = {"interval_seconds": 10, "run_minutes": 14}
    path = lab.settings.home / "demo-topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    os.environ["MULTICLOUD_DR_TOPOLOGY"] = str(path)
    _say(f"demo: topology {path} (the shipped one, with backup.binlogs on)")


def _archive_binlogs() -> bool:
    """One pass of the binlog archiver per MySQL database (the mysql_binlog_archive task's loop, once; as
    `drctl binlogs archive --once`), and what the archive now covers."""
    from multicloud_dr.backup.binlog import BinlogArchive, coverage, oldest_backup_position, run_archiver
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.config import load_topology
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.connections.wasb import blob_service_client

    topology = load_topology()
    root = StorageUrl.parse(topology.backup.location)
    store = BackupStore(blob_service_client(topology.backup.storage_conn_id), root.bucket)
    for database in topology.mysql_databases():
        t0 = time.monotonic()
        result = run_archiver(get_endpoint(database.primary_conn_id), store, root, database.name, seconds=0,
                              lease_seconds=topology.backup.lease_seconds)
        archive = BinlogArchive(store, root, database.name)
        pieces = archive.pieces()
        start = oldest_backup_position(store, root, database.name)
        cov = coverage(pieces, *start) if start else None
        print(f"binlogs:  {archive.base}: {len(pieces)} pieces, {sum(p.bytes for p in pieces):,} bytes "
              f"({result.pieces_written} new in {time.monotonic() - t0:.1f} s)")
        if cov is not None:
            where = f"{cov.end[0]}:{cov.end[1]}" if cov.end else "-"
            print(f"          from the oldest verified backup's position {start[0]}:{start[1]} to {where}, "
                  f"{'no gap' if cov.ok else 'GAPS: ' + '; '.join(cov.gaps)}; everything committed before "
                  f"{result.covered_until} is archived")
        print(f"          point-in-time restore: drctl restore --from latest --target mysql_dr --database "
              f"{database.name}_pitr --source-database {database.name} --until <time>\n")
        if cov is None or not cov.ok:
            return False
    return True


def run_demo() -> bool:
    from multicloud_dr.connectivity import PROBES, check_rows, check_task_id, format_table

    lab = Lab()
    lab.up(report=_say)
    airflow_run.use_lab_environment(lab.settings)
    _say("demo: preparing Airflow's metadata DB (SQLite, in .lab/airflow)")
    airflow_run.migrate_metadata_db()
    log = lab.settings.home / "demo.log"
    dags = lab.settings.root / "dags"
    _demo_topology(lab)

    check_run, results, seconds = _run("lab_service_check", dags, log)
    rows = check_rows({service: results.get(check_task_id(service), (None, None))[1] for service in PROBES},
                      missing=f"check failed: see {log}")
    print(format_table(rows))
    print(f"lab_service_check: {check_run.state}; {sum(r['ok'] for r in rows)}/{len(rows)} services ok "
          f"in {seconds:.1f} s\n")
    if str(check_run.state) != "success":
        return False

    backup_run, results, seconds = _run("mysql_backup", dags, log)
    _states(results)
    summary = _returned(results, ".dump_and_upload")
    if summary:
        print(f"backup:   {summary['manifest']}")
        print(f"          {summary['bytes_raw'] / MB:.1f} MB of SQL -> {summary['bytes_stored'] / MB:.1f} MB "
              f"{summary['codec']}, {summary['tables']} tables, {summary['rows']:,} rows, gtid {summary['gtid']}")
        for obj in summary["objects"]:
            print(f"          {obj['name']}  sha256 {obj['sha256'][:16]}...")
        print("restore:  zstd -dc <object> | mysql <database>   (README: restoring with standard tools)")
    print(f"mysql_backup: {backup_run.state} in {seconds:.1f} s\n")
    if str(backup_run.state) != "success":
        return False

    drill_run, results, seconds = _run("dr_restore_drill", dags, log)
    _states(results)
    report = _returned(results, ".report")
    if report:
        print(f"drill:    restored {report['backup_id']} into {report['scratch_database']} (dropped afterwards): "
              f"{report['tables']} tables, {report['rows']:,} rows (manifest {report['manifest_rows']:,}), "
              f"verified={report['verified']}")
        print(f"          {report['seconds']:.1f} s, {report['rows_per_second']:,.0f} rows/s, "
              f"{report['mb_per_second']:.1f} MB/s, database {report['database_size_bytes'] / MB:.1f} MB")
        print(f"          {report.get('message', '')}")
        print(json.dumps(report, indent=2, default=str))
    print(f"dr_restore_drill: {drill_run.state} in {seconds:.1f} s\n")
    if str(drill_run.state) != "success":
        return False

    if not _archive_binlogs():
        return False

    health_run, results, seconds = _run("replication_health", dags, log)
    summary = results.get("rpo", (None, None))[1]
    if summary:
        for check in summary["checks"]:
            value = "-" if check["value"] is None else f"{check['value']:g}"
            print(f"  {check['name']:<30} {check['status']:<7} {value:>8}  {check['detail']}")
        print(f"current achievable RPO: {summary['rpo_seconds']} s (target {summary['rpo_target_seconds']} s)")
    print(f"replication_health: {health_run.state} in {seconds:.1f} s")
    return str(health_run.state) == "success"
