"""`drctl`: the library's functions without Airflow, for a shell when Airflow itself is down.

Exit codes: 0 done, 1 the check or job ran and found a problem, 2 bad input or a missing
prerequisite (the one-line message on stderr says what to fix).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from datetime import UTC, datetime

from multicloud_dr import connections as conn_ids
from multicloud_dr.exceptions import DrError, InputError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
# Server errors that mean the account lacks a privilege (on a database, a table, a column, a routine, SUPER).
MYSQL_ACCESS_DENIED = frozenset({1044, 1045, 1142, 1143, 1227, 1370})
MYSQL_ACCOUNT_OPTION = {"backup": "--source", "restore": "--target"}


class _Parser(argparse.ArgumentParser):
    """argparse with drctl's contract for bad input: one line on stderr, exit 2 (not the usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"drctl: error: {' '.join(message.split())} (see: {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _mysql_error_line(err: Exception, command: str | None) -> str:
    """One line for a server error nothing below turned into a DrError: the server's code and message
    (which name the account, never its password) and what to check."""
    code, text = (err.args[0], err.args[1]) if len(err.args) >= 2 else (None, str(err) or type(err).__name__)
    option = MYSQL_ACCOUNT_OPTION.get(command or "")
    account = f"the account given by {option}" if option else "the MySQL account of the connection"
    if code in MYSQL_ACCESS_DENIED:
        hint = f"{account} lacks a privilege there: grant it (SHOW GRANTS lists what it has), or use another account"
    else:
        hint = f"check the MySQL server and {account}"
    return f"MySQL error {code if code is not None else '-'}: {' '.join(str(text).split())}; {hint}"


