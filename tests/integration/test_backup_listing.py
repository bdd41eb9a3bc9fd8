"""Listing backups against Azurite: only a manifest at exactly `<root>/<database>/<STAMP>/manifest.json` that
names that database and stamp is a backup of that database. Retention, restore ("latest") and the failover gate
act on the listing, so a manifest placed anywhere else below the prefix must not pass for one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from multicloud_dr.backup.layout import BackupLayout, StorageUrl, stamp
from multicloud_dr.backup.manifest import Manifest, StoredObject, TableEntry
from multicloud_dr.backup.store import BackupStore

DB = "app"
LOGGER = "multicloud_dr.backup.store"
START = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)


def manifest_for(database: str, stamp_: str, logical: datetime, data_url: StorageUrl) -> Manifest:
    return Manifest(
        backup_id=f"{database}/{stamp_}", database=database, logical_date=logical,
        source={"server": "127.0.0.1:13306", "version": "10.11", "flavor": "mariadb"},
        started_at=logical, finished_at=logical + timedelta(minutes=5), stored_at=logical + timedelta(minutes=5),
        tools={"dump": "test"}, codec="zstd",
        objects=[StoredObject(name=str(data_url), bytes=4, sha256="0" * 64, raw_bytes=4)],
        tables={"owners": TableEntry(rows=1, crc32="0badf00d")},
    )


def seed(store: BackupStore, root: StorageUrl, database: str, hours: int) -> BackupLayout:
    """A backup where run_backup puts one: `<root>/<database>/<STAMP>/`."""
    logical = START + timedelta(hours=hours)
    layout = BackupLayout(root, database, stamp(logical))
    store.blob(layout.data).upload_blob(b"dump")
    assert store.create_manifest(layout.manifest, manifest_for(database, layout.stamp, logical, layout.data))
    return layout


def plant(store: BackupStore, url: StorageUrl, manifest: Manifest) -> StorageUrl:
    """A manifest written at any name (what someone with write access below the prefix could do)."""
    assert store.create_manifest(url, manifest)
    return url


def skipped(caplog, url: StorageUrl) -> bool:
    return any(r.name == LOGGER and r.levelno == logging.WARNING and str(url) in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("database", [DB, None], ids=["one-database", "all-databases"])
def test_a_manifest_nested_below_the_database_is_skipped_with_a_warning(store, backup_root, caplog, database):
    real = seed(store, backup_root, DB, 0)
    logical = START + timedelta(hours=5)   # newer than the real backup: "latest" would pick it
    at = stamp(logical)
    planted = [
        # <root>/app/x/y/<STAMP>/manifest.json, its JSON a backup of app at that stamp.
        plant(store, backup_root.join(DB, "x", "y", at, "manifest.json"), manifest_for(DB, at, logical, real.data)),
        # <root>/app/x/app/<STAMP>/manifest.json: its last segments look like app's layout, under another root.
        plant(store, backup_root.join(DB, "x", DB, at, "manifest.json"), manifest_for(DB, at, logical, real.data)),
    ]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert [r.url for r in store.list_manifests(backup_root, database)] == [real.manifest]
    assert all(skipped(caplog, url) for url in planted)


def test_a_manifest_that_names_another_database_or_stamp_is_skipped_with_a_warning(store, backup_root, caplog):
    real = seed(store, backup_root, DB, 0)
    later = START + timedelta(hours=3)
    other_db = BackupLayout(backup_root, DB, stamp(later))
    other_stamp = BackupLayout(backup_root, DB, stamp(later + timedelta(hours=1)))
    planted = [
        # In app's place, but the JSON says it is a backup of `billing`.
        plant(store, other_db.manifest, manifest_for("billing", other_db.stamp, later, other_db.data)),
        # Another backup's manifest copied under a new stamp.
        plant(store, other_stamp.manifest, manifest_for(DB, real.stamp, START, real.data)),
    ]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert [r.url for r in store.list_manifests(backup_root, DB)] == [real.manifest]
    assert [r.url for r in store.list_manifests(backup_root)] == [real.manifest]
    assert all(skipped(caplog, url) for url in planted)


def test_listing_app_returns_only_app_and_listing_all_returns_each_database(store, backup_root, caplog):
    app = seed(store, backup_root, DB, 0)
    app2 = seed(store, backup_root, "app2", 1)
    app_latest = seed(store, backup_root, DB, 2)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert [r.url for r in store.list_manifests(backup_root, DB)] == [app.manifest, app_latest.manifest]
    assert [r.url for r in store.list_manifests(backup_root, "app2")] == [app2.manifest]
    assert [r.url for r in store.list_manifests(backup_root)] == [app.manifest, app2.manifest, app_latest.manifest]
    assert not [r for r in caplog.records if r.name == LOGGER], "well-placed backups were warned about"
