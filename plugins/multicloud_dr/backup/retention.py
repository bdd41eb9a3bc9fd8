"""Retention: delete backups older than the policy allows, never the last good ones.

- Age is measured with SERVER-SIDE times only (F25): a backup's age is the storage service's "now"
  (its Date header) minus the manifest's `stored_at` (the storage server's time the dump was
  committed). The worker's clock is never read, so a worker days ahead or behind deletes nothing
  early and keeps nothing late.
- The newest `min_keep` VERIFIED backups are always kept, however old: when backups have been
  failing for longer than the retention window, the last good one stays (F11).
- A backup whose `.lease` blob is leased is in use by a restore or failover and is skipped (F12).
  Deleting takes that lease itself, so a restore cannot start on a backup half-way through deletion.
- A policy that would keep nothing is refused, and the default is a dry run that only logs.

Deleting one backup: the manifest first (only if unchanged since the plan was made: a backup that
was verified in the meantime is re-planned, not deleted), so readers stop seeing the backup; then its
data objects; then its `.lease` blob. Objects already gone are fine, so a re-run is harmless.

`decide()` is the whole decision as a pure function; `plan_retention()` feeds it what the store
holds, and `apply_retention()` carries the plan out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient

from multicloud_dr.backup.layout import BackupLayout, StorageUrl, validate_database_name
from multicloud_dr.backup.lease import is_leased, readers
from multicloud_dr.backup.store import BackupStore, ManifestRecord
from multicloud_dr.exceptions import ConfigError, DrError
from multicloud_dr.progress import MB

log = logging.getLogger(__name__)

Action = Literal["keep", "delete", "skip"]

# How long retention holds a backup's lease while deleting it: a handful of deletes take well under
# a second; if this ran out, the final conditional delete of the `.lease` blob would fail and leave it.
DELETE_LEASE_SECONDS = 60


@dataclass(frozen=True)
class RetentionPolicy:
    """`keep_days`: keep every backup younger than this (storage-server time). `min_keep`: the
    newest this many verified backups are kept whatever their age (at least 1)."""

    keep_days: int = 30
    min_keep: int = 1

    def __post_init__(self) -> None:
        for name in ("keep_days", "min_keep"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"retention {name} must be a whole number, got {value!r}")
            if value < 0:
                raise ConfigError(f"retention {name} must not be negative (got {value}): set {name} to a number "
                                  f"of {'days' if name == 'keep_days' else 'backups'} >= 0")
        if self.keep_days <= 0 and self.min_keep <= 0:
            raise ConfigError("this retention policy would keep nothing (keep_days=0, min_keep=0) and delete every "
                              "backup: set keep_days (e.g. 30) and min_keep (at least 1)")
        if self.min_keep < 1:
            raise ConfigError(f"retention min_keep={self.min_keep} could delete the last verified backup: set "
                              f"min_keep to at least 1 (the newest verified backups kept whatever their age)")

    def to_dict(self) -> dict:
        return {"keep_days": self.keep_days, "min_keep": self.min_keep}


@dataclass(frozen=True)
class Candidate:
    """What the decision needs to know about one backup."""

    key: str                 # the manifest URL: unique
    backup_id: str
    logical_date: datetime
    stored_at: datetime      # storage server's time (F25)
    status: str              # verification: verified | unverified | failed
    bytes: int = 0

    @classmethod
    def from_record(cls, record: ManifestRecord) -> Candidate:
        m = record.manifest
        return cls(str(record.url), m.backup_id, as_utc(m.logical_date), as_utc(m.stored_at),
                   m.verification.status, m.bytes_stored)


@dataclass(frozen=True)
class Decision:
    key: str
    backup_id: str
    action: Action
    reason: str
    status: str
    stored_at: datetime
    age_days: float
    bytes: int

    def to_dict(self) -> dict:
        return {"backup_id": self.backup_id, "manifest": self.key, "action": self.action, "reason": self.reason,
                "verification": self.status, "stored_at": self.stored_at.isoformat(),
                "age_days": round(self.age_days, 3), "bytes": self.bytes}


def as_utc(value: datetime) -> datetime:
    """A manifest's database-server times are stored without a zone: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ordinal(n: int) -> str:
    return "newest" if n == 1 else f"{n}{'nd' if n == 2 else 'rd' if n == 3 else 'th'} newest"


def _newest_first(candidates: Iterable[Candidate]) -> list[Candidate]:
    # The order "latest verified" (restore) uses: logical date, then when it was stored.
    return sorted(candidates, key=lambda c: (c.logical_date, c.stored_at, c.key), reverse=True)


