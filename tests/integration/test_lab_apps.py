"""The lab's application at each site, and the fakes that drive and route to it, as a user meets them.

app-primary and app-dr are real processes on the lab's real databases. The AKS/EKS API (kube-api) and
Cloudflare's API (cloudflare-api) are FAKED at their HTTP boundary (no such server can run here), with the
shapes of the Kubernetes and Cloudflare API documentation; what they drive is real: scaling the DR
deployment starts and stops the app-dr process, and a pool's health is a real probe of the app's /health.
"""

from __future__ import annotations

import contextlib
import html
import os
import time

import pytest
import requests

from multicloud_dr import connections as conn_ids
from multicloud_dr.backup import source
from multicloud_dr.connections import get_endpoint
from multicloud_dr.connections.aws import aws_client
from multicloud_dr.connections.http import http_session
from multicloud_dr.connections.kubernetes import KubernetesConnection
from multicloud_dr.lab import process, seed
from multicloud_dr.lab.core import format_status
from multicloud_dr.lab.settings import APP_DEPLOYMENT, APP_HOSTS, APP_NAMESPACE, SAMPLE_DATABASE

SITES = {"primary": (conn_ids.APP_PRIMARY, conn_ids.MYSQL_PRIMARY), "dr": (conn_ids.APP_DR, conn_ids.MYSQL_DR)}


def health(app_conn_id: str) -> tuple[int, dict]:
    api = http_session(app_conn_id)
    response = api.session.get(api.url("/health"), timeout=10)
    return response.status_code, response.json()


def answers_200(app_conn_id: str) -> bool:
    try:
        return health(app_conn_id)[0] == 200
    except requests.ConnectionError:
        return False


