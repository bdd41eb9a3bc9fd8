"""The DR state in the lab's Azurite: created once, changed only by compare-and-set, so that of two runs that
read the same version exactly one writes and the other stops with nothing written."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.exceptions import InputError, StateConflictError
from multicloud_dr.state import DrStateStore, StateHeldError

CONTAINER = "dr-backups"


@pytest.fixture
def location(blob_service, delete_blob_prefix):
    root = StorageUrl("wasb", CONTAINER, f"test-state-{uuid.uuid4().hex[:10]}")
    yield str(root)
    delete_blob_prefix(blob_service, root)


@pytest.fixture
def store(location) -> DrStateStore:
    return DrStateStore("azure_blob_dr", location, "lab")       # through the connection layer


def acquire(run_id: str):
    return lambda s, now: s.acquire(run_id, f"test:{run_id}", "failover", "dr", "emergency", at=now)


def stored(blob_service, store: DrStateStore) -> dict:
    return json.loads(blob_service.get_blob_client(store.url.bucket, store.url.path).download_blob().readall())


def test_the_first_write_creates_and_a_second_one_keeps_what_is_there(store, blob_service):
    assert store.read() == (None, None)
    state, etag = store.create_if_absent(active_site="dr")
    assert store.url.path.endswith("/lab.json")
    assert (state.active_site, stored(blob_service, store)["active_site"]) == ("dr", "dr")

    again, again_etag = store.create_if_absent(active_site="primary")
    assert (again.active_site, again_etag) == ("dr", etag)


def test_of_two_runs_that_read_the_same_version_exactly_one_wins(store, blob_service):
    _, etag = store.create_if_absent()
    other = DrStateStore(blob_service, str(store.url).rsplit("/", 1)[0], "lab")   # a second process, own client

    won, _ = store.update(acquire("airflow-run"), etag)
    with pytest.raises(StateConflictError, match="re-read"):
        other.update(acquire("drctl-run"), etag)

    body = stored(blob_service, store)
    assert body["holder"]["run_id"] == "airflow-run" == won.holder.run_id
    # and when the loser re-reads, the state tells it to stop
    _, fresh = other.read()
    with pytest.raises(StateHeldError, match="held by run 'airflow-run'"):
        other.update(acquire("drctl-run"), fresh)
    assert stored(blob_service, store)["holder"]["run_id"] == "airflow-run"


def test_a_retry_of_the_same_run_resumes(store):
    _, etag = store.create_if_absent()
    for change in (acquire("run-1"),
                   lambda s, now: s.step_started("run-1", "fence", at=now),
                   lambda s, now: s.fence_confirmed("primary", "run-1", at=now),
                   lambda s, now: s.step_done("run-1", "fence", {"epoch": s.fencing_epoch}, at=now)):
        _, etag = store.update(change, etag)

    # the worker died here; the retry reads the state again and redoes what it would have done
    retry_state, retry_etag = store.read()
    for change in (acquire("run-1"),
                   lambda s, now: s.step_started("run-1", "fence", at=now),
                   lambda s, now: s.fence_confirmed("primary", "run-1", at=now),
                   lambda s, now: s.step_done("run-1", "fence", {"epoch": 99}, at=now)):
        retry_state, retry_etag = store.update(change, retry_etag)
    assert retry_etag == etag                              # nothing was written again
    assert retry_state.fencing_epoch == 1
    assert retry_state.operation.step("fence").detail == {"epoch": 1}


def test_updated_at_and_step_times_come_from_the_storage_server(store, blob_service):
    # The library never reads this worker's clock: the holder's start is the Date of the server's answer to the
    # read before the write, and updated_at the blob's Last-Modified.
    _, etag = store.create_if_absent()
    state, etag = store.update(acquire("run-1"), etag)

    props = blob_service.get_blob_client(store.url.bucket, store.url.path).get_blob_properties()
    assert state.updated_at == props.last_modified
    assert store.read()[0].updated_at == props.last_modified
    assert "updated_at" not in stored(blob_service, store)
    assert abs((state.holder.started_at - props.last_modified).total_seconds()) <= 2
    assert abs((state.holder.started_at - datetime.now(UTC)).total_seconds()) < 60


def test_a_malformed_blob_is_an_input_error(store, blob_service):
    blob = blob_service.get_blob_client(store.url.bucket, store.url.path)
    blob.upload_blob(b'{"active_site": "primary"}')
    with pytest.raises(InputError, match="not a valid DR state") as info:
        store.read()
    assert str(store.url) in str(info.value) and "\n" not in str(info.value)
    # and nothing overwrites it
    with pytest.raises(InputError):
        store.create_if_absent()
    assert blob.download_blob().readall() == b'{"active_site": "primary"}'


def test_another_environments_state_is_refused(store, blob_service):
    store.create_if_absent()
    staging = DrStateStore(blob_service, str(store.url).rsplit("/", 1)[0], "staging")
    blob_service.get_blob_client(staging.url.bucket, staging.url.path).upload_blob(
        blob_service.get_blob_client(store.url.bucket, store.url.path).download_blob().readall())
    with pytest.raises(InputError, match="environment 'lab', not 'staging'"):
        staging.read()


def test_a_write_between_the_read_and_the_upload_makes_the_upload_fail(store, blob_service):
    # The tightest race: both runs downloaded the same version; the other one's upload lands while this one is
    # still computing its change. This one's If-Match upload must fail and leave the other's write in place.
    _, etag = store.create_if_absent()
    other = DrStateStore(blob_service, str(store.url).rsplit("/", 1)[0], "lab")

    def slow_change(state, now):
        other.update(acquire("drctl-run"), etag)
        return acquire("airflow-run")(state, now)

    with pytest.raises(StateConflictError):
        store.update(slow_change, etag)
    assert stored(blob_service, store)["holder"]["run_id"] == "drctl-run"
