"""Retention against Azurite: seeded backups with chosen (past) server-side dates.

Azurite's own timestamps cannot be backdated, which is why retention measures age as the storage
server's now minus the manifest's `stored_at`: the tests write manifests whose `stored_at` lies in
the past, and either pass `now=` or let retention ask the server.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobLeaseClient

from multicloud_dr.backup import retention
from multicloud_dr.backup.layout import BackupLayout, StorageUrl
from multicloud_dr.backup.lease import BackupLease
from multicloud_dr.backup.manifest import StoredObject, Verification
from multicloud_dr.backup.retention import (
    RetentionPolicy,
    apply_retention,
    plan_retention,
    run_retention,
)
from multicloud_dr.backup.store import BackupStore
from multicloud_dr.exceptions import ConfigError

from .conftest import seed_backup

CONTAINER = "dr-backups"
DB = "petclinic"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LOGGER = "multicloud_dr.backup.retention"


@pytest.fixture(scope="module")
def service(lab):
    from multicloud_dr import connections
    from multicloud_dr.connections.wasb import blob_service_client

    return blob_service_client(connections.get_endpoint(connections.AZURE_BLOB_DR))


@pytest.fixture
def store(service) -> BackupStore:
    return BackupStore(service, CONTAINER)


@pytest.fixture
def root(store):
    url = StorageUrl("wasb", CONTAINER, f"test-retention-{uuid.uuid4().hex}")
    yield url
    for item in store.container.list_blobs(name_starts_with=url.path + "/"):
        blob = store.container.get_blob_client(item.name)
        if item.lease.state == "leased":
            BlobLeaseClient(blob).break_lease(lease_break_period=0)
        blob.delete_blob(delete_snapshots="include")


def seed(store: BackupStore, root: StorageUrl, days_old: float, status: str = "verified",
         now: datetime = NOW, database: str = DB) -> BackupLayout:
    """One backup as run_backup leaves it: data blob, .lease blob, manifest (written last)."""
    return seed_backup(store, root, database, days_old, status, now)


def exists(store: BackupStore, url: StorageUrl) -> bool:
    return store.blob(url).exists()


def fully_present(store: BackupStore, layout: BackupLayout) -> bool:
    return all(exists(store, u) for u in (layout.manifest, layout.data, layout.lease))


def fully_gone(store: BackupStore, layout: BackupLayout) -> bool:
    return not any(exists(store, u) for u in (layout.manifest, layout.data, layout.lease))


def backup_id(layout: BackupLayout) -> str:
    return f"{layout.database}/{layout.stamp}"


def test_f11_dry_run_is_the_default_logs_what_it_would_delete_and_deletes_nothing(store, root, caplog):
    old = [seed(store, root, d) for d in (70, 60, 50)]      # all past keep_days, the newest still verified
    plan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
    caplog.set_level(logging.INFO, logger=LOGGER)
    result = apply_retention(store, plan)
    assert result.dry_run and result.deleted == []
    assert result.would_delete == [backup_id(old[0]), backup_id(old[1])]
    assert result.kept == [backup_id(old[2])]
    assert all(fully_present(store, layout) for layout in old)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    for layout in old[:2]:
        assert any(f"would delete {backup_id(layout)}" in m and "days old >= keep_days=30" in m for m in messages)
    assert not any(backup_id(old[2]) in m and "delete" in m for m in messages)
    assert messages[-1].startswith(f"retention {DB}: kept 1, would delete 2") and "dry run" in messages[-1]


def test_f11_backups_failing_past_the_window_keep_the_newest_verified(store, root):
    old = [seed(store, root, d) for d in (70, 60, 50)]
    failed_since = [seed(store, root, d, "failed") for d in (45, 40)]  # later backups all failed verification
    result = apply_retention(store, plan_retention(store, root, DB, RetentionPolicy(), now=NOW), dry_run=False)
    assert result.kept == [backup_id(old[2])]
    assert sorted(result.deleted) == sorted(backup_id(x) for x in (old[0], old[1], *failed_since))
    assert fully_present(store, old[2])
    assert all(fully_gone(store, x) for x in (old[0], old[1], *failed_since))
    assert [r.url for r in store.list_manifests(root, DB)] == [old[2].manifest]
    assert result.to_dict()["counts"] == {"kept": 1, "deleted": 4, "would_delete": 0, "skipped": 0,
                                          "already_gone": 0}


def test_empty_policy_is_refused_and_nothing_is_touched(service, store, root):
    layouts = [seed(store, root, d) for d in (90, 80)]
    with pytest.raises(ConfigError, match="keep nothing"):
        run_retention(service, root, DB, RetentionPolicy(keep_days=0, min_keep=0), dry_run=False)
    with pytest.raises(ConfigError, match="RetentionPolicy"):
        run_retention(service, root, DB, {"keep_days": 0, "min_keep": 0}, dry_run=False)  # type: ignore[arg-type]
    assert all(fully_present(store, layout) for layout in layouts)


def test_f12_backup_in_use_by_a_restore_is_skipped_and_left_whole(store, root, caplog):
    in_use, other, newest = seed(store, root, 70), seed(store, root, 60), seed(store, root, 50)
    caplog.set_level(logging.INFO, logger=LOGGER)
    with BackupLease(store.blob(in_use.lease), duration=15, purpose="restore"):
        plan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
        result = apply_retention(store, plan, dry_run=False)
    assert [d.action for d in plan.decisions] == ["skip", "delete", "keep"]
    assert result.skipped == [{"backup_id": backup_id(in_use), "reason": plan.decisions[0].reason}]
    assert result.skipped[0]["reason"].startswith("in use")
    assert result.deleted == [backup_id(other)] and result.kept == [backup_id(newest)]
    assert fully_present(store, in_use) and fully_present(store, newest) and fully_gone(store, other)
    assert "skipped 1 in use" in caplog.records[-1].getMessage()


def test_f12_lease_taken_after_the_plan_is_rechecked_before_deleting(store, root):
    taken_late, newest = seed(store, root, 70), seed(store, root, 50)
    plan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
    assert [d.action for d in plan.decisions] == ["delete", "keep"]
    with BackupLease(store.blob(taken_late.lease), duration=15, purpose="restore"):  # a restore starts now
        result = apply_retention(store, plan, dry_run=False)
    assert result.deleted == [] and [s["backup_id"] for s in result.skipped] == [backup_id(taken_late)]
    assert "after the plan" in result.skipped[0]["reason"]
    assert fully_present(store, taken_late) and fully_present(store, newest)


class _SkewedClock(datetime):
    """The worker's clock, `skew` off the real time (what faketime would do to the process)."""

    skew = timedelta(0)

    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + cls.skew

    @classmethod
    def utcnow(cls):
        return datetime.now(UTC).replace(tzinfo=None) + cls.skew

    @classmethod
    def today(cls):
        return cls.now()


