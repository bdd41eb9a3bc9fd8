"""Failover, failback and drills run step by step (failover/orchestrator.py, what `drctl failover|failback` and
the dr_failover DAG's tasks run) on the lab's real servers: MariaDB primary/replica/DR, PostgreSQL primary/standby,
Azurite (DR state, backups, reports), moto (Route 53, CloudFront), the fake Cloudflare and Kubernetes APIs, and
the two app processes.

Each test has an environment of its own (its DR state blob) and a backup prefix of its own, and puts the lab back
afterwards: the primary unfenced, traffic on the primary, the replica replicating again, the standby rebuilt.
A primary that is "down" is the primary behind the suite's TCP proxy, cut (every connection hung up, new ones
closed at once); healing the proxy is the primary coming back (F30)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from multicloud_dr.backup import source
from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.backup.mysql_backup import BackupRequest, run_backup
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.backup.verify import verify_backup
from multicloud_dr.config import load_topology
from multicloud_dr.connections import env_var_name, get_endpoint
from multicloud_dr.connections.wasb import blob_service_client
from multicloud_dr.exceptions import InputError
from multicloud_dr.failover.fence import unfence_mysql, unfence_postgres
from multicloud_dr.failover.orchestrator import (
    TEST_KILL_AFTER,
    GatesFailedError,
    RunInfo,
    StepError,
    StepRunner,
    report_blob,
    run_all,
)
from multicloud_dr.failover.pg_failback import compare_tables
from multicloud_dr.failover.request import FailoverRequest
from multicloud_dr.failover.site_fence import fence_returning_site
from multicloud_dr.lab.settings import APP_USER, SAMPLE_DATABASE
from multicloud_dr.state.dr_state import DrStateStore
from multicloud_dr.traffic.switch import switch_traffic, traffic_status

from .conftest import ProxyPlan, TcpProxy, app_can_write, postgres_takes_writes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


# -- the lab around each test ----------------------------------------------------------------------------------------


def row_counts(conn_id: str, database: str, tables) -> dict[str, int]:
    with contextlib.closing(source.connect(get_endpoint(conn_id), database)) as conn, conn.cursor() as cur:
        counts = {}
        for table in tables:
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            counts[table] = cur.fetchone()[0]
        return counts


@dataclasses.dataclass
class Env:
    topology: object
    path: Path
    store: DrStateStore
    location: StorageUrl
    backup: object = None

    def runner(self, mode: str = "emergency", *, target: str = "dr", kind: str = "failover",
               triggered_by: str = "alice", run_id: str | None = None, **request) -> StepRunner:
        info = RunInfo(run_id or f"test__{uuid.uuid4().hex[:8]}", "test", triggered_by, datetime.now(UTC), kind)
        return StepRunner(self.topology, FailoverRequest(target_site=target, mode=mode, **request), info, self.store)


@pytest.fixture
def fo(lab, tmp_path, monkeypatch, delete_blob_prefix):
    """A topology of the test's own (environment, backup prefix, MySQL petclinic only) written to a file that
    MULTICLOUD_DR_TOPOLOGY names, a fresh verified backup of petclinic in its prefix, and afterwards the lab as
    it was: primary unfenced, traffic on the primary, the DR app as it was."""
    tag = uuid.uuid4().hex[:8]
    location = StorageUrl("wasb", "dr-backups", f"test-failover-{tag}")

    def make(**changes):
        data = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
        data["environment"] = f"t-fo-{tag}"
        data["backup"]["location"] = str(location)
        data["backup"]["copies"] = []
        data["databases"] = [d for d in data["databases"] if d["engine"] == "mysql"]
        data["replication"]["dms"] = []
        data["failover"]["four_eyes_environments"] = [data["environment"]]
        for key, value in changes.items():
            if callable(value):
                value(data)
            else:
                data[key] = value
        path = tmp_path / f"topology-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("MULTICLOUD_DR_TOPOLOGY", str(path))
        topology = load_topology(path)
        env.topology, env.path, env.store = topology, path, DrStateStore.for_topology(topology)
        return env

    env = Env(None, None, None, location)
    make()
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    env.backup = run_backup(BackupRequest(get_endpoint("mysql_primary"), SAMPLE_DATABASE, location,
                                          datetime.now(UTC).replace(microsecond=0)), service)
    assert verify_backup(BackupStore(service, "dr-backups"), env.backup.manifest_url).status == "verified"
    env.make = make
    from multicloud_dr.kube.site import SiteApp

    apps = {site: load_topology().site(site).app for site in ("primary", "dr")}
    replicas_before = {}
    for site, config in apps.items():
        with SiteApp(config, site) as app:
            replicas_before[site] = app.status()["deployments"]["petclinic-web"]["replicas"]
    try:
        yield env
    finally:
        monkeypatch.delenv("MULTICLOUD_DR_TOPOLOGY")
        unfence_mysql(get_endpoint("mysql_primary"), [APP_USER])
        for site, config in apps.items():      # the fence step scales the old primary's app down
            with SiteApp(config, site) as app:
                app.scale_to(replicas_before[site])
        switch_traffic(load_topology(), "primary", check_health=False)
        with contextlib.suppress(Exception):
            env.store.blob.delete_blob()
        delete_blob_prefix(service, location)


@pytest.fixture
def primary_behind_proxy(lab, monkeypatch):
    """mysql_primary reached through the suite's TCP proxy: `proxy.cut()` is the primary going away."""
    proxy = TcpProxy(lab.mysql_primary.port, ProxyPlan())
    real = os.environ[env_var_name("mysql_primary")]
    monkeypatch.setenv(env_var_name("mysql_primary"), real.replace(f":{lab.mysql_primary.port}", f":{proxy.port}"))
    yield proxy
    monkeypatch.setenv(env_var_name("mysql_primary"), real)   # before `fo` puts the lab back through it
    proxy.close()