def _lab_up(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.core import Lab, format_status

    lab = Lab()
    t0 = time.monotonic()
    print(f"lab: starting in {lab.settings.home}", file=sys.stderr)
    lab.up(report=lambda line: print(line, file=sys.stderr))
    print(f"lab: up in {time.monotonic() - t0:.1f} s; settings in {lab.settings.env_file} "
          f"(load them with: . {lab.settings.env_file})", file=sys.stderr)
    print(format_status(lab.status()))
    return EXIT_OK


def _lab_down(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.core import Lab

    lab = Lab()
    stopped = lab.down(wipe=args.wipe, report=lambda line: print(line, file=sys.stderr))
    print(f"lab: stopped {len(stopped)} service(s)" + (" and wiped its data" if args.wipe else ""))
    return EXIT_OK


def _lab_status(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.core import Lab, format_status

    states = Lab().status()
    print(format_status(states))
    return EXIT_OK if all(s.ok for s in states) else EXIT_PROBLEM


def _lab_airflow(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.airflow_run import run_standalone

    return run_standalone()


def _demo(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.demo import run_demo

    return EXIT_OK if run_demo() else EXIT_PROBLEM


def _storage(ref: str):
    from multicloud_dr.backup.store import BackupStore  # noqa: F401  (import errors surface early)
    from multicloud_dr.connections.wasb import blob_service_client

    return blob_service_client(ref)


def _logical_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--logical-date {value!r} is not an ISO date-time (e.g. 2026-11-22T03:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _backup(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
    from multicloud_dr.backup.source import server_now
    from multicloud_dr.connections import get_endpoint

    logical_date = _logical_date(args.logical_date)
    request = BackupRequest(source=get_endpoint(args.source), database=args.database, root=StorageUrl.parse(args.to),
                            logical_date=logical_date or datetime.now(UTC), codec=args.codec,
                            block_size=args.block_size, lease_seconds=args.lease_seconds,
                            max_inflight_bytes=args.upload_buffer_mb * 2**20)
    if logical_date is None:
        # Checked first, then named by the source server's clock, not this host's (F25: a worker days fast
        # would name the backup days ahead, and `latest` and retention order backups by this date).
        request = dataclasses.replace(request, logical_date=server_now(request.source).replace(tzinfo=UTC,
                                                                                               microsecond=0))
    result = run_backup(request, _storage(args.storage_conn))
    print(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK


def _backups_list(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore

    root = StorageUrl.parse(args.at)
    store = BackupStore(_storage(args.storage_conn), root.bucket)
    store.check_container()
    rows = [{"manifest": str(r.url), "database": r.manifest.database,
             "logical_date": r.manifest.logical_date.isoformat(), "created": r.manifest.stored_at.isoformat(),
             "bytes_stored": r.manifest.bytes_stored, "rows": r.manifest.total_rows,
             "verification": r.manifest.verification.status, "gtid": r.manifest.gtid}
            for r in store.list_manifests(root, args.database)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'CREATED (storage time)':<27} {'VERIFICATION':<12} {'STORED MB':>10} {'ROWS':>12}  MANIFEST")
        for r in rows:
            print(f"{r['created']:<27} {r['verification']:<12} {r['bytes_stored'] / 2**20:>10.1f} {r['rows']:>12,}  "
                  f"{r['manifest']}")
    return EXIT_OK


def _binlogs_archive(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.binlog import run_archiver
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.connections import get_endpoint

    source = get_endpoint(args.source)   # a bad source is said before any server is contacted
    database = args.database or source.schema
    if not database:
        raise InputError(f"which database's archive? {source.describe()} names no schema: pass --database")
    root = StorageUrl.parse(args.to)
    store = BackupStore(_storage(args.storage_conn), root.bucket)
    store.check_container()
    result = run_archiver(source, store, root, database,
                          seconds=0 if args.once else args.seconds, interval=args.interval)
    print(json.dumps(dataclasses.asdict(result), indent=2))
    return EXIT_OK


def _binlogs_list(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.binlog import BinlogArchive, coverage, oldest_backup_position
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore

    root = StorageUrl.parse(args.at)
    store = BackupStore(_storage(args.storage_conn), root.bucket)
    store.check_container()
    archive = BinlogArchive(store, root, args.database)
    pieces = archive.pieces()
    start = oldest_backup_position(store, root, args.database)
    cov = coverage(pieces, *start) if start else None
    status = archive.read_status()
    listing = {"archive": str(archive.base), "pieces": [p.to_dict() for p in pieces],
               "from_backup": f"{start[0]}:{start[1]}" if start else None,
               "covered_to": f"{cov.end[0]}:{cov.end[1]}" if cov and cov.end else None,
               "last_event_at": cov.last_event_at if cov else None, "gaps": cov.gaps if cov else [],
               "status": status}
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        print(f"{'FILE':<20} {'START':>12} {'END':>12} {'BYTES':>10}  {'FIRST EVENT':<25} {'LAST EVENT':<25} GTIDS")
        for p in pieces:
            closed = " closed" if p.closed else ""
            print(f"{p.file:<20} {p.start:>12} {p.end:>12} {p.bytes:>10}  {p.first_event_at or '-':<25} "
                  f"{p.last_event_at or '-':<25} {p.first_gtid or '-'}..{p.last_gtid or '-'}{closed}")
        start_text = listing["from_backup"] or "- (no verified backup)"
        print(f"from the oldest verified backup's position {start_text} to {listing['covered_to'] or '-'}; "
              f"everything committed before "
              f"{(status or {}).get('covered_until', '-')} archived at the last read")
        for gap in listing["gaps"]:
            print(f"GAP: {gap}")
    return EXIT_PROBLEM if listing["gaps"] else EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.backup.store import BackupStore
    from multicloud_dr.backup.verify import verify_backup

    url = StorageUrl.parse(args.manifest)
    result = verify_backup(BackupStore(_storage(args.storage_conn), url.bucket), url)
    print(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK if result.status == "verified" else EXIT_PROBLEM


def _restore(args: argparse.Namespace) -> int:
    from multicloud_dr.connections import get_endpoint
    from multicloud_dr.restore.mysql_restore import RestoreRequest, restore_backup

    location = None
    if args.source == "latest":
        from multicloud_dr.config import load_topology

        location = args.at or load_topology().backup.location
    request = RestoreRequest(target=get_endpoint(args.target), database=args.database, jobs=args.jobs,
                             replace=args.replace, binlog=args.binlog, lease_seconds=args.lease_seconds,
                             load_data=not args.no_load_data, until_gtid=args.until_gtid)
    if args.until:
        from multicloud_dr.restore.pitr import parse_until

        request = dataclasses.replace(request, until=parse_until(args.until))
    result = restore_backup(request, args.storage_conn, args.source, location, args.source_database or args.database)
    print(json.dumps(result.to_dict(), indent=2))
    return EXIT_OK


def _replication_check(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.replication.health import check_all, plan_checks

    topology = load_topology()
    specs = plan_checks(topology)
    if args.only:
        unknown = set(args.only) - {s["name"] for s in specs}
        if unknown:
            raise InputError(f"no check named {', '.join(sorted(unknown))}; the topology has: "
                             f"{', '.join(s['name'] for s in specs)}")
        specs = [s for s in specs if s["name"] in args.only]
    report = check_all(topology, specs)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(f"{'CHECK':<30} {'STATUS':<7} {'VALUE':>10} {'THRESHOLD':>10}  DETAIL")
        for c in report.checks:
            value = "-" if c.value is None else f"{c.value:g}"
            threshold = "-" if c.threshold is None else f"{c.threshold:g}"
            print(f"{c.name:<30} {c.status:<7} {value:>10} {threshold:>10}  {c.detail}")
        rpo = "unknown" if report.rpo_seconds is None else f"{report.rpo_seconds:g} s"
        print(f"current achievable RPO: {rpo} (target {report.rpo_target_seconds:g} s): {report.status}, "
              f"{len(report.checks)} checks in {report.seconds:.2f} s")
    return report.exit_code


def _terraform(args: argparse.Namespace) -> int:
    from multicloud_dr.backup.layout import StorageUrl
    from multicloud_dr.terraform import provision
    from multicloud_dr.terraform.plan_store import PlanStore
    from multicloud_dr.terraform.stacks import StackRef, TerraformSettings, run_key

    settings = TerraformSettings.load()
    ref = StackRef(args.cloud, args.environment, args.stack)
    if args.terraform_command == "output":
        print(json.dumps(provision.stack_outputs(ref, settings).values, indent=2))
        return EXIT_OK
    store = PlanStore.from_service(_storage(settings.storage_conn_id), settings.plan_location)
    if args.terraform_command == "plan":
        record = provision.plan_stack(ref, settings, "destroy" if args.destroy else "apply", store,
                                      run_key(f"drctl__{datetime.now(UTC):%Y%m%dT%H%M%SZ}"))
        print(json.dumps({k: v for k, v in record.to_dict().items() if not k.endswith("_md")}, indent=2))
        return EXIT_OK
    if args.confirm != args.environment:  # on a shell, whoever types the environment's name is the approver
        raise InputError(f"review the plan, then confirm with --confirm {args.environment}")
    print(json.dumps(provision.apply_stack(ref, settings, store, StorageUrl.parse(args.plan), args.sha256,
                                           applied_by={"approved_by": "drctl --confirm"},
                                           action="destroy" if getattr(args, "destroy", False) else "apply"
                                           ).to_dict(), indent=2))
    return EXIT_OK


def _traffic_status(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.traffic.switch import traffic_status

    report = traffic_status(load_topology())
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return EXIT_OK
    print(f"{'PROVIDER':<11} {'SITE':<8} WHAT")
    for layer in report.to_dict()["layers"]:
        what = {k: v for k, v in layer.items() if k not in ("provider", "site")}
        print(f"{layer['provider']:<11} {layer['site'] or '-':<8} {json.dumps(what, default=str)}")
    print(f"traffic: {report.site or 'none'} ({len(report.layers)} layers)")
    return EXIT_OK


def _traffic_switch(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.traffic.switch import build_layers, switch_traffic

    topology = load_topology()
    report = switch_traffic(topology, args.to, dry_run=args.dry_run, layers=build_layers(topology, args.only))
    print(json.dumps(report.to_dict(), indent=2, default=str))
    moved = sum(r.changed for r in report.results)
    print(f"traffic: {'would move' if args.dry_run else 'moved'} "
          f"{sum(p['would_change'] for p in report.planned) if args.dry_run else moved} of {len(report.planned)} "
          f"layers to {args.to} in {report.seconds:.1f} s", file=sys.stderr)
    return EXIT_OK


def _app(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.kube.site import SiteApp, scale_down_if_reachable

    topology = load_topology()
    if args.app_command == "health":
        from multicloud_dr.kube.health import wait_healthy

        app = topology.site(args.site).app
        if app is None:
            raise InputError(f"site {args.site} has no app section: add sites.{args.site}.app (health_conn_id) to the "
                             f"topology")
        result = wait_healthy(app.health_conn_id, path=app.health_path,
                              timeout=args.timeout or app.health_timeout_seconds, name=f"site {args.site}")
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return EXIT_OK
    if args.app_command == "scale" and args.down and args.if_reachable:
        app = topology.site(args.site).app
        if app is None:
            raise InputError(f"site {args.site} has no app section: add sites.{args.site}.app to the topology")
        print(json.dumps(scale_down_if_reachable(app, site=args.site), indent=2, default=str))
        return EXIT_OK
    with SiteApp.from_topology(topology, args.site) as site_app:
        if args.app_command == "status":
            result = site_app.status()
        elif args.down:
            result = site_app.scale_down()
        elif args.replicas == 0:
            result = site_app.scale_to(0)
        else:
            result = site_app.scale_up(None if args.up else args.replicas)
    print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


def _frontend_sync(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.frontend.sync import FrontendSyncError, run_frontend_sync

    def show(result: dict) -> None:
        if args.json:
            print(json.dumps(result, indent=2, default=str))
            return
        for copy in result.get("copies", []):
            counts = ", ".join(f"{k} {copy[k]}" for k in ("copied", "skipped", "retagged", "deleted", "extra", "failed")
                               if k in copy)
            print(f"{copy['url']}: {counts}" + (f"; error: {copy['error']}" if copy.get("error") else ""))
        print(f"frontend: {'would copy' if result.get('dry_run') else 'copied'} {result.get('copied', 0)} objects "
              f"({result.get('bytes_copied', 0):,} bytes), {result.get('skipped', 0)} up to date, "
              f"{result.get('deleted', 0)} deleted, {result.get('extra', 0)} extra, "
              f"in {result.get('seconds', 0):.1f} s")

    try:
        result = run_frontend_sync(load_topology(), dry_run=args.dry_run)
    except FrontendSyncError as err:      # transfers failed: the summary still says what was done
        show(getattr(err, "result", {}))
        raise
    show(result)
    return EXIT_OK


def _fence(args: argparse.Namespace) -> int:
    from multicloud_dr.config import load_topology
    from multicloud_dr.failover.site_fence import fence_site

    results = fence_site(load_topology(), args.site, unfence=args.unfence, engine=args.engine, database=args.database)
    print(json.dumps(results, indent=2, default=str))
    pending = [r["conn_id"] for r in results if r.get("pending")]
    if pending:
        print(f"drctl: fencing is pending for {', '.join(pending)}: unreachable now; run drctl fence again when it "
              f"is reachable, before it can take a write", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def _failover(args: argparse.Namespace, failback: bool = False) -> int:
    import getpass

    from multicloud_dr.config import load_topology
    from multicloud_dr.failover.orchestrator import RunInfo, StepRunner, kind_of, run_all
    from multicloud_dr.failover.request import FailoverRequest
    from multicloud_dr.state.dr_state import DrStateStore

    request = FailoverRequest.parse({"target_site": "primary" if failback else args.to, "mode": args.mode,
                                     "dry_run": args.dry_run, "force": args.force, "reason": args.force_reason,
                                     "pre_approved": args.pre_approved})
    topology = load_topology()
    store = DrStateStore.for_topology(topology)
    user = args.as_user or getpass.getuser()
    kind = kind_of(request, failback)
    run_id = args.resume
    if run_id is None:   # a drctl run of the same operation that stopped half-way is resumed, not started again
        state, _ = store.read()
        op = state.operation if state else None
        if (state and state.holder and op and state.holder.by.startswith("drctl:")
                and (op.kind, op.target_site, op.mode) == (kind, request.target_site, request.mode)):
            run_id = state.holder.run_id
            print(f"drctl: resuming {run_id} (held since {state.holder.started_at.isoformat()})", file=sys.stderr)
    run_id = run_id or f"drctl__{kind}__{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    info = RunInfo(run_id=run_id, by=f"drctl:{user}", triggered_by=user, triggered_at=datetime.now(UTC), kind=kind)
    runner = StepRunner(topology, request, info, store)

    def show(name: str, detail) -> None:
        line = detail.get("detail") if isinstance(detail, dict) else None
        print(f"drctl: step {name} done" + (f": {line}" if line else ""), file=sys.stderr)

    report = run_all(runner, approved_by=args.approve_as, approval_reason=args.reason, on_step=show)
    print(json.dumps(report, default=str))
    return EXIT_OK


def _failover_demo(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.failover_demo import run_failover_demo

    return EXIT_OK if run_failover_demo() else EXIT_PROBLEM


def _scaleout_demo(args: argparse.Namespace) -> int:
    from multicloud_dr.lab.scaleout_demo import run_scaleout_demo

    return EXIT_OK if run_scaleout_demo() else EXIT_PROBLEM


def _state(args: argparse.Namespace) -> int:
    import getpass

    from multicloud_dr.config import load_topology
    from multicloud_dr.state.dr_state import DrStateStore

    store = DrStateStore.for_topology(load_topology())
    if args.force_release:
        if not args.reason:
            raise InputError("--force-release needs --reason (recorded in the DR state's history)")
        state, _ = store.apply(lambda s, at: s.force_release(f"drctl:{getpass.getuser()}", args.reason, at=at))
    else:
        state, _ = store.read()
        if state is None:
            state, _ = store.create_if_absent()
    print(json.dumps(state.to_dict(), indent=2, default=str))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="drctl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    lab = commands.add_parser("lab", help="the local DR lab of real servers on 127.0.0.1")
    lab_commands = lab.add_subparsers(dest="lab_command", required=True)
    lab_commands.add_parser("up", help="start (or reuse) every lab service, seed it, write .lab/env") \
        .set_defaults(func=_lab_up)
    down = lab_commands.add_parser("down", help="stop the processes the lab started")
    down.add_argument("--wipe", action="store_true", help="also delete .lab/ (all lab data)")
    down.set_defaults(func=_lab_down)
    lab_commands.add_parser("status", help="each service with its port and state (exit 1 if any is down)") \
        .set_defaults(func=_lab_status)
    lab_commands.add_parser("airflow", help="airflow standalone on the lab (Ctrl-C or SIGTERM stops all it started)") \
        .set_defaults(func=_lab_airflow)
    storage_help = f"Airflow connection id of the backup storage account (default {conn_ids.AZURE_BLOB_DR})"
    backup = commands.add_parser("backup", help="back up one MySQL database to Azure Blob (streamed, verified later)")
    backup.add_argument("--source", required=True, help="URI (mysql://user:pass@host:port) or connection id")
    backup.add_argument("--database", required=True)
    backup.add_argument("--to", required=True, metavar="wasb://CONTAINER/PREFIX")
    backup.add_argument("--codec", choices=("zstd", "gzip"), default="zstd")
    backup.add_argument("--logical-date",
                        help="names the backup (ISO, UTC; default now): the same date is the same backup")
    backup.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    backup.add_argument("--block-size", type=_positive_int, default=8 * 2**20,
                        help="first block size in bytes (grows as needed)")
    backup.add_argument("--upload-buffer-mb", type=_positive_int, default=64,
                        help="at most this many MB of blocks queued or uploading (bounds memory)")
    backup.add_argument("--lease-seconds", type=int, default=60, choices=range(15, 61), metavar="15..60",
                        help="lease duration: how soon a crashed run's backup can be retried")
    backup.set_defaults(func=_backup)

    backups = commands.add_parser("backups", help="stored backups")
    backups_commands = backups.add_subparsers(dest="backups_command", required=True)
    listing = backups_commands.add_parser("list", help="every backup under a prefix, oldest first")
    listing.add_argument("--at", required=True, metavar="wasb://CONTAINER/PREFIX")
    listing.add_argument("--database")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    listing.set_defaults(func=_backups_list)

    binlogs = commands.add_parser("binlogs", help="the binlog archive (point-in-time recovery)")
    binlogs_commands = binlogs.add_subparsers(dest="binlogs_command", required=True)
    archive = binlogs_commands.add_parser("archive", help="copy the primary's binlogs to Blob storage, in pieces")
    archive.add_argument("--source", required=True, help="URI (mysql://user:pass@host:port) or connection id")
    archive.add_argument("--to", required=True, metavar="wasb://CONTAINER/PREFIX", help="the backup location")
    archive.add_argument("--database", help="the backed-up database the archive belongs to (default: the source "
                                            "connection's schema)")
    archive.add_argument("--once", action="store_true", help="one pass to the primary's current end, then exit")
    archive.add_argument("--seconds", type=_positive_int, default=3600, help="without --once: run this long")
    archive.add_argument("--interval", type=_positive_int, default=10, help="seconds between reads of the primary")
    archive.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    archive.set_defaults(func=_binlogs_archive)
    blist = binlogs_commands.add_parser("list", help="what is archived, from the oldest verified backup on, and gaps")
    blist.add_argument("--at", required=True, metavar="wasb://CONTAINER/PREFIX")
    blist.add_argument("--database", required=True)
    blist.add_argument("--json", action="store_true")
    blist.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    blist.set_defaults(func=_binlogs_list)

    verify = commands.add_parser("verify", help="read a backup back and check it against its manifest")
    verify.add_argument("manifest", metavar="MANIFEST", help="wasb://CONTAINER/.../manifest.json")
    verify.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    verify.set_defaults(func=_verify)

    restore = commands.add_parser("restore", help="restore a backup into a MySQL server (parallel, verified)")
    restore.add_argument("--from", dest="source", required=True, metavar="MANIFEST_URL|latest")
    restore.add_argument("--target", required=True, help="URI (mysql://user:pass@host:port) or connection id")
    restore.add_argument("--database", required=True, help="the database to restore into")
    restore.add_argument("--jobs", type=_positive_int, default=4, help="parallel loading connections")
    restore.add_argument("--replace", action="store_true", help="replace a database that has tables")
    restore.add_argument("--binlog", action="store_true", help="write the load to the target's binlog (slower)")
    restore.add_argument("--no-load-data", action="store_true",
                         help="load every row with the dump's INSERT statements, never LOAD DATA LOCAL (slower)")
    restore.add_argument("--at", metavar="wasb://CONTAINER/PREFIX",
                         help="with --from latest: where backups are (default: the topology's backup location)")
    restore.add_argument("--source-database", help="with --from latest: the backed-up database (default --database)")
    restore.add_argument("--storage-conn", default=conn_ids.AZURE_BLOB_DR, help=storage_help)
    restore.add_argument("--lease-seconds", type=int, default=60, choices=range(15, 61), metavar="15..60",
                         help="how soon a crashed restore into the same target can be run again")
    point = restore.add_mutually_exclusive_group()
    point.add_argument("--until", metavar="TIME", help="point-in-time: the newest backup before TIME plus the archived "
                       "binlogs up to TIME (2026-12-01T10:00:00Z; transactions timed before it)")
    point.add_argument("--until-gtid", metavar="GTID", help="point-in-time: up to and including this transaction")
    restore.set_defaults(func=_restore)

    replication = commands.add_parser("replication", help="replication health and the current achievable RPO")
    replication_commands = replication.add_subparsers(dest="replication_command", required=True)
    check = replication_commands.add_parser(
        "check", help="run every replication check of the topology (exit 0 ok, 1 a breach, 2 a check cannot run)")
    check.add_argument("--json", action="store_true", help="one JSON object: rpo_seconds and checks[]")
    check.add_argument("--only", action="append", metavar="NAME", help="run only this check (repeatable)")
    check.set_defaults(func=_replication_check)

    terraform = commands.add_parser("terraform", help="plan / apply a saved plan / outputs of one stack (no Airflow)")
    terraform_commands = terraform.add_subparsers(dest="terraform_command", required=True)
    for name, text in (("plan", "plan; a plan with changes is stored, its URL and SHA-256 printed"),
                       ("apply", "apply a stored plan (exactly that plan, once)"),
                       ("output", "the stack's non-sensitive outputs as JSON")):
        sub = terraform_commands.add_parser(name, help=text)
        sub.add_argument("--cloud", required=True, choices=("aws", "azure", "gcp"))
        sub.add_argument("--environment", required=True, choices=("dev", "staging", "production", "dr"))
        sub.add_argument("--stack", required=True, choices=("always-on", "failover"))
        sub.set_defaults(func=_terraform)
        if name == "plan":
            sub.add_argument("--destroy", action="store_true", help="plan the destruction of the stack")
        if name == "apply":
            sub.add_argument("--plan", required=True, metavar="wasb://.../plan.tfplan", help="printed by plan")
            sub.add_argument("--sha256", required=True, help="the plan's SHA-256, printed by plan")
            sub.add_argument("--confirm", required=True, metavar="ENVIRONMENT", help="type the environment's name")
            sub.add_argument("--destroy", action="store_true",
                             help="the plan is a destroy plan (from plan --destroy); refused for any other plan")

    traffic = commands.add_parser("traffic", help="which site users reach (Route 53, CloudFront, Cloudflare)")
    traffic_commands = traffic.add_subparsers(dest="traffic_command", required=True)
    status = traffic_commands.add_parser("status", help="each traffic layer of the topology and the site it serves")
    status.add_argument("--json", action="store_true", help='{"site": ..., "layers": [...]}')
    status.set_defaults(func=_traffic_status)
    switch = traffic_commands.add_parser(
        "switch", help="move every layer to a site (compare-and-set; layers already there are not written)")
    switch.add_argument("--to", required=True, choices=("primary", "dr"))
    switch.add_argument("--dry-run", action="store_true", help="read every layer and say what would move")
    switch.add_argument("--only", action="append", choices=("route53", "cloudfront", "cloudflare"),
                        help="switch only this layer (repeatable)")
    switch.set_defaults(func=_traffic_switch)

    app = commands.add_parser("app", help="the application at a site: its deployments (AKS/GKE/EKS) and health")
    app_commands = app.add_subparsers(dest="app_command", required=True)
    app_status = app_commands.add_parser("status", help="each deployment's replicas, ready and rollout state")
    app_scale = app_commands.add_parser(
        "scale", help="scale the site's deployments (up: its ConfigMap/Secret first) and wait for the rollout")
    app_health = app_commands.add_parser("health", help="wait until the site's app answers its health check")
    for sub in (app_status, app_scale, app_health):
        sub.add_argument("--site", required=True, choices=("primary", "dr"))
        sub.set_defaults(func=_app)
    how = app_scale.add_mutually_exclusive_group(required=True)
    how.add_argument("--up", action="store_true", help="to the topology's replicas")
    how.add_argument("--replicas", type=int, choices=range(0, 1001), metavar="N")
    how.add_argument("--down", action="store_true", help="to 0")
    app_scale.add_argument("--if-reachable", action="store_true",
                           help="with --down: if the cluster's API does not answer, say so and exit 0 (an old primary)")
    app_health.add_argument("--timeout", type=_positive_int, help="seconds (default: the topology's)")

    frontend = commands.add_parser("frontend", help="the static frontend's DR copies (S3 -> Blob / GCS)")
    frontend_commands = frontend.add_subparsers(dest="frontend_command", required=True)
    sync = frontend_commands.add_parser("sync", help="copy what changed to every copy, verified by size and SHA-256")
    sync.add_argument("--dry-run", action="store_true", help="say what would be copied or deleted")
    sync.add_argument("--json", action="store_true", help="the whole summary as JSON (every copy, changed keys)")
    sync.set_defaults(func=_frontend_sync)

    fence = commands.add_parser("fence", help="fence a site's databases: read-only, the app's accounts locked "
                                              "and their sessions ended (exit 1 when one is unreachable)")
    fence.add_argument("--site", required=True, choices=("primary", "dr"))
    fence.add_argument("--database", help="only this database of the topology")
    fence.add_argument("--engine", choices=("mysql", "postgres"), help="only the databases of this engine")
    fence.add_argument("--unfence", action="store_true", help="lift the fence (failback, once its data is current)")
    fence.set_defaults(func=_fence)

    for name, text in (("failover", "move the application to a site: evidence, gates, approval, fence, data, app, "
                                    "health, traffic, verify, report (the dr_failover DAG's steps)"),
                       ("failback", "bring the application back to the primary (the dr_failback DAG's steps)")):
        sub = commands.add_parser(name, help=text)
        if name == "failover":
            sub.add_argument("--to", choices=("primary", "dr"), default="dr")
            sub.add_argument("--mode", choices=("planned", "emergency", "drill"), default="planned")
        else:
            sub.add_argument("--mode", choices=("planned", "emergency"), default="planned")
        sub.add_argument("--approve-as", metavar="NAME", help="who approves (recorded; in a four-eyes environment "
                                                              "not the user running drctl)")
        sub.add_argument("--reason", help="why (recorded with the approval)")
        sub.add_argument("--as", dest="as_user", metavar="USER", help="who runs it (default: the shell's user)")
        sub.add_argument("--dry-run", action="store_true", help="evidence and gates only")
        sub.add_argument("--force", action="store_true", help="go on past failed gates (needs --force-reason)")
        sub.add_argument("--force-reason", help="why the gates are overridden (recorded)")
        sub.add_argument("--pre-approved", action="store_true", help="drills only: no approver")
        sub.add_argument("--resume", metavar="RUN_ID", help="resume this run (default: a drctl run of the same "
                                                            "operation that holds the DR state)")
        sub.set_defaults(func=_failover if name == "failover" else lambda a: _failover(a, failback=True))

    state = commands.add_parser("state", help="the DR state: active site, fencing epoch, the run holding it")
    state.add_argument("--force-release", action="store_true", help="free a state whose holder died")
    state.add_argument("--reason", help="why (with --force-release)")
    state.set_defaults(func=_state)

    commands.add_parser("demo", help="bring the lab up, check it, run the nightly backup and the restore drill") \
        .set_defaults(func=_demo)
    commands.add_parser("failover-demo", help="an emergency failover of the lab by airflow standalone, approved by a "
                                              "second user; prints the report (make failover-demo)") \
        .set_defaults(func=_failover_demo)
    commands.add_parser("scaleout-demo", help="the DAGs on Airflow with the CeleryExecutor (PostgreSQL, Redis, two "
                                              "workers) next to the lab; prints one JSON line (make scaleout-demo)") \
        .set_defaults(func=_scaleout_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("azure", "botocore", "urllib3", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except DrError as err:
        print(f"drctl: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:
        import pymysql
        from azure.core.exceptions import AzureError

        if isinstance(err, pymysql.err.MySQLError):
            print(f"drctl: error: {_mysql_error_line(err, args.command)}", file=sys.stderr)
            return EXIT_USAGE
        from botocore.exceptions import BotoCoreError, ClientError
        from requests import RequestException

        if isinstance(err, ClientError):
            error = err.response.get("Error", {})
            print(f"drctl: error: AWS refused {err.operation_name}: {error.get('Code')}: {error.get('Message')}; check "
                  f"the aws connection's permissions and the topology's names", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(err, (BotoCoreError, RequestException)):
            print(f"drctl: error: {type(err).__name__}: {' '.join(str(err).split())}; check that the service is "
                  f"reachable and the connection's credentials", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(err, AzureError):
            print(f"drctl: error: storage request failed: {str(err).splitlines()[0]}; check the storage connection "
                  f"({getattr(args, 'storage_conn', '')}) and that the account is reachable", file=sys.stderr)
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
