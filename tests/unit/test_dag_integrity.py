"""Every DAG file imports cleanly, quickly, with no I/O at parse time, and carries the house rules:
owner, retries, tags, doc_md, catchup=False, an explicit schedule, file name = dag_id."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


class ParseTimeIO(AssertionError):
    pass


def _forbid(what: str):
    def call(*args, **kwargs):
        raise ParseTimeIO(f"{what} at DAG parse time")

    return call


WARM_UP_DAG = """
import pendulum
from airflow.sdk import DAG, Asset, task

with DAG(dag_id="warm_up", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    task(lambda: None, task_id="noop", outlets=[Asset("s3://warm-up/asset")])()
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    """Parse the whole dags/ folder with network, connection and Variable lookups made to fail.

    A trivial DAG is parsed first: Airflow imports about a second of its own modules on the first DAG a
    process builds (the dag-processor has them loaded already), and the first Asset a process makes loads
    every provider's asset handlers (the S3 and GCS hooks with them, another second), which would otherwise
    be charged to whichever of our files happens to be parsed first."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Connection, Variable

    warm_up = tmp_path_factory.mktemp("warm_up") / "warm_up.py"
    warm_up.write_text(WARM_UP_DAG)
    assert DagBag(dag_folder=str(warm_up)).import_errors == {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _forbid("a network connection"))
        mp.setattr(socket, "create_connection", _forbid("a network connection"))
        mp.setattr(socket, "getaddrinfo", _forbid("a DNS lookup"))
        mp.setattr(BaseHook, "get_connection", classmethod(_forbid("a connection lookup")))
        mp.setattr(Connection, "get", classmethod(_forbid("a connection lookup")))
        mp.setattr(Variable, "get", staticmethod(_forbid("a Variable lookup")))
        # DagBag(include_examples=...) raises TypeError on 3.3.x (apache/airflow#70283).
        return DagBag(dag_folder=str(DAGS))


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS}"


def test_every_dag_file_imports_without_error_or_parse_time_io(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_file_name_is_the_dag_id(dagbag, path):
    ids = [d.dag_id for d in dagbag.dags.values() if Path(d.fileloc) == path]
    assert ids == [path.stem], f"{path.name} defines {ids}; one DAG per file, named like the file"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_parses_in_under_one_second(dagbag, path):
    stats = [s for s in dagbag.dagbag_stats if Path(s.file).name == path.name or s.file.endswith(path.name)]
    assert stats, f"no parse statistics for {path.name}"
    seconds = stats[0].duration.total_seconds()
    assert seconds < 1.0, f"{path.name} took {seconds:.2f} s to parse: move work out of module level"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_house_rules(dagbag, path):
    dag = dagbag.dags[path.stem]
    args = dag.default_args or {}
    assert args.get("owner") and args["owner"] != "airflow", f"{dag.dag_id}: set default_args['owner']"
    assert int(args.get("retries", 0)) >= 1, f"{dag.dag_id}: set default_args['retries'] >= 1"
    assert dag.tags, f"{dag.dag_id}: add tags"
    assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag.dag_id}: doc_md must describe the DAG"
    assert dag.catchup is False, f"{dag.dag_id}: catchup must be False"
    assert dag.start_date is not None and dag.start_date.tzinfo is not None, f"{dag.dag_id}: tz-aware start_date"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_schedule_is_explicit(path):
    """Airflow's default schedule is None; we want every file to say what it means."""
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", getattr(n.func, "attr", None)) in ("dag", "DAG")]
    assert calls, f"{path.name}: no DAG(...) or @dag(...) found"
    assert all(any(k.arg == "schedule" for k in c.keywords) for c in calls), f"{path.name}: pass schedule= explicitly"


def test_the_guard_catches_parse_time_io(tmp_path):
    """The guard above is real: a DAG file that looks up a connection at import fails to import."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook

    bad = tmp_path / "bad_dag.py"
    bad.write_text(
        "import pendulum\nfrom airflow.sdk import DAG, BaseHook\n"
        "BaseHook.get_connection('mysql_primary')\n"
        "with DAG('bad_dag', schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz='UTC')):\n    pass\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BaseHook, "get_connection", classmethod(_forbid("a connection lookup")))
        bag = DagBag(dag_folder=str(bad))
    assert any("connection lookup at DAG parse time" in str(e) for e in bag.import_errors.values()), bag.import_errors
