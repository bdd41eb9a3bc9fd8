"""The steps of a failover, a failback and a drill, in order: what the DAGs build their tasks from at parse time
(this module imports nothing, so parsing a DAG loads no storage or database client) and what the step runner
(failover/orchestrator.py) runs."""

FAILOVER_STEPS = ("evidence", "gates", "approval", "fence", "dr_stack", "data", "app", "health", "traffic", "verify")
# A failback fences DR first (its writes stop), copies its data to the primary, then lets the primary take writes
# before its app is checked (the app is healthy only on a writable database) and traffic goes back.
FAILBACK_STEPS = ("evidence", "gates", "approval", "fence", "data", "unfence", "app", "health", "traffic", "verify")
DRILL_STEPS = ("evidence", "gates", "approval", "data", "app", "health", "traffic", "verify")
