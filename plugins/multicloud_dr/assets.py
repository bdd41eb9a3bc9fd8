"""Airflow Assets the DAGs produce and consume (one place, so producer and consumer agree)."""

from __future__ import annotations


def mysql_backup_asset(database: str):
    """Updated each time a verified backup of `database` exists; the restore drill is triggered by it."""
    from airflow.sdk import Asset

    return Asset(name=f"mysql_backup.{database}", uri=f"multicloud-dr://backups/mysql/{database}",
                 group="backups")


def replication_health_asset(environment: str):
    """One event per replication_health run: the current achievable RPO and every check's result in the
    event's extra, so the Airflow UI (Assets) and the REST API keep the history for dashboards."""
    from airflow.sdk import Asset

    return Asset(name=f"replication_health.{environment}", uri=f"multicloud-dr://replication/{environment}",
                 group="replication")


TERRAFORM_OUTPUTS_ALIAS = "terraform_outputs"


def terraform_outputs_asset(cloud: str, environment: str, stack: str):
    """Updated each time environment_provision publishes a stack's (non-sensitive) outputs; the event's extra
    holds them. The failover DAG can be scheduled on, or read, the DR stack's asset."""
    from airflow.sdk import Asset

    return Asset(name=f"terraform.{cloud}.{environment}.{stack}", uri=f"terraform://{cloud}/{environment}/{stack}",
                 group="terraform")


def terraform_outputs_alias():
    """The outlet of environment_provision's publish task: which stack's asset gets the event is known only when
    the run's params are (`outlet_events[alias].add(terraform_outputs_asset(...), extra=...)`)."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=TERRAFORM_OUTPUTS_ALIAS, group="terraform")