def protected_keys(candidates: Iterable[Candidate], policy: RetentionPolicy) -> dict[str, int]:
    """The newest `min_keep` verified backups: key -> rank (1 = newest)."""
    verified = [c for c in _newest_first(candidates) if c.status == "verified"]
    return {c.key: rank for rank, c in enumerate(verified[:policy.min_keep], 1)}


def decide(candidates: Iterable[Candidate], now: datetime, policy: RetentionPolicy,
           leased: Collection[str] = frozenset()) -> list[Decision]:
    """One decision per backup, oldest first. Pure: `now` is the storage server's time, `leased` the
    keys whose `.lease` is held. A backup is deleted only when it is not among the newest `min_keep`
    verified ones, is at least `keep_days` old, and is not leased."""
    if now.tzinfo is None:
        raise ConfigError("retention needs an aware 'now' (the storage server's time, UTC)")
    items = list(candidates)
    protected = protected_keys(items, policy)
    keep_for = timedelta(days=policy.keep_days)
    decisions = []
    for c in reversed(_newest_first(items)):
        age = now - c.stored_at
        days = age / timedelta(days=1)
        if c.key in protected:
            action: Action = "keep"
            reason = f"{_ordinal(protected[c.key])} verified backup (min_keep={policy.min_keep}), {days:.1f} days old"
        elif age < keep_for:
            action, reason = "keep", f"{days:.1f} days old, younger than keep_days={policy.keep_days}"
        elif c.key in leased:
            action, reason = "skip", (f"in use: its .lease is held (a restore or failover is reading it); "
                                      f"{days:.1f} days old, retention will look again next run")
        else:
            action, reason = "delete", f"{c.status}, {days:.1f} days old >= keep_days={policy.keep_days}"
        decisions.append(Decision(c.key, c.backup_id, action, reason, c.status, c.stored_at, days, c.bytes))
    return decisions


@dataclass
class RetentionPlan:
    database: str
    root: StorageUrl
    policy: RetentionPolicy
    now: datetime                    # the storage server's time the ages were measured against
    decisions: list[Decision]
    records: dict[str, ManifestRecord] = field(repr=False)

    def by_action(self, action: Action) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]

    @property
    def to_delete(self) -> list[Decision]:
        return self.by_action("delete")

    def to_dict(self) -> dict:
        return {"database": self.database, "root": str(self.root), "policy": self.policy.to_dict(),
                "now": self.now.isoformat(), "decisions": [d.to_dict() for d in self.decisions]}


@dataclass
class RetentionResult:
    database: str
    dry_run: bool
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)        # actually removed (empty on a dry run)
    would_delete: list[str] = field(default_factory=list)   # dry run: what a real run would remove
    skipped: list[dict] = field(default_factory=list)       # {"backup_id", "reason"}: in use, or changed
    already_gone: list[str] = field(default_factory=list)   # planned, but nothing of it was left
    bytes_deleted: int = 0
    left_behind: list[str] = field(default_factory=list)    # objects outside the backup's folder: not touched
    # Archived binlog pieces older than the oldest kept backup's binlog position (none a kept backup needs).
    binlog_pieces: list[str] = field(default_factory=list)  # deleted, or on a dry run would be

    def summary(self) -> str:
        in_use = sum(1 for s in self.skipped if s["reason"].startswith("in use"))
        other = len(self.skipped) - in_use
        if self.dry_run:
            planned = f"would delete {len(self.would_delete)} ({self.bytes_deleted / MB:.1f} MB)"
        else:
            planned = f"deleted {len(self.deleted)} ({self.bytes_deleted / MB:.1f} MB)"
        text = f"retention {self.database}: kept {len(self.kept)}, {planned}, skipped {in_use} in use"
        if other:
            text += f", {other} changed since planned"
        if self.already_gone:
            text += f", {len(self.already_gone)} already gone"
        return text + ("; dry run, nothing deleted" if self.dry_run else "")

    def to_dict(self) -> dict:
        return {"database": self.database, "dry_run": self.dry_run,
                "counts": {"kept": len(self.kept), "deleted": len(self.deleted),
                           "would_delete": len(self.would_delete), "skipped": len(self.skipped),
                           "already_gone": len(self.already_gone)},
                "bytes_deleted": self.bytes_deleted, "kept": list(self.kept), "deleted": list(self.deleted),
                "would_delete": list(self.would_delete), "skipped": [dict(s) for s in self.skipped],
                "already_gone": list(self.already_gone), "left_behind": list(self.left_behind),
                "binlog_pieces": list(self.binlog_pieces)}


def _layout(record: ManifestRecord) -> BackupLayout:
    return BackupLayout.from_manifest_url(record.url, record.manifest.codec)


