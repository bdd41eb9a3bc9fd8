"""Replication health and the current achievable RPO.

Each check measures one way data reaches the DR site (a MySQL replica, a PostgreSQL standby, an AWS
DMS task, table consistency, the newest verified backup) and returns a `CheckResult`; the RPO is
the worst of the measured delays (`health.summarize`). The checks are plain Python, run by the
`replication_health` DAG (one mapped task per check) and by `drctl replication check`.
"""
