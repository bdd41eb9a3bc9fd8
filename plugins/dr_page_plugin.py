"""Airflow plugin: the Disaster recovery page (multicloud_dr/monitoring) in the Airflow UI's navigation, and the
listener that ends a task's process with its worker's (multicloud_dr/task_guard.py, FAULTS.md F35).

Its FastAPI app is mounted by the api-server at /dr; the nav entry opens it inside the UI (an external view with a
route of its own, /plugin/disaster-recovery). Nothing is read at import: the app reads the topology and the status
per request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from multicloud_dr.monitoring.app import create_app
from multicloud_dr.task_guard import task_guard


class DisasterRecoveryPlugin(AirflowPlugin):
    name = "multicloud_dr"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/dr", "name": "Disaster recovery"}]
    external_views = [{"name": "Disaster recovery", "href": "/dr/", "destination": "nav",
                       "url_route": "disaster-recovery", "icon": None}]
    listeners = [task_guard]
