"""The Disaster recovery page in the Airflow UI, its JSON (`GET /dr/api/status`) and the DR metrics."""