def plan_retention(store: BackupStore, root: StorageUrl, database: str, policy: RetentionPolicy,
                   now: datetime | None = None) -> RetentionPlan:
    """Decide for every backup of `database` under `root`. `now` defaults to the storage service's
    clock (never this worker's, F25). Reads only: takes no lease, deletes nothing."""
    if not isinstance(policy, RetentionPolicy):
        raise ConfigError(f"retention needs a RetentionPolicy, got {type(policy).__name__}")
    validate_database_name(database)
    now = store.server_now() if now is None else now
    if now.tzinfo is None:
        raise ConfigError("retention's 'now' must carry a time zone (UTC): pass the storage server's time")
    records = {str(r.url): r for r in store.list_manifests(root, database)}
    candidates = [Candidate.from_record(r) for r in records.values()]
    first = decide(candidates, now, policy)
    # Only backups that would be deleted need their lease looked at.
    leased = {d.key for d in first if d.action == "delete" and _in_use(store, _layout(records[d.key]))}
    decisions = decide(candidates, now, policy, leased) if leased else first
    if candidates and not any(c.status == "verified" for c in candidates):
        log.warning("retention %s: no verified backup under %s; only backups younger than %d days are kept",
                    database, root, policy.keep_days)
    elif 0 < sum(c.status == "verified" for c in candidates) < policy.min_keep:
        log.warning("retention %s: only %d verified backup(s), fewer than min_keep=%d", database,
                    sum(c.status == "verified" for c in candidates), policy.min_keep)
    return RetentionPlan(database, root, policy, now, decisions, records)


def _take_lease(blob: BlobClient) -> BlobLeaseClient | None:
    """Our own lease on a backup's `.lease` blob while deleting it; None if someone else holds it."""
    try:
        blob.upload_blob(b"", overwrite=False)
    except ResourceExistsError:
        pass  # exists (maybe leased: then the acquire below says so)
    except HttpResponseError as err:
        if err.status_code != 412:
            raise
    try:
        return blob.acquire_lease(lease_duration=DELETE_LEASE_SECONDS)
    except HttpResponseError as err:
        if err.status_code == 409:
            return None
        raise


def _delete(blob: BlobClient, **kwargs) -> bool:
    """True if it was there and is now deleted, False if it was gone already."""
    try:
        blob.delete_blob(delete_snapshots="include", **kwargs)
        return True
    except ResourceNotFoundError:
        return False


def _inside(url: StorageUrl, base: StorageUrl) -> bool:
    return (url.scheme, url.bucket) == (base.scheme, base.bucket) and url.path.startswith(base.path + "/")


def _in_use(store: BackupStore, layout: BackupLayout) -> bool:
    """A writer holds `.lease`, or a restore holds one of the `.inuse-*` leases."""
    return is_leased(store.blob(layout.lease)) or bool(readers(store.container, layout))


