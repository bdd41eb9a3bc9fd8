"""Clients for the clouds' APIs, built from an `Endpoint` (so they work with or without Airflow)."""