@pytest.mark.parametrize("skew_days", [3, -3])
def test_f25_age_is_measured_by_the_storage_server_not_the_worker_clock(store, root, monkeypatch, skew_days):
    server_now = store.server_now()
    newest = seed(store, root, 1, now=server_now)
    kept = seed(store, root, 29, now=server_now)           # a worker 3 days fast would call it 32 days old
    expired = seed(store, root, 31, "unverified", now=server_now)  # a worker 3 days slow: 28 days old
    monkeypatch.setattr(_SkewedClock, "skew", timedelta(days=skew_days))
    monkeypatch.setattr(retention, "datetime", _SkewedClock)
    assert abs(retention.datetime.now(UTC) - datetime.now(UTC) - timedelta(days=skew_days)) < timedelta(minutes=1)

    plan = plan_retention(store, root, DB, RetentionPolicy(keep_days=30))  # no now=: the server's Date
    assert abs(plan.now - store.server_now()) < timedelta(minutes=2)
    assert {d.backup_id: d.action for d in plan.decisions} == {
        backup_id(expired): "delete", backup_id(kept): "keep", backup_id(newest): "keep"}
    result = apply_retention(store, plan, dry_run=False)
    assert result.deleted == [backup_id(expired)]
    assert fully_present(store, kept) and fully_present(store, newest) and fully_gone(store, expired)


class _RecordingStore(BackupStore):
    """Records every delete (and log line) in one timeline, to check what happens in which order."""

    def __init__(self, service, container, timeline):
        super().__init__(service, container)
        self.timeline = timeline

    def blob(self, url):
        real = super().blob(url)
        timeline = self.timeline

        class Proxy:
            def __getattr__(self, name):
                return getattr(real, name)

            def delete_blob(self, *args, **kwargs):
                result = real.delete_blob(*args, **kwargs)
                timeline.append(("delete", url.path))
                return result

        return Proxy()


class _TimelineHandler(logging.Handler):
    def __init__(self, timeline):
        super().__init__(logging.INFO)
        self.timeline = timeline

    def emit(self, record):
        self.timeline.append(("log", record.getMessage()))


