"""multicloud-dr: disaster recovery for a multi-cloud web application, orchestrated by Airflow.

The package is plain Python; the Airflow adapters (operators, sensors) are thin layers over it,
and `drctl` runs the same functions when Airflow itself is down.
"""

__version__ = "0.1.0"