def query(db_conn_id: str, sql: str) -> list[tuple]:
    with contextlib.closing(source.connect(get_endpoint(db_conn_id), SAMPLE_DATABASE)) as conn, \
            conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def wait_for(predicate, timeout: float, what: str) -> None:
    """Bounded wait for something the lab does in the background (a reconcile, a process starting)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dr_apps(lab):
    """The DR cluster's apps/v1 API through the aks_dr connection (the lab's kube-api)."""
    return KubernetesConnection.from_ref(conn_ids.AKS_DR).apps_v1()


def scale_dr(dr_apps, replicas: int) -> None:
    dr_apps.patch_namespaced_deployment_scale(APP_DEPLOYMENT, APP_NAMESPACE, {"spec": {"replicas": replicas}})


@pytest.mark.parametrize("site", ["primary", "dr"])
def test_each_app_is_healthy_on_its_own_writable_database(lab, site):
    app_conn_id, db_conn_id = SITES[site]
    status, body = health(app_conn_id)
    assert status == 200, body
    database = lab.apps[site].database
    assert body["status"] == "ok" and body["site"] == site and body["error"] is None
    assert body["database"] == {"host": "127.0.0.1", "port": database.port, "name": SAMPLE_DATABASE}
    assert body["read_only"] is False
    assert body["owners"] == query(db_conn_id, "SELECT COUNT(*) FROM owners")[0][0]
    assert lab.settings.secrets().mysql_app not in str(body)


def test_owners_page_lists_the_owners_in_the_database(lab):
    expected = query(conn_ids.MYSQL_PRIMARY,
                     "SELECT o.id, o.first_name, o.last_name, o.city, "
                     "(SELECT COUNT(*) FROM pets p WHERE p.owner_id = o.id) FROM owners o ORDER BY o.id LIMIT 50")
    assert len(expected) == 50
    api = http_session(conn_ids.APP_PRIMARY)
    page = api.request("GET", "/owners", params={"format": "json"}).json()
    assert [(o["id"], o["first_name"], o["last_name"], o["city"], o["pets"]) for o in page["owners"]] == \
        [tuple(row) for row in expected]
    listing = api.request("GET", "/owners")
    assert listing.headers["Content-Type"].startswith("text/html")
    for _, first, last, city, _ in expected:
        assert f"<td>{html.escape(first)} {html.escape(last)}</td><td>{html.escape(city)}</td>" in listing.text


def test_dr_health_fails_while_its_database_is_read_only(lab):
    with contextlib.closing(source.connect(get_endpoint(conn_ids.MYSQL_DR))) as admin, admin.cursor() as cur:
        cur.execute("SET GLOBAL read_only = 1")
        try:
            status, body = health(conn_ids.APP_DR)
        finally:
            cur.execute("SET GLOBAL read_only = 0")
    assert status == 503, body
    assert body["status"] == "failing" and body["read_only"] is True
    assert "read-only" in body["error"] and f"127.0.0.1:{lab.mysql_dr.port}/petclinic" in body["error"]
    assert health(conn_ids.APP_DR)[0] == 200, "app-dr did not recover once its database took writes again"


def test_scaling_the_dr_deployment_stops_and_starts_the_dr_app(lab, dr_apps):
    app = lab.app_dr
    try:
        scale_dr(dr_apps, 0)
        wait_for(lambda: not process.port_accepts(app.port) and app.pid() is None, 15,
                 "scaled to 0: app-dr's process stopped and its port closed")
        state = next(s for s in lab.status() if s.name == app.name)
        assert state.state == "idle" and state.ok, format_status([state])
        assert (dr_apps.read_namespaced_deployment(APP_DEPLOYMENT, APP_NAMESPACE).status.ready_replicas or 0) == 0

        scale_dr(dr_apps, 1)
        wait_for(lambda: answers_200(conn_ids.APP_DR), 20,
                 "scaled to 1: app-dr answers /health with 200")
        deployment = dr_apps.read_namespaced_deployment(APP_DEPLOYMENT, APP_NAMESPACE)
        assert deployment.status.ready_replicas == 1
        assert deployment.status.observed_generation == deployment.metadata.generation
        assert next(s for s in lab.status() if s.name == app.name).state == "up"
    finally:
        scale_dr(dr_apps, 1)
        wait_for(app.ready, 20, "app-dr restored to 1 replica and healthy")


def test_the_dr_app_reads_its_database_from_its_config_map_when_it_starts(lab, dr_apps):
    """As in a cluster: the deployment's envFrom ConfigMap is the pod's environment at start. Point it at
    another database on the DR server, restart the app by scaling, and /health names that database."""
    from multicloud_dr.kube.cluster import Cluster
    from multicloud_dr.kube.objects import set_config_map
    from multicloud_dr.lab import sample_data

    scratch = f"appcfg_{os.getpid()}"
    with contextlib.closing(source.connect(get_endpoint(conn_ids.MYSQL_DR))) as admin:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        sample_data.create_database(admin, scratch, 0.05)
    cluster = Cluster(conn_ids.AKS_DR, APP_NAMESPACE)
    try:
        set_config_map(cluster, None, "petclinic-db", {"DB_NAME": scratch})
        scale_dr(dr_apps, 0)
        wait_for(lambda: lab.app_dr.pid() is None, 15, "scaled to 0: app-dr stopped")
        scale_dr(dr_apps, 1)
        wait_for(lambda: answers_200(conn_ids.APP_DR), 20, "app-dr healthy on the scratch database")
        assert health(conn_ids.APP_DR)[1]["database"]["name"] == scratch
    finally:
        set_config_map(cluster, None, "petclinic-db", {"DB_NAME": SAMPLE_DATABASE})
        scale_dr(dr_apps, 0)
        wait_for(lambda: lab.app_dr.pid() is None, 15, "scaled to 0: app-dr stopped")
        scale_dr(dr_apps, 1)
        wait_for(lambda: answers_200(conn_ids.APP_DR), 20, "app-dr healthy on petclinic again")
        with contextlib.closing(source.connect(get_endpoint(conn_ids.MYSQL_DR))) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{scratch}`")
    assert health(conn_ids.APP_DR)[1]["database"]["name"] == SAMPLE_DATABASE


def test_each_cluster_points_its_app_at_its_own_database(lab):
    for site, conn_id in (("primary", conn_ids.EKS_PRIMARY), ("dr", conn_ids.AKS_DR)):
        core = KubernetesConnection.from_ref(conn_id).core_v1()
        data = core.read_namespaced_config_map("petclinic-db", APP_NAMESPACE).data
        assert data == {"DB_HOST": "127.0.0.1", "DB_PORT": str(lab.apps[site].database.port),
                        "DB_NAME": SAMPLE_DATABASE}, site


def test_route53_and_cloudfront_name_the_two_app_services(lab):
    route53 = aws_client(conn_ids.AWS_PRIMARY, "route53")
    records = route53.list_resource_record_sets(HostedZoneId=os.environ["LAB_ROUTE53_ZONE_ID"])["ResourceRecordSets"]
    app_record = next(r for r in records if r["Name"].rstrip(".") == seed.APP_RECORD)
    assert app_record["Type"] == "CNAME"
    assert [v["Value"] for v in app_record["ResourceRecords"]] == [APP_HOSTS["primary"]]

    cloudfront = aws_client(conn_ids.AWS_PRIMARY, "cloudfront")
    found = [d for d in cloudfront.list_distributions()["DistributionList"].get("Items", [])
             if seed.FRONTEND_ALIAS in (d.get("Aliases") or {}).get("Items", [])]
    assert len(found) == 1, "exactly one distribution has the alias the topology finds it by"
    origins = {o["Id"]: (o["DomainName"], o["CustomOriginConfig"]["HTTPPort"],
                         o["CustomOriginConfig"]["OriginProtocolPolicy"]) for o in found[0]["Origins"]["Items"]}
    assert origins == {"primary": (APP_HOSTS["primary"], lab.app_primary.port, "http-only"),
                       "dr": (APP_HOSTS["dr"], lab.app_dr.port, "http-only")}
    assert found[0]["DefaultCacheBehavior"]["TargetOriginId"] == "primary"


def test_cloudflare_sends_users_to_the_primary_pool_whose_monitor_sees_the_app(lab):
    layer = seed.cloudflare_layer()
    api = http_session(conn_ids.CLOUDFLARE)
    balancers = api.request("GET", f"zones/{layer.zone_id}/load_balancers").json()["result"]
    balancer = next(b for b in balancers if b["name"] == layer.load_balancer)
    # As seeded, or as a switch back to primary leaves it (the dr pool then second, or disabled).
    assert balancer["default_pools"][0] == layer.pools["primary"]
    assert balancer["fallback_pool"] == layer.pools["primary"]
    for site, pool_id in layer.pools.items():
        pool = api.request("GET", f"accounts/{layer.account_id}/load_balancers/pools/{pool_id}").json()["result"]
        assert pool["enabled"] is True or site == "dr", site
        if not pool["enabled"]:
            continue      # Cloudflare does not monitor a disabled pool
        health_of = api.request("GET", f"accounts/{layer.account_id}/load_balancers/pools/{pool_id}/health").json()
        origins = [o for pop in health_of["result"]["pop_health"].values() for o in pop["origins"]]
        assert [o["127.0.0.1"]["response_code"] for o in origins] == [200], (site, health_of)


def test_frontend_source_and_its_dr_places_exist(lab):
    s3 = aws_client(conn_ids.AWS_PRIMARY, "s3")
    listed = s3.list_objects_v2(Bucket=seed.FRONTEND_BUCKET, Prefix=f"{seed.FRONTEND_PREFIX}/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert {f"{seed.FRONTEND_PREFIX}/{name}" for name in seed.FRONTEND_FILES} <= keys
    head = s3.head_object(Bucket=seed.FRONTEND_BUCKET, Key=f"{seed.FRONTEND_PREFIX}/index.html")
    assert head["ContentType"].startswith("text/html")
    from multicloud_dr.connections.gcp import storage_client
    from multicloud_dr.connections.wasb import blob_service_client

    assert blob_service_client(conn_ids.AZURE_BLOB_DR).get_container_client(seed.FRONTEND_CONTAINER).exists()
    assert storage_client(conn_ids.GCS_DR).lookup_bucket(seed.FRONTEND_GCS_BUCKET) is not None


def test_an_app_whose_database_does_not_answer_says_so_without_its_password(tmp_path):
    """The app alone (in this process, no lab server), on a port nothing listens on: /health is 503 within
    its connect timeout, names the database and never shows the password."""
    import socket
    import threading

    from multicloud_dr.lab.app import AppSettings, ClinicServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    password = "pw-" + os.urandom(6).hex()
    settings = AppSettings.from_env("dr", {"DB_HOST": "127.0.0.1", "DB_PORT": str(closed), "DB_NAME": "petclinic",
                                           "DB_USER": "petclinic_app", "DB_PASSWORD": password})
    server = ClinicServer(("127.0.0.1", 0), settings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        response = requests.get(f"http://127.0.0.1:{server.server_address[1]}/health", timeout=10)
        assert time.monotonic() - t0 < 5
        body = response.json()
        assert response.status_code == 503 and body["status"] == "failing", body
        assert body["read_only"] is None and body["owners"] is None
        assert f"127.0.0.1:{closed}" in body["error"] and "cannot reach MySQL" in body["error"], body["error"]
        assert password not in response.text
        owners = requests.get(f"http://127.0.0.1:{server.server_address[1]}/owners?format=json", timeout=10)
        assert owners.status_code == 503 and password not in owners.text
    finally:
        server.shutdown()
        server.server_close()


def test_a_petclinic_on_the_dr_server_that_the_lab_did_not_seed_is_kept(lab):
    """`lab up` gives mysql-dr a petclinic only when it has none: one a restore left there is never replaced."""
    marker = lab.mysql_dr.dir / "seeded.json"
    saved = marker.read_bytes() if marker.exists() else None
    before = query(conn_ids.MYSQL_DR, "SELECT COUNT(*), MAX(id) FROM owners")
    try:
        marker.unlink(missing_ok=True)          # as if a restore, not the lab, had made it
        with contextlib.closing(lab.mysql_dr.admin()) as conn:
            assert seed.seed_mysql_dr_sample(conn, 1.0, marker) is None
    finally:
        if saved is not None:
            marker.write_bytes(saved)
    assert query(conn_ids.MYSQL_DR, "SELECT COUNT(*), MAX(id) FROM owners") == before
