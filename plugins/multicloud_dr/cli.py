"""`drctl`: the library's functions without Airflow, for a shell when Airflow itself is down.

Exit codes: 0 done, 1 the check or job ran and found a problem, 2 bad input or a missing
prerequisite (the one-line message on stderr says what to fix).
"""

from __future__ import annotations

import argparse
import sys
import time

from multicloud_dr.exceptions import DrError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


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
    return EXIT_OK if all(s.state == "up" for s in states) else EXIT_PROBLEM


def _demo(args: argparse.Namespace) -> int:
    from multicloud_dr.connectivity import PROBES, format_table
    from multicloud_dr.lab import airflow_run
    from multicloud_dr.lab.core import Lab

    lab = Lab()
    lab.up(report=lambda line: print(line, file=sys.stderr))
    airflow_run.use_lab_environment(lab.settings)
    print("demo: preparing Airflow's metadata DB (SQLite, in .lab/airflow)", file=sys.stderr)
    airflow_run.migrate_metadata_db()
    log = lab.settings.home / "demo.log"
    print(f"demo: running DAG lab_service_check with Airflow (task logs: {log})", file=sys.stderr)
    t0 = time.monotonic()
    with airflow_run.output_to(log):
        dag_run = airflow_run.run_dag("lab_service_check", lab.settings.root / "dags")
    results = airflow_run.task_results(dag_run)
    rows = []
    for service, (conn_id, _) in PROBES.items():
        state, value = results.get(f"check_{service.replace('-', '_')}", ("missing", None))
        rows.append(value or {"service": service, "conn_id": conn_id, "ok": False, "seconds": 0.0,
                              "found": f"task {state}: see {log}"})
    print(format_table(rows))
    ok = sum(r["ok"] for r in rows)
    print(f"lab_service_check run {dag_run.run_id}: {dag_run.state}; {ok}/{len(rows)} services ok "
          f"in {time.monotonic() - t0:.1f} s")
    return EXIT_OK if str(dag_run.state) == "success" else EXIT_PROBLEM


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drctl", description=__doc__.splitlines()[0])
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
    commands.add_parser("demo", help="bring the lab up and run the main DAG on it with Airflow") \
        .set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DrError as err:
        print(f"drctl: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
