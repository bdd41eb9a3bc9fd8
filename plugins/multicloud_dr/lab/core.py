"""`drctl lab up | down | status`: the local DR lab as a whole.

`up` starts the servers and seeds them (in parallel, by dependency chain), then the fake Kubernetes API,
whose reconcile starts each site's app its deployment wants running, then waits until those apps serve.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from multicloud_dr import connections as conn_ids
from multicloud_dr.exceptions import LabError
from multicloud_dr.lab import seed
from multicloud_dr.lab.services import (
    AppService,
    AzuriteService,
    CloudflareApiService,
    GcsService,
    KubeApiService,
    MotoService,
    MySQLDR,
    MySQLPrimary,
    MySQLReplica,
    PostgresPrimary,
    PostgresStandby,
    Service,
    ServiceState,
)
from multicloud_dr.lab.settings import AZURE_CONTAINER, DB_ADMIN_USER, GCS_BUCKET, SAMPLE_DATABASE, LabSettings

# The DR server's `petclinic` plays the last restore's result: small, it only has to be there.
DR_SAMPLE_MEGABYTES = 1.0

Report = Callable[[str], None]


class Lab:
    def __init__(self, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings.from_env()
        s = self.settings
        self.mysql_primary = MySQLPrimary(s)
        self.mysql_replica = MySQLReplica(s, self.mysql_primary)
        self.mysql_dr = MySQLDR(s)
        self.pg_primary = PostgresPrimary(s)
        self.pg_standby = PostgresStandby(s, self.pg_primary)
        self.azurite = AzuriteService(s)
        self.moto = MotoService(s)
        self.gcs = GcsService(s)
        self.kube_api = KubeApiService(s)
        self.app_primary = AppService(s, "primary", self.mysql_primary, kube=self.kube_api)
        self.app_dr = AppService(s, "dr", self.mysql_dr, kube=self.kube_api)
        self.cloudflare_api = CloudflareApiService(s, self.apps)

    @property
    def apps(self) -> dict[str, AppService]:
        return {"primary": self.app_primary, "dr": self.app_dr}

    @property
    def services(self) -> list[Service]:
        # Stopped in reverse: kube-api before the apps (it would start them again), the apps before their databases.
        return [self.mysql_primary, self.mysql_replica, self.mysql_dr, self.pg_primary, self.pg_standby,
                self.azurite, self.moto, self.gcs, self.app_primary, self.app_dr, self.kube_api, self.cloudflare_api]

    # -- up ---------------------------------------------------------------------------------------
    def up(self, report: Report = print) -> dict[str, str]:
        """Start what is not running, seed what is missing, write .lab/env. Returns service -> outcome."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.secrets()  # made once, before the threads below read it
        if self.settings.tls.ensure():  # servers started with an older certificate restart (Service.outdated)
            report(f"  made the lab's TLS certificates in {self.settings.tls.dir}")
        outcomes: dict[str, str] = {}
        apps_running = {site: app.pid() is not None for site, app in self.apps.items()}

        def started(service: Service) -> None:
            t0 = time.monotonic()
            outcome = service.start()
            outcomes[service.name] = outcome
            report(f"  {service.name:<14} {outcome:<8} port {service.port}  ({time.monotonic() - t0:.1f} s)")

        def mysql_chain() -> None:
            started(self.mysql_primary)
            with contextlib.closing(self.mysql_primary.admin()) as conn:
                counts = seed.seed_mysql_sample(conn, self.settings.seed_megabytes,
                                                self.mysql_primary.dir / "seeded.json")
            if counts:
                report(f"  seeded {SAMPLE_DATABASE} on mysql-primary: {sum(counts.values())} rows")
            started(self.mysql_replica)
            self.mysql_replica.wait_caught_up()

        def mysql_dr_chain() -> None:
            started(self.mysql_dr)
            with contextlib.closing(self.mysql_dr.admin()) as conn:
                counts = seed.seed_mysql_dr_sample(conn, DR_SAMPLE_MEGABYTES, self.mysql_dr.dir / "seeded.json")
            if counts:
                report(f"  seeded {SAMPLE_DATABASE} on mysql-dr (as a restore leaves it): {sum(counts.values())} rows")

        def pg_chain() -> None:
            started(self.pg_primary)
            started(self.pg_standby)

        def azure_chain() -> None:
            started(self.azurite)
            seed.seed_azure(self.azurite.connection_string())

        def aws_chain() -> None:
            started(self.moto)
            secret = {"username": DB_ADMIN_USER, "password": self.settings.secrets().mysql_admin,
                      "host": "127.0.0.1", "port": self.mysql_primary.port, "dbname": SAMPLE_DATABASE}
            self._aws = seed.seed_aws(self.moto.endpoint(), self.mysql_primary.port, self.mysql_dr.port, secret,
                                      {site: app.port for site, app in self.apps.items()})

        def gcs_chain() -> None:
            started(self.gcs)
            seed.seed_gcs(self.gcs.endpoint())

        def cloudflare_chain() -> None:
            started(self.cloudflare_api)

        def apps_chain() -> None:
            # After the databases: kube-api's first reconcile starts the apps, which query them.
            started(self.kube_api)
            for site, app in self.apps.items():
                t0 = time.monotonic()
                replicas = self.kube_api.desired_replicas(site)
                if replicas is None:
                    raise LabError(f"kube-api has no deployment {app.deployment_key}; see {self.kube_api.log_file}")
                # Its reconcile may be doing the same: scale() waits for it, and then has nothing left to do.
                outcome = app.follow(replicas, was_running=apps_running[site])
                outcomes[app.name] = outcome
                report(f"  {app.name:<14} {outcome:<8} port {app.port}  ({time.monotonic() - t0:.1f} s)"
                       + ("  deployment scaled to 0" if replicas == 0 else ""))

        chains = {"mysql": mysql_chain, "mysql-dr": mysql_dr_chain, "postgres": pg_chain,
                  "azurite": azure_chain, "moto": aws_chain, "gcs": gcs_chain, "cloudflare": cloudflare_chain}
        self._run_chains(chains)
        self._run_chains({"apps": apps_chain})
        self.write_env()
        return outcomes

    @staticmethod
    def _run_chains(chains: dict[str, Callable[[], None]]) -> None:
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=len(chains)) as pool:
            futures = {name: pool.submit(fn) for name, fn in chains.items()}
            for name, future in futures.items():
                try:
                    future.result()
                except Exception as err:
                    failures.append(f"[{name}] {err}")
        if failures:
            raise LabError("the lab is not up:\n" + "\n".join(failures))

    # -- env --------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        s = self.settings
        azure = self.azurite.connection_string()
        aws = self.moto.endpoint()
        gcs = self.gcs.endpoint()
        airflow_port = s.port("airflow")
        values = {
            "DRLAB_HOME": str(s.home),
            "LAB_MYSQL_PRIMARY_URI": self.mysql_primary.uri(),
            "LAB_MYSQL_REPLICA_URI": self.mysql_replica.uri(),
            "LAB_MYSQL_DR_URI": self.mysql_dr.uri(),
            "LAB_PG_PRIMARY_URI": self.pg_primary.uri(),
            "LAB_PG_REPLICA_URI": self.pg_standby.uri(),
            "LAB_TLS_CA": str(s.tls.ca),
            "LAB_AZURE_CONNECTION_STRING": azure,
            "LAB_AZURE_CONTAINER": AZURE_CONTAINER,
            "LAB_AWS_ENDPOINT_URL": aws,
            "LAB_GCS_ENDPOINT_URL": gcs,
            "LAB_GCS_BUCKET": GCS_BUCKET,
            "LAB_S3_BUCKET": seed.S3_BUCKET,
            conn_ids.env_var_name(conn_ids.MYSQL_PRIMARY): self.mysql_primary.uri(SAMPLE_DATABASE),
            conn_ids.env_var_name(conn_ids.MYSQL_REPLICA): self.mysql_replica.uri(SAMPLE_DATABASE),
            conn_ids.env_var_name(conn_ids.MYSQL_DR): self.mysql_dr.uri(),
            # Airflow spells the PostgreSQL scheme "postgres".
            conn_ids.env_var_name(conn_ids.POSTGRES_PRIMARY): self.pg_primary.uri().replace("postgresql://", "postgres://"),
            conn_ids.env_var_name(conn_ids.POSTGRES_STANDBY): self.pg_standby.uri().replace("postgresql://", "postgres://"),
            conn_ids.env_var_name(conn_ids.AZURE_BLOB_DR): json.dumps(
                {"conn_type": "wasb", "extra": {"connection_string": azure}}),
            conn_ids.env_var_name(conn_ids.AWS_PRIMARY): json.dumps(
                {"conn_type": "aws", "login": seed.AWS_LAB_CREDENTIALS["aws_access_key_id"],
                 "password": seed.AWS_LAB_CREDENTIALS["aws_secret_access_key"],
                 "extra": {"endpoint_url": aws, "region_name": seed.AWS_REGION}}),
            conn_ids.env_var_name(conn_ids.GCS_DR): json.dumps(
                {"conn_type": "google_cloud_platform", "extra": {"project": "lab", "endpoint_url": gcs}}),
            "LAB_APP_PRIMARY_URL": self.app_primary.url,
            "LAB_APP_DR_URL": self.app_dr.url,
            "LAB_KUBE_API_URL": self.kube_api.base_url,
            "LAB_CLOUDFLARE_API_URL": self.cloudflare_api.api_url,
            conn_ids.env_var_name(conn_ids.APP_PRIMARY): json.dumps(self.app_primary.connection()),
            conn_ids.env_var_name(conn_ids.APP_DR): json.dumps(self.app_dr.connection()),
            conn_ids.env_var_name(conn_ids.EKS_PRIMARY): json.dumps(self.kube_api.connection("primary")),
            conn_ids.env_var_name(conn_ids.AKS_DR): json.dumps(self.kube_api.connection("dr")),
            conn_ids.env_var_name(conn_ids.CLOUDFLARE): json.dumps(self.cloudflare_api.connection()),
            "AIRFLOW_HOME": str(s.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(s.root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(s.root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__PORT": str(airflow_port),
            # The UI and REST API of the lab's Airflow are for this machine only (Airflow binds 0.0.0.0).
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{airflow_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{airflow_port}/execution/",
        }
        aws_seed = getattr(self, "_aws", None)
        if aws_seed is not None:
            values |= {"LAB_ROUTE53_ZONE_ID": aws_seed.hosted_zone_id,
                       "LAB_APP_RECORD": seed.APP_RECORD,
                       "LAB_CLOUDFRONT_DISTRIBUTION_ID": aws_seed.distribution_id,
                       "LAB_DMS_TASK_ARN": aws_seed.dms_task_arn}
        return values

    def write_env(self) -> None:
        path = self.settings.env_file
        lines = ["# Written by `drctl lab up`: the lab's connection settings. Load with `. .lab/env`.",
                 "# Holds the lab's generated passwords: mode 0600, git-ignored."]
        lines += [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(tmp, path)

    # -- down / status -----------------------------------------------------------------------------
    def down(self, wipe: bool = False, report: Report = print) -> list[str]:
        from multicloud_dr.lab.airflow_run import stop_standalone

        stopped = []
        if stop_standalone(self.settings):   # the lab's Airflow (`make airflow`) and all it started
            stopped.append("airflow")
            report(f"  {'airflow':<14} stopped")
        from multicloud_dr.lab.scaleout import AirflowDbService, RedisService, stop_leftovers

        if stop_leftovers(self.settings, stop_services=False):   # a scale-out demo's Airflow that was killed
            stopped.append("scaleout")
            report(f"  {'scaleout':<14} stopped")
        for service in (RedisService(self.settings), AirflowDbService(self.settings)):
            if service.stop():
                stopped.append(service.name)
                report(f"  {service.name:<14} stopped")
        for service in reversed(self.services):  # replicas before their primaries
            if service.stop():
                stopped.append(service.name)
                report(f"  {service.name:<14} stopped")
        if wipe and self.settings.home.exists():
            running = [s.name for s in self.services if s.pid() is not None]
            if running:
                raise LabError(f"not wiping {self.settings.home}: still running: {', '.join(running)}")
            shutil.rmtree(self.settings.home)
            report(f"  wiped {self.settings.home}")
        if wipe and self.settings.postgres_home != self.settings.home and self.settings.postgres_home.exists():
            shutil.rmtree(self.settings.postgres_home)
            report(f"  wiped {self.settings.postgres_home}")
        return stopped

    def stop(self, names: list[str], report: Report = print) -> None:
        """Stop the named services only (what a test session started, say), replicas first."""
        for service in reversed(self.services):
            if service.name in names and service.stop():
                report(f"  {service.name:<14} stopped")

    def status(self) -> list[ServiceState]:
        return [service.state() for service in self.services]


def format_status(states: list[ServiceState]) -> str:
    """A table of the services; STATE is up, down, unhealthy or idle (an app scaled to 0 on purpose)."""
    rows = [("SERVICE", "PLAYS", "PORT", "STATE", "PID", "DETAIL")]
    rows += [(s.name, s.plays, str(s.port), s.state, str(s.pid or "-"), s.detail) for s in states]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
                     for r in rows)


def delete_blob_prefix(service, root) -> int:
    """Delete every blob under a lab-only wasb:// prefix (a test's, a demo's), breaking the leases a killed run left
    behind. Never for real backups: a held lease there is a live writer."""
    container = service.get_container_client(root.bucket)
    deleted = 0
    for blob in container.list_blobs(name_starts_with=root.path + "/"):
        with contextlib.suppress(Exception):
            container.get_blob_client(blob.name).break_lease(lease_break_period=0)
        with contextlib.suppress(Exception):
            container.delete_blob(blob.name)
            deleted += 1
    return deleted