def test_deletion_logs_first_then_manifest_data_lease_and_a_rerun_is_a_no_op(service, root):
    timeline: list[tuple[str, str]] = []
    store = _RecordingStore(service, CONTAINER, timeline)
    first, second, newest = seed(store, root, 90), seed(store, root, 80), seed(store, root, 1)
    handler = _TimelineHandler(timeline)
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        plan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
        result = apply_retention(store, plan, dry_run=False)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert result.deleted == [backup_id(first), backup_id(second)] and result.kept == [backup_id(newest)]
    # Every deletion was announced before the first object went.
    first_delete = next(i for i, (kind, _) in enumerate(timeline) if kind == "delete")
    before = timeline[:first_delete]
    announced = [m for kind, m in before if kind == "log" and m.startswith(f"retention {DB}: deleting")]
    assert len(announced) == 2
    # Per backup: manifest first (readers stop seeing it), then the data, then the .lease blob.
    deletes = [path for kind, path in timeline if kind == "delete"]
    assert deletes == [first.manifest.path, first.data.path, first.lease.path,
                       second.manifest.path, second.data.path, second.lease.path]
    assert fully_gone(store, first) and fully_gone(store, second) and fully_present(store, newest)

    again = apply_retention(store, plan, dry_run=False)  # the same plan once more: everything is gone already
    assert again.deleted == [] and again.already_gone == [backup_id(first), backup_id(second)]
    assert fully_present(store, newest)
    fresh = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
    assert fresh.to_delete == [] and apply_retention(store, fresh, dry_run=False).deleted == []


def test_old_unverified_backup_deleted_newer_verified_kept(store, root):
    unverified = seed(store, root, 45, "unverified")
    verified = seed(store, root, 40)
    young_unverified = seed(store, root, 2, "unverified")
    result = apply_retention(store, plan_retention(store, root, DB, RetentionPolicy(), now=NOW), dry_run=False)
    assert result.deleted == [backup_id(unverified)]
    assert result.kept == [backup_id(verified), backup_id(young_unverified)]
    assert fully_gone(store, unverified) and fully_present(store, verified) and fully_present(store, young_unverified)


def test_backup_verified_after_the_plan_is_not_deleted(store, root):
    # No verified backup at planning time: both old ones are deletable. Then one passes verification,
    # becoming the only verified backup: deleting it on the stale plan would lose the last good backup.
    first, second = seed(store, root, 50, "unverified"), seed(store, root, 40, "unverified")
    plan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
    assert [d.action for d in plan.decisions] == ["delete", "delete"]
    record = store.read_manifest(second.manifest)
    store.replace_manifest(record, record.manifest.model_copy(
        update={"verification": Verification(status="verified", at=NOW, detail="ok")}))
    result = apply_retention(store, plan, dry_run=False)
    assert result.deleted == [backup_id(first)]
    assert [s["backup_id"] for s in result.skipped] == [backup_id(second)]
    assert "changed" in result.skipped[0]["reason"]
    assert fully_present(store, second) and fully_gone(store, first)
    replan = plan_retention(store, root, DB, RetentionPolicy(), now=NOW)
    assert [d.action for d in replan.decisions] == ["keep"]


def test_run_retention_uses_server_time_and_defaults_to_dry_run(service, store, root):
    server_now = store.server_now()
    old, newest = seed(store, root, 40, now=server_now), seed(store, root, 35, now=server_now)
    result = run_retention(service, root, DB, RetentionPolicy())
    assert result.dry_run and result.would_delete == [backup_id(old)] and result.deleted == []
    assert fully_present(store, old)
    data = result.to_dict()
    assert data["counts"]["would_delete"] == 1 and data["bytes_deleted"] > 0
    result = run_retention(service, str(root), DB, RetentionPolicy(), dry_run=False)
    assert result.deleted == [backup_id(old)] and fully_gone(store, old) and fully_present(store, newest)


def test_object_outside_the_backup_folder_is_never_deleted(store, root):
    bystander = root.join("elsewhere", "keep-me.bin")
    store.blob(bystander).upload_blob(b"not part of any backup")
    layout = seed(store, root, 60, "failed")
    seed(store, root, 10)
    record = store.read_manifest(layout.manifest)
    damaged = record.manifest.model_copy(update={"objects": [
        *record.manifest.objects,
        StoredObject(name=str(bystander), bytes=22, sha256="0" * 64, raw_bytes=22)]})
    store.replace_manifest(record, damaged)
    result = apply_retention(store, plan_retention(store, root, DB, RetentionPolicy(), now=NOW), dry_run=False)
    assert result.deleted == [backup_id(layout)] and result.left_behind == [str(bystander)]
    assert exists(store, bystander) and fully_gone(store, layout)


def test_root_must_be_azure_blob(service):
    with pytest.raises(ConfigError, match="Azure Blob"):
        run_retention(service, "s3://bucket/prefix", DB, RetentionPolicy())