def _delete_backup(store: BackupStore, record: ManifestRecord, result: RetentionResult) -> str:
    """Delete one backup under its lease. Returns "deleted", "gone", "in use" or "changed"."""
    layout = _layout(record)
    lease_blob = store.blob(layout.lease)
    lease = _take_lease(lease_blob)
    if lease is None:
        return "in use"
    if readers(store.container, layout):  # a restore started reading it since the plan
        with contextlib.suppress(HttpResponseError):
            lease.release()
        return "in use"
    removed = False
    remaining = [o.name for o in record.manifest.objects]
    try:
        manifest_blob = store.blob(record.url)
        try:
            removed |= _delete(manifest_blob, etag=record.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            if manifest_blob.exists():
                return "changed"  # verified, copied, rewritten since the plan: decide again next run
        for obj in record.manifest.objects:
            url = StorageUrl.parse(obj.name)
            if not _inside(url, layout.base):
                log.warning("retention: %s (listed by %s) is outside the backup's folder %s: left in place",
                            obj.name, record.url, layout.base)
                result.left_behind.append(obj.name)
            else:
                removed |= _delete(store.blob(url))
            remaining.remove(obj.name)
        for blob in store.container.list_blobs(name_starts_with=layout.base.join(".inuse-").path):
            removed |= _delete(store.container.get_blob_client(blob.name))
        lease_blob.delete_blob(lease=lease)
        lease = None
    except BaseException:
        if remaining:
            log.error("retention: deleting %s stopped part-way; these objects may remain and are no longer "
                      "listed by any manifest: %s", record.manifest.backup_id, ", ".join(remaining))
        raise
    finally:
        if lease is not None:
            try:
                lease.release()
            except HttpResponseError as err:
                log.warning("retention: could not release the lease on %s (%s); it expires in %d s",
                            layout.lease, err.status_code, DELETE_LEASE_SECONDS)
    return "deleted" if removed else "gone"


def _check_plan(plan: RetentionPlan) -> None:
    candidates = [Candidate.from_record(r) for r in plan.records.values()]
    protected = protected_keys(candidates, plan.policy)
    bad = [d.backup_id for d in plan.to_delete if d.key in protected or d.key not in plan.records]
    if bad:
        raise DrError(f"refusing a retention plan that deletes protected or unknown backups: {', '.join(bad)}")


def apply_retention(store: BackupStore, plan: RetentionPlan, dry_run: bool = True) -> RetentionResult:
    """Carry out `plan`. Every deletion is logged with its reason before anything is deleted; with
    `dry_run` (the default) nothing is."""
    _check_plan(plan)
    result = RetentionResult(plan.database, dry_run)
    result.kept = [d.backup_id for d in plan.by_action("keep")]
    verb = "would delete" if dry_run else "deleting"
    for d in plan.decisions:
        if d.action == "delete":
            log.info("retention %s: %s %s (%s; %.1f MB)", plan.database, verb, d.backup_id, d.reason, d.bytes / MB)
        elif d.action == "skip":
            log.warning("retention %s: skipping %s (%s)", plan.database, d.backup_id, d.reason)
            result.skipped.append({"backup_id": d.backup_id, "reason": d.reason})
    for d in plan.to_delete:
        if dry_run:
            result.would_delete.append(d.backup_id)
            result.bytes_deleted += d.bytes
            continue
        outcome = _delete_backup(store, plan.records[d.key], result)
        if outcome == "deleted":
            result.deleted.append(d.backup_id)
            result.bytes_deleted += d.bytes
            log.info("retention %s: deleted %s", plan.database, d.backup_id)
        elif outcome == "gone":
            result.already_gone.append(d.backup_id)
            log.info("retention %s: %s was already deleted", plan.database, d.backup_id)
        elif outcome == "in use":
            reason = "in use: its .lease was taken after the plan was made (a restore or failover started)"
            log.warning("retention %s: skipping %s (%s)", plan.database, d.backup_id, reason)
            result.skipped.append({"backup_id": d.backup_id, "reason": reason})
        else:
            reason = "its manifest changed after the plan was made (verified or copied?); decided again next run"
            log.warning("retention %s: skipping %s (%s)", plan.database, d.backup_id, reason)
            result.skipped.append({"backup_id": d.backup_id, "reason": reason})
    _binlog_retention(store, plan, result, dry_run)
    log.info("%s", result.summary())
    return result


def _binlog_retention(store: BackupStore, plan: RetentionPlan, result: RetentionResult, dry_run: bool) -> None:
    """Delete the archived binlog pieces that end before the oldest kept verified backup's binlog position:
    a point-in-time restore starts at a kept backup, so none of them can be replayed again. Without a kept
    verified backup that records a position nothing is deleted (no piece is known to be unneeded)."""
    from multicloud_dr.backup.binlog import BinlogArchive, file_key

    kept = [plan.records[d.key].manifest for d in plan.decisions if d.action != "delete"]
    positions = [(file_key(m.binlog_file), m.binlog_position) for m in kept
                 if m.verification.status == "verified" and m.binlog_file and m.binlog_position]
    if not positions:
        return
    (base, seq), pos = min(positions)
    archive = BinlogArchive(store, plan.root, plan.database)
    for piece in archive.pieces():
        p_base, p_seq = file_key(piece.file)
        # Needed when it holds events after the position (a replay from the position starts right after it).
        if p_base != base or p_seq > seq or (p_seq == seq and piece.end > pos):
            continue
        url = archive.piece_url(piece.file, piece.start, piece.end)
        name = f"{piece.file}:{piece.start}-{piece.end}"
        log.info("retention %s: %s binlog piece %s (before the oldest kept backup's position %s.%06d:%d)",
                 plan.database, "would delete" if dry_run else "deleting", name, base, seq, pos)
        result.binlog_pieces.append(name)
        if not dry_run:
            index = StorageUrl(url.scheme, url.bucket, url.path.removesuffix(".binlog") + ".binlog.json")
            _delete(store.blob(index))     # the index entry first: a piece without one is not archived
            _delete(store.blob(url))


def run_retention(service: BlobServiceClient, root: StorageUrl | str, database: str, policy: RetentionPolicy,
                  dry_run: bool = True) -> RetentionResult:
    """Plan and apply retention for one database's backups under `root` (wasb://container/prefix)."""
    root = StorageUrl.parse(root) if isinstance(root, str) else root
    if root.scheme != "wasb":
        raise ConfigError(f"retention works on Azure Blob backups (wasb://CONTAINER/PREFIX); got {root}")
    store = BackupStore(service, root.bucket)
    store.check_container()
    plan = plan_retention(store, root, database, policy)
    return apply_retention(store, plan, dry_run=dry_run)
