"""Airflow notifiers: how a breach or a failure reaches people."""
