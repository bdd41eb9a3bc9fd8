"""DR metrics: gauges sent through Airflow's own stats client, so they go where Airflow's metrics go.

StatsD when `[metrics] statsd_on` (the official Helm chart's statsd exporter turns them into Prometheus
metrics), DogStatsD when `statsd_datadog_enabled`, OpenTelemetry when `otel_on`; nowhere when none is set.
Airflow sets the client up from its configuration before a task runs (the task runner at its start;
`dag.test()` when `airflow.sdk.serde` is imported), e.g. from AIRFLOW__METRICS__STATSD_ON=True,
AIRFLOW__METRICS__STATSD_HOST and AIRFLOW__METRICS__STATSD_PORT. StatsD needs the `statsd` distribution
(Airflow's `statsd` extra; the official image has it).

Names, after the client's own prefix (`[metrics] statsd_prefix` / `otel_prefix`, "airflow" by default):

- `multicloud_dr.rpo_seconds.<environment>`: the current achievable RPO (replication_health's `rpo` task);
  tags environment.
- `multicloud_dr.check.<check>.<environment>`: each replication check's measured value, in its unit (seconds of
  lag or age, or a count); tags environment, check, unit.
- `multicloud_dr.backup_age_seconds.<database>`: a backup just verified, the storage server's clock now minus
  its `stored_at` (one clock: a worker's may be off); tags database.
- `multicloud_dr.backup_bytes.<database>`: that backup's stored (compressed) size; tags database.
- `multicloud_dr.restore_drill_seconds.<database>`: how long the restore drill's restore took; tags environment,
  database.
- `multicloud_dr.predicted_restore_seconds.<database>`: the restore time the drill predicts 30 days ahead from
  the database's growth; tags environment, database.
- `multicloud_dr.failover_rto_seconds.<environment>`: the RTO a failover, failback or failover drill achieved
  (trigger to traffic verified on the target site); tags environment, kind, mode, target_site.

In a name, `<check>`, `<database>` and `<environment>` keep letters, digits, `_` and `-`; anything else becomes
`_` (`mysql_replica/petclinic` -> `mysql_replica_petclinic`): a dot would add a level to the name, and Airflow
drops a name with other characters. Tag values keep their `.` and `/` (Airflow allows them).

A value that is not known (None: no RPO could be measured, a replica's lag is NULL) is not sent: a gauge of 0
would read as "no lag". A metric that cannot be measured or sent logs a warning; it never fails the DR task.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multicloud_dr.backup.manifest import Manifest
    from multicloud_dr.replication.result import HealthReport

log = logging.getLogger(__name__)

PREFIX = "multicloud_dr"
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_./-]")  # Airflow's characters; ',' and '=' would also break InfluxDB tags


def metric_name(metric: str, *subjects: str) -> str:
    """`multicloud_dr.<metric>.<subject>...`, each subject made safe for a name."""
    return ".".join([PREFIX, metric, *(_NOT_IN_NAME.sub("_", str(s)) for s in subjects)])


def gauge(metric: str, value: float | None, *subjects: str, **tags: Any) -> None:
    """Set the gauge `multicloud_dr.<metric>.<subjects>` to `value`, with `tags` (None ones left out)."""
    if value is None:
        return  # unknown is not zero
    name = metric_name(metric, *subjects)
    try:
        from airflow.sdk.observability.stats import Stats

        Stats.gauge(name, value if isinstance(value, int | float) else float(value),
                    tags={k: _NOT_IN_TAG.sub("_", str(v)) for k, v in tags.items() if v is not None})
    except Exception as err:  # a metric never fails the task it describes, whatever the client does
        log.warning("metric %s was not sent: %s", name, err)


@contextlib.contextmanager
def measuring(what: str) -> Iterator[None]:
    """Around the reads a metric needs beyond the task's own work: a failure there is logged, the task goes on."""
    try:
        yield
    except Exception as err:  # as in gauge(): the step succeeded, its metric is not worth failing it
        log.warning("%s not measured: %s", what, err)


def send_health_report(report: HealthReport, environment: str) -> None:
    """The current achievable RPO and every check's value (a check that measured nothing sends nothing)."""
    with measuring("the replication metrics"):
        gauge("rpo_seconds", report.rpo_seconds, environment, environment=environment)
        for check in report.checks:
            gauge("check", check.value, check.name, environment, environment=environment, check=check.name,
                  unit=check.unit)


def send_backup(manifest: Manifest, storage_now: datetime) -> None:
    """A verified backup's age, both ends on the storage server's clock (a worker's may be off), and size."""
    with measuring("the backup metrics"):
        database = manifest.database
        gauge("backup_age_seconds", (storage_now - manifest.stored_at).total_seconds(), database, database=database)
        gauge("backup_bytes", manifest.bytes_stored, database, database=database)


def send_drill_report(drill: Mapping[str, Any], environment: str) -> None:
    """The restore drill's measured restore time and the time it predicts (`drill_report`'s `prediction`)."""
    with measuring("the restore drill metrics"):
        database = drill["database"]
        tags = {"environment": environment, "database": database}
        gauge("restore_drill_seconds", drill.get("seconds"), database, **tags)
        gauge("predicted_restore_seconds", (drill.get("prediction") or {}).get("predicted_seconds"), database,
              **tags)


def send_failover_report(report: Mapping[str, Any] | None) -> None:
    """The RTO a finished failover, failback or drill achieved (None until its verify step is done)."""
    if not report:
        return
    with measuring("the failover metrics"):
        environment = report["environment"]
        gauge("failover_rto_seconds", report.get("rto_seconds"), environment, environment=environment,
              kind=report.get("kind"), mode=report.get("mode"), target_site=report.get("target_site"))