def restore_only(data: dict) -> None:
    data["databases"][0]["failover_method"] = "restore"


def _steps(report: dict) -> dict[str, float]:
    return {s["name"]: s["seconds"] for s in report["steps"]}


# -- emergency failover by restore, the returning primary fenced (F30), a second run is a no-op, failback -----------


def test_emergency_failover_by_restore_then_the_returning_primary_is_fenced_then_failback(
        lab, fo, primary_behind_proxy):
    manifest = fo.backup.manifest
    proxy = primary_behind_proxy
    proxy.cut()                                               # the primary is gone

    run = fo.runner("emergency")
    report = run_all(run, approved_by="bob", approval_reason="primary down")
    assert report["outcome"] == "succeeded" and report["active_site"] == "dr"
    (data,) = report["data"]
    assert (data["method"], data["target"], data["database"]) == ("restore", "mysql_dr", SAMPLE_DATABASE)
    assert data["manifest"] == str(fo.backup.manifest_url)
    tables = {name: entry.rows for name, entry in manifest.tables.items()}
    assert row_counts("mysql_dr", SAMPLE_DATABASE, tables) == tables   # the DR tables hold the backup's rows
    live = traffic_status(fo.topology).to_dict()
    assert live["site"] == "dr" and [x["site"] for x in live["layers"]] == ["dr", "dr", "dr"]
    assert [(x["provider"], x["site"]) for x in report["traffic"]["layers"]] == \
        [(x["provider"], x["site"]) for x in live["layers"]]
    assert report["approvals"][0]["approved_by"] == "bob"
    assert report["fencing"] == {"site": "primary", "status": "pending", "epoch": 0, "confirmed": False}
    assert report["rto_seconds"] > 0 and report["rpo_seconds"] is not None and report["rpo_seconds"] >= 0
    stored = json.loads(report_blob(fo.store, fo.topology.environment, run.info.run_id).download_blob().readall())
    assert stored["rto_seconds"] == report["rto_seconds"]
    steps = _steps(report)
    print(f"emergency failover by restore: RTO {report['rto_seconds']} s, RPO {report['rpo_seconds']} s, "
          f"steps {steps}, all but data {sum(v for k, v in steps.items() if k != 'data'):.1f} s")

    # A second failover to dr changes nothing: the state's blob is not rewritten.
    _, etag = fo.store.read()
    again = run_all(fo.runner("emergency"), approved_by="bob", approval_reason="again")
    assert again["noop"] is True
    assert fo.store.read()[1] == etag

    # The old primary comes back, writable: replication_health's first task fences it before the app writes.
    proxy.heal()
    assert app_can_write(lab)
    fenced = fence_returning_site(fo.topology, fo.store)
    assert fenced["fenced"] and fenced["fencing_epoch"] == 1
    assert not app_can_write(lab)

    # Failback: DR fenced, its data copied to the primary and compared, the primary unfenced, traffic back.
    back = run_all(fo.runner("planned", target="primary", kind="failback"), approved_by="bob",
                   approval_reason="primary repaired")
    assert back["outcome"] == "succeeded" and back["active_site"] == "primary"
    assert traffic_status(fo.topology).to_dict()["site"] == "primary"
    assert app_can_write(lab)                                 # the primary takes the app's writes again
    assert not app_can_write(lab, "mysql_dr")                 # and DR is fenced: one writable database
    state, _ = fo.store.read()
    assert (state.active_site, state.fencing.site, state.fencing.status) == ("primary", "dr", "confirmed")
    assert state.fencing_epoch == 2
    unfence_mysql(get_endpoint("mysql_dr"), [APP_USER])


