"""Fencing a whole site (every database of it the topology names), and fencing an old primary that comes back.

F30 (the primary partitioned, not dead): a failover that cannot reach the old primary records in the DR state
that its fencing is pending. `fence_returning_site` is what `replication_health` runs before its checks, every
five minutes: when a fencing is pending and the site answers again, it is fenced at once (read-only, the app's
accounts locked, their sessions ended) and the DR state records it as confirmed, with a new fencing epoch;
while it stays unreachable nothing changes. No lock on the DR state is needed to do it: completing a pending
fencing is the one change any run may make (state/dr_state.py).
"""

from __future__ import annotations

import logging
from typing import Any

from multicloud_dr.config import Topology
from multicloud_dr.exceptions import InputError, StateConflictError

log = logging.getLogger(__name__)
CONFIRM_TRIES = 3


def site_databases(topology: Topology, site: str, *, engine: str | None = None,
                   database: str | None = None) -> list[tuple[Any, str]]:
    """(database config, connection id) of each database at `site`; one without app_users is refused before
    anything is touched (never half a fence by mistake)."""
    chosen = []
    for db in topology.databases:
        conn_id = db.primary_conn_id if site == "primary" else (db.dr_conn_id or db.replica_conn_id)
        wanted = (not database or db.name == database) and (not engine or db.engine == engine)
        if conn_id is None or not wanted:
            continue
        if not db.app_users:
            raise InputError(f"database {db.name} ({db.engine}, {conn_id}) has no app_users in the topology: name the "
                             f"application's accounts there (fencing locks them), or pick others with --engine")
        chosen.append((db, conn_id))
    if not chosen:
        raise InputError(f"the topology has no such database at site {site} (--database / --engine)")
    return chosen


def fence_site(topology: Topology, site: str, *, unfence: bool = False, engine: str | None = None,
               database: str | None = None, standby_ok: bool = False) -> list[dict[str, Any]]:
    """Fence (or unfence) every chosen database of `site`; one result per database (`pending`: unreachable).
    `standby_ok`: a PostgreSQL standby counts as fenced (`in_recovery`), left untouched, where otherwise fencing
    it is refused (fence.StandbyError)."""
    from functools import partial

    from multicloud_dr.failover import fence

    results = []
    for db, conn_id in site_databases(topology, site, engine=engine, database=database):
        if db.engine == "mysql":
            step = fence.unfence_mysql if unfence else fence.fence_mysql
        else:
            step = fence.unfence_postgres if unfence else partial(fence.fence_postgres, standby_ok=standby_ok)
        results.append({"database": db.name, "engine": db.engine, "conn_id": conn_id,
                        **step(conn_id, db.app_users).to_dict()})
    return results


def fence_returning_site(topology: Topology, store: Any = None) -> dict[str, Any]:
    """If the DR state holds a pending fencing, fence that site when it answers, and confirm it in the state."""
    from multicloud_dr.state.dr_state import DrStateStore

    store = store or DrStateStore.for_topology(topology)
    state, _ = store.read()
    if state is None or state.fencing.status != "pending" or state.fencing.site is None:
        return {"pending": False, "fenced": False, "detail": "no fencing is pending"}
    site = state.fencing.site
    # A returning PostgreSQL primary that has been rebuilt as a standby of DR meanwhile takes no writes: fenced.
    results = fence_site(topology, site, standby_ok=True)
    unreachable = [r["conn_id"] for r in results if r.get("pending")]
    if unreachable:
        log.warning("fencing of %s is pending and it is still unreachable (%s): nothing to do yet", site,
                    ", ".join(unreachable))
        return {"pending": True, "fenced": False, "site": site, "results": results,
                "detail": f"{site} is still unreachable: {', '.join(unreachable)}"}
    for attempt in range(CONFIRM_TRIES):
        try:
            state, _ = store.apply(lambda s, at: s.fence_confirmed(site, None, at=at)
                                   if s.fencing.site == site and s.fencing.status == "pending" else s)
            break
        except StateConflictError:
            if attempt == CONFIRM_TRIES - 1:
                raise
    log.warning("fenced %s, which came back while its fencing was pending: fencing epoch %d", site,
                state.fencing_epoch)
    return {"pending": False, "fenced": True, "site": site, "fencing_epoch": state.fencing_epoch,
            "results": results, "detail": f"{site} came back and was fenced (epoch {state.fencing_epoch})"}
