"""Airflow Assets the DAGs produce and consume (one place, so producer and consumer agree)."""

from __future__ import annotations


def mysql_backup_asset(database: str):
    """Updated each time a verified backup of `database` exists; the restore drill is triggered by it."""
    from airflow.sdk import Asset

    return Asset(name=f"mysql_backup.{database}", uri=f"multicloud-dr://backups/mysql/{database}",
                 group="backups")