def test_emergency_failover_by_restore_replays_the_binlog_archive_so_only_what_was_not_archived_is_lost(
        lab, fo, primary_behind_proxy):
    """With backup.binlogs set, the restore path brings the backup forward to the archive's last transaction:
    rows written after the backup (and archived) are on DR, and the report's RPO counts from that transaction."""
    from multicloud_dr.backup import binlog

    def archive_on(data: dict) -> None:
        restore_only(data)
        data["backup"]["binlogs"] = {"interval_seconds": 10, "run_minutes": 14}

    fo.make(archive=archive_on)
    primary = get_endpoint("mysql_primary")
    with contextlib.closing(source.connect(primary, SAMPLE_DATABASE)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS fo_after_backup (id INT PRIMARY KEY, note VARCHAR(20))")
        cur.executemany("INSERT INTO fo_after_backup VALUES (%s, 'after')", [(i,) for i in range(25)])
        conn.commit()
    service = blob_service_client(get_endpoint("azure_blob_dr"))
    store = BackupStore(service, "dr-backups")
    try:
        archived = binlog.run_archiver(primary, store, fo.location, SAMPLE_DATABASE, seconds=0, lease_seconds=15)
        assert archived.pieces_written >= 1
        primary_behind_proxy.cut()                                   # the primary is gone

        report = run_all(fo.runner("emergency"), approved_by="bob", approval_reason="primary down")
        assert report["outcome"] == "succeeded" and report["active_site"] == "dr"
        (data,) = report["data"]
        assert data["method"] == "restore" and data["point_in_time"]["pieces"] >= 1
        with contextlib.closing(source.connect(get_endpoint("mysql_dr"), SAMPLE_DATABASE)) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM fo_after_backup")
            assert cur.fetchone()[0] == 25, "the rows written after the backup were replayed from the archive"
        cov = binlog.coverage(binlog.BinlogArchive(store, fo.location, SAMPLE_DATABASE).pieces(),
                              fo.backup.manifest.binlog_file, fo.backup.manifest.binlog_position)
        assert datetime.fromisoformat(data["snapshot_at"]) == datetime.fromisoformat(cov.last_event_at), \
            "the RPO is measured from the last archived transaction"
    finally:
        primary_behind_proxy.heal()
        for conn_id in ("mysql_primary", "mysql_dr"):
            with contextlib.closing(source.connect(get_endpoint(conn_id), SAMPLE_DATABASE)) as conn, \
                    conn.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS fo_after_backup")


# -- planned failover by promotion ------------------------------------------------------------------------------------


def test_planned_failover_promotes_the_replica_after_fencing_the_primary(lab, fo, replica_put_back):
    fo.make(databases=lambda d: d["databases"][0].update(failover_method="promote"))
    with contextlib.closing(source.connect(get_endpoint("mysql_primary"), SAMPLE_DATABASE)) as conn, \
            conn.cursor() as cur:
        cur.execute("UPDATE owners SET city = city WHERE id = 2")
    report = run_all(fo.runner("planned"), approved_by="bob", approval_reason="planned move")
    (data,) = report["data"]
    assert (data["method"], data["target"]) == ("promote", "mysql_replica")
    assert report["rpo_seconds"] == 0                      # planned: everything the primary wrote is on the replica
    assert report["fencing"]["confirmed"] and report["fencing"]["epoch"] == 1
    assert not app_can_write(lab)                           # the primary is fenced
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS")
        assert cur.fetchone() is None                        # no longer a replica
        cur.execute("SELECT @@global.read_only")
        assert cur.fetchone()[0] == 0
    assert traffic_status(fo.topology).to_dict()["site"] == "dr"
    print(f"planned failover by promotion: RTO {report['rto_seconds']} s, steps {_steps(report)}")


def test_emergency_failover_promotes_the_replica_when_the_primary_is_gone(lab, fo, primary_behind_proxy,
                                                                          replica_put_back):
    """The primary unreachable: the replica's lag cannot be measured, which the gates count as a failure (F22),
    so promoting it needs force with a reason. Its fencing is pending; the replica is promoted with what it had
    received and takes the app's writes; the report cannot know the primary's last commit (RPO None, why)."""
    fo.make(databases=lambda d: d["databases"][0].update(failover_method="promote"))
    primary_behind_proxy.cut()
    with pytest.raises(GatesFailedError, match="lag unknown"):
        run_all(fo.runner("emergency"), approved_by="bob", approval_reason="primary gone")
    forced = fo.runner("emergency", force=True, reason="primary region lost; the replica is the best copy")
    report = run_all(forced, approved_by="bob", approval_reason="primary gone")
    assert report["forced"] and report["reason"].startswith("primary region lost")
    (data,) = report["data"]
    assert (data["method"], data["target"]) == ("promote", "mysql_replica")
    assert report["fencing"]["status"] == "pending" and report["active_site"] == "dr"
    assert report["rpo_seconds"] is None and "primary" in data["rpo_basis"]
    assert app_can_write(lab, "mysql_replica")                # the promoted replica takes the app's writes
    assert traffic_status(fo.topology).to_dict()["site"] == "dr"


# -- the gates (F22) -------------------------------------------------------------------------------------------------


def test_gates_stop_on_a_stale_backup_before_anything_is_changed(lab, fo):
    fo.make(replication=lambda d: d["replication"]["thresholds"].update(backup_age_seconds=1))
    time.sleep(2)
    run = fo.runner("emergency")
    with pytest.raises(GatesFailedError, match="backup"):
        run_all(run, approved_by="bob", approval_reason="x")
    assert app_can_write(lab)                                   # nothing fenced
    assert traffic_status(fo.topology).to_dict()["site"] == "primary"
    state, _ = fo.store.read()
    assert state.holder is None and state.history[-1].outcome == "cancelled"   # released: a new run may start


def test_gates_stop_on_a_stopped_replica_when_the_failover_would_promote_it(lab, fo, replica_put_back):
    fo.make(databases=lambda d: d["databases"][0].update(failover_method="promote"))
    with contextlib.closing(lab.mysql_replica.admin()) as conn, conn.cursor() as cur:
        cur.execute("STOP SLAVE SQL_THREAD")
    with pytest.raises(GatesFailedError, match=r"mysql_replica/petclinic: replica (lag unknown|[0-9.]+ s behind)"):
        run_all(fo.runner("planned"), approved_by="bob", approval_reason="x")
    assert app_can_write(lab)


# -- approvals (F31) -------------------------------------------------------------------------------------------------


def test_the_user_who_triggered_cannot_approve_in_a_four_eyes_environment(lab, fo):
    with pytest.raises(InputError, match="second person"):
        run_all(fo.runner("emergency", triggered_by="alice"), approved_by="alice", approval_reason="me")
    assert app_can_write(lab)
    assert traffic_status(fo.topology).to_dict()["site"] == "primary"
    assert fo.store.read()[0].holder is None


# -- F33: an unhealthy DR app stops the run before traffic moves ---------------------------------------------------


def test_an_unhealthy_dr_app_stops_the_run_before_traffic_moves(lab, fo):
    """The DR app answers 503: its database is read-only (the app's /health wants a writable database)."""
    def short_waits(d):
        d["failover"]["health_timeout_seconds"] = 5
        d["sites"]["dr"]["app"]["rollout_timeout_seconds"] = 8   # its pods are never ready: readiness is /health

    fo.make(sites=short_waits, databases=restore_only)
    with contextlib.closing(lab.mysql_dr.admin()) as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL read_only = ON")
    try:
        run = fo.runner("planned")
        with pytest.raises(StepError, match="traffic was not switched"):
            run_all(run, approved_by="bob", approval_reason="x")
    finally:
        with contextlib.closing(lab.mysql_dr.admin()) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL read_only = OFF")
    assert traffic_status(fo.topology).to_dict()["site"] == "primary"
    state, _ = fo.store.read()
    assert state.is_held_by(run.info.run_id)                   # kept: fixing the app and re-running resumes
    failed = [s for s in state.operation.steps if s.status == "failed"]
    assert [s.name for s in failed] in (["app"], ["health"]) and state.operation.step("traffic") is None
    assert "traffic was not switched" in failed[0].detail["error"]
    fo.store.apply(lambda s, at: s.force_release("test", "cleanup", at=at))


# -- F32: a failover killed after fencing resumes -----------------------------------------------------------------


def test_a_failover_killed_after_fencing_resumes_without_doing_a_step_twice(lab, fo):
    fo.make(databases=restore_only)
    drctl = str(Path(sys.executable).parent / "drctl")
    args = [drctl, "failover", "--to", "dr", "--mode", "planned", "--approve-as", "bob", "--reason", "move",
            "--as", "alice"]
    env = {**os.environ, TEST_KILL_AFTER: "fence"}
    killed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state, _ = fo.store.read()
    assert state.holder is not None and state.operation.step("fence").status == "done"
    assert state.fencing_epoch == 1 and state.operation.step("data") is None
    assert not app_can_write(lab)                               # fenced, and nothing moved yet

    resumed = subprocess.run(args, env={k: v for k, v in os.environ.items() if k != TEST_KILL_AFTER},
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stderr and "step fence done" in resumed.stderr
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "succeeded" and report["fencing"]["epoch"] == 1   # fenced once, not twice
    assert traffic_status(fo.topology).to_dict()["site"] == "dr"


# -- drills leave nothing behind ----------------------------------------------------------------------------------


def test_a_drill_runs_on_scratch_targets_and_leaves_nothing_behind(lab, fo):
    from multicloud_dr.failover.drill_dns import drill_record_status
    from multicloud_dr.kube.cluster import Cluster
    from multicloud_dr.kube.drill_app import drill_objects
    from multicloud_dr.kube.site import SiteApp
    from multicloud_dr.restore.drill import previous_reports

    dr_app = fo.topology.site("dr").app
    with SiteApp(dr_app, "dr") as live:
        live_before = live.status()["deployments"]["petclinic-web"]
    seen = {}

    def on_step(name, detail):
        if name == "app":      # while the drill runs: its copy of the app is up in the drill namespace
            seen["objects"] = drill_objects(dr_app, "petclinic-drill")
            with SiteApp(dr_app.model_copy(update={"namespace": "petclinic-drill"}), "dr") as copy:
                seen["copy"] = copy.status()["deployments"]["petclinic-web"]
            with SiteApp(dr_app, "dr") as live:
                seen["live"] = live.status()["deployments"]["petclinic-web"]
            with Cluster("aks_dr", "petclinic-drill") as cluster:
                seen["config"] = cluster.core.read_namespaced_config_map("petclinic-db", "petclinic-drill").data

    report = run_all(fo.runner("drill", kind="drill", pre_approved=True), approved_by=None, approval_reason=None,
                     on_step=on_step)
    assert report["outcome"] == "succeeded" and report["kind"] == "drill"
    (data,) = report["data"]
    assert data["method"] == "restore" and data["database"] == f"{SAMPLE_DATABASE}_drill"
    assert report["approvals"][0]["how"].startswith("pre-approved")
    # The app ran as a copy in petclinic-drill, pointed at the scratch database; the live DR app was not touched.
    assert sorted(seen["objects"]) == ["configmap petclinic-drill/petclinic-db",
                                       "deployment petclinic-drill/petclinic-web",
                                       "secret petclinic-drill/petclinic-db-credentials"]
    assert seen["copy"]["replicas"] == 1 and seen["copy"]["rolled_out"]
    dr = get_endpoint("mysql_dr")      # the copy reads the scratch database, not the live one
    assert (seen["config"]["DB_HOST"], seen["config"]["DB_PORT"], seen["config"]["DB_NAME"]) == \
        (dr.host, str(dr.port), f"{SAMPLE_DATABASE}_drill")
    assert seen["live"]["replicas"] == live_before["replicas"]
    assert drill_objects(dr_app, "petclinic-drill") == []          # and the copy is gone
    # Its restore was measured for the restore-time forecast, like the nightly restore drill's.
    store = BackupStore(blob_service_client(get_endpoint("azure_blob_dr")), fo.location.bucket)
    (forecast,) = previous_reports(store, fo.location, SAMPLE_DATABASE)
    assert forecast["scratch_database"] == f"{SAMPLE_DATABASE}_drill"
    assert forecast["rows"] == forecast["manifest_rows"] > 0 and forecast["prediction"]["predicted_seconds"] > 0
    assert data["restore_drill_report"].endswith(f"/drill-{forecast['run_stamp']}.json")
    with contextlib.closing(source.connect(get_endpoint("mysql_dr"))) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (f"{SAMPLE_DATABASE}\\_drill%",))
        assert cur.fetchall() == ()                            # the scratch database is gone
    assert drill_record_status(fo.topology)["value"] is None  # the drill record is gone
    assert traffic_status(fo.topology).to_dict()["site"] == "primary"   # the live traffic never moved
    assert app_can_write(lab)                                   # nothing fenced
    state, _ = fo.store.read()
    assert state.holder is None and state.active_site == "primary" and state.history[-1].kind == "drill"


# -- PostgreSQL promotion -----------------------------------------------------------------------------------------


@pytest.fixture
def postgres_primary_unfenced(lab):
    yield
    unfence_postgres(get_endpoint("postgres_primary"), [APP_USER])


def test_planned_failover_promotes_the_postgres_standby(lab, fo, standby_rebuilt, postgres_primary_unfenced):
    def postgres_only(d):
        full = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
        d["databases"] = [x for x in full["databases"] if x["engine"] == "postgres"]

    fo.make(databases=postgres_only)
    report = run_all(fo.runner("planned"), approved_by="bob", approval_reason="pg move")
    (data,) = report["data"]
    assert (data["method"], data["target"]) == ("promote", "postgres_standby")
    from multicloud_dr.connections.postgres import PostgresConnection

    conn = PostgresConnection(get_endpoint("postgres_standby")).connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone() == (False,)
    finally:
        conn.close()
    assert report["fencing"]["confirmed"]


# -- PostgreSQL failback: refused until the old primary is a standby of DR, then it catches up and is promoted -------


def _postgres_only(d):
    full = yaml.safe_load((ROOT / "include" / "topology.yaml").read_text())
    d["databases"] = [x for x in full["databases"] if x["engine"] == "postgres"]


def _pg(conn_id: str, sql: str, params=None, *, write: bool = False):
    """One statement as the admin on `conn_id`'s server (writes past a fence's default_transaction_read_only)."""
    from multicloud_dr.connections.postgres import PostgresConnection

    conn = PostgresConnection(get_endpoint(conn_id)).connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if write:
                cur.execute("SET default_transaction_read_only = off")
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def _probe_rows(conn_id: str) -> set[str] | None:
    exists = _pg(conn_id, "SELECT to_regclass('public.failback_probe') IS NOT NULL")[0][0]
    return {r[0] for r in _pg(conn_id, "SELECT id FROM failback_probe")} if exists else None


def _new_sessions_read_only(conn_id: str) -> bool:
    return _pg(conn_id, "SHOW default_transaction_read_only") == [("on",)]


@pytest.fixture
def pg_pair_put_back(lab):
    """After the test: pg-primary the primary again (promoted if the test left it a standby, rebuilt from the
    standby if it left it without data), unfenced, and pg-standby rebuilt from it; so the next test finds the
    lab's pair as it was, whatever this one left."""
    yield
    primary, standby = lab.pg_primary, lab.pg_standby
    if not (primary.data / "PG_VERSION").exists():
        primary.rebuild_as_standby_of(standby)
    primary.start()
    with contextlib.closing(primary.admin(SAMPLE_DATABASE)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        if cur.fetchone()[0]:
            cur.execute("SELECT pg_promote(true, 60)")
        cur.execute("SET default_transaction_read_only = off")
        cur.execute("DROP TABLE IF EXISTS failback_probe")
    unfence_postgres(get_endpoint("postgres_primary"), [APP_USER])
    standby.stop()
    shutil.rmtree(standby.data)
    standby.start()                        # pg_basebackup -R from the primary again


def test_postgres_failback_waits_for_the_old_primary_rebuilt_as_a_standby_then_promotes_it(
        lab, fo, pg_pair_put_back):
    fo.make(databases=_postgres_only)
    over = run_all(fo.runner("planned"), approved_by="bob", approval_reason="pg move")
    assert [(d["method"], d["target"]) for d in over["data"]] == [("promote", "postgres_standby")]
    _pg("postgres_standby", "CREATE TABLE failback_probe (id text PRIMARY KEY)", write=True)
    _pg("postgres_standby", "INSERT INTO failback_probe VALUES ('written on DR before the rebuild')", write=True)

    # The old primary still holds its own history: failing back now would lose DR's rows. Refused, even forced.
    with pytest.raises(GatesFailedError, match=r"postgres_rebuilt/petclinic.*not a standby"):
        run_all(fo.runner("planned", target="primary", kind="failback"), approved_by="bob",
                approval_reason="too early")
    with pytest.raises(GatesFailedError, match="force does not lift"):
        run_all(fo.runner("planned", target="primary", kind="failback", force=True, reason="hurry"),
                approved_by="bob", approval_reason="forced")
    assert _new_sessions_read_only("postgres_primary")     # still fenced
    assert _probe_rows("postgres_primary") is None           # nothing copied over it
    assert postgres_takes_writes("postgres_standby")         # DR still the one primary
    assert fo.store.read()[0].active_site == "dr"
    differs = compare_tables(SAMPLE_DATABASE, "postgres_standby", "postgres_primary")
    assert not differs["public.failback_probe"]["equal"]     # the comparison the data step makes sees DR's rows

    # The operator rebuilds it as DR's standby; DR keeps taking writes meanwhile.
    lab.pg_primary.rebuild_as_standby_of(lab.pg_standby)
    _pg("postgres_standby", "INSERT INTO failback_probe VALUES ('written on DR after the rebuild')", write=True)

    back = run_all(fo.runner("planned", target="primary", kind="failback"), approved_by="bob",
                   approval_reason="primary rebuilt")
    assert back["outcome"] == "succeeded" and back["active_site"] == "primary"
    (outcome,) = next(s for s in back["steps"] if s["name"] == "data")["detail"]["outcomes"]
    assert (outcome["method"], outcome["target"], outcome["already"]) == ("promote_back", "postgres_primary", False)
    assert outcome["checked_tables"] == len(differs) and outcome["rows"] >= 2
    assert _probe_rows("postgres_primary") == {"written on DR before the rebuild", "written on DR after the rebuild"}
    assert postgres_takes_writes("postgres_primary")         # out of recovery, writable
    assert not _new_sessions_read_only("postgres_primary")   # unfenced: the app's sessions may write
    assert _pg("postgres_primary", "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (APP_USER,)) == [(True,)]
    assert _new_sessions_read_only("postgres_standby")       # and DR fenced: one writable server
    state, _ = fo.store.read()
    assert (state.active_site, state.fencing.site, state.fencing.status) == ("primary", "dr", "confirmed")

    # Run again: a finished failback changes nothing.
    _, etag = fo.store.read()
    again = run_all(fo.runner("planned", target="primary", kind="failback"), approved_by="bob",
                    approval_reason="again")
    assert again["noop"] is True and fo.store.read()[1] == etag
