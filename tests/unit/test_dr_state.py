"""The DR state's pure transitions: who may act, what a retry does, and the invariants that any sequence of
transitions keeps (no server: the store is tested against Azurite in tests/integration/test_dr_state.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.exceptions import DrError, InputError
from multicloud_dr.state import HISTORY_LIMIT, DrState, StateHeldError

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def held(run_id: str = "run-1", kind: str = "failover", mode: str = "emergency") -> DrState:
    return DrState.new("lab").acquire(run_id, "airflow:dr_failover", kind, "dr", mode, at=at(0))


def test_a_failover_from_start_to_end():
    s = held()
    s = s.step_started("run-1", "fence", at=at(1))
    s = s.fence_confirmed("primary", "run-1", at=at(2))
    s = s.step_done("run-1", "fence", {"epoch": 1}, at=at(3))
    s = s.set_active("dr", "run-1", at=at(4))
    s = s.release("run-1", "succeeded", at=at(5))

    assert (s.active_site, s.fencing_epoch, s.fencing.site, s.fencing.status) == ("dr", 1, "primary", "confirmed")
    assert s.holder is None and s.operation is None
    entry = s.history[-1]
    assert (entry.run_id, entry.from_site, entry.to_site, entry.outcome) == ("run-1", "primary", "dr", "succeeded")
    assert entry.steps == (("fence", "done"),)
    assert (entry.started_at, entry.ended_at) == (at(0), at(5))


def test_another_run_is_refused_while_one_holds_the_state():
    s = held("run-1")
    with pytest.raises(StateHeldError, match="held by run 'run-1'"):
        s.acquire("run-2", "drctl:alice", "failover", "dr", "emergency", at=at(1))
    for act in (lambda: s.step_started("run-2", "fence", at=at(1)),
                lambda: s.step_done("run-2", "fence", at=at(1)),
                lambda: s.fence_pending("primary", "run-2", at=at(1)),
                lambda: s.set_active("dr", "run-2", at=at(1)),
                lambda: s.release("run-2", "failed", at=at(1))):
        with pytest.raises(StateHeldError):
            act()


def test_a_retry_of_the_same_run_resumes_without_changing_anything():
    s = held().step_started("run-1", "fence", at=at(1)).step_done("run-1", "fence", {"epoch": 1}, at=at(2))
    assert s.acquire("run-1", "airflow:dr_failover", "failover", "dr", "emergency", at=at(9)) is s
    # the done step stays done, with its first detail and end time
    again = s.step_started("run-1", "fence", at=at(9)).step_done("run-1", "fence", {"epoch": 2}, at=at(10))
    assert again == s
    assert again.operation.step("fence").detail == {"epoch": 1}


def test_a_retry_must_ask_for_the_same_operation():
    with pytest.raises(InputError, match="resume it with the same parameters"):
        held().acquire("run-1", "airflow:dr_failover", "failback", "primary", "planned", at=at(1))


def test_a_failed_step_runs_again_on_retry():
    s = held().step_started("run-1", "data", at=at(1)).step_failed("run-1", "data", "replica stopped", at=at(2))
    s = s.step_started("run-1", "data", at=at(3))
    step = s.operation.step("data")
    assert (step.status, step.started_at, step.ended_at) == ("running", at(3), None)


def test_fencing_bumps_the_epoch_exactly_once():
    s = held().fence_pending("primary", "run-1", at=at(1))
    assert s.fencing_epoch == 0 and s.fencing.status == "pending"
    s = s.fence_confirmed("primary", "run-1", at=at(2))
    assert s.fence_confirmed("primary", "run-1", at=at(3)) is s
    assert s.fence_pending("primary", "run-1", at=at(3)) is s
    assert s.fencing_epoch == 1


def test_a_returning_primary_is_fenced_by_a_run_that_does_not_hold_the_state():
    s = held().fence_pending("primary", "run-1", at=at(1)).set_active("dr", "run-1", at=at(2))
    s = s.fence_confirmed("primary", None, at=at(60))       # replication_health saw it come back
    assert (s.fencing.status, s.fencing_epoch, s.holder.run_id) == ("confirmed", 1, "run-1")
    # but nobody but the holder starts a fencing
    with pytest.raises(StateHeldError):
        held().fence_confirmed("primary", None, at=at(1))


def test_the_target_site_is_never_fenced():
    with pytest.raises(InputError, match="no writable database"):
        held().fence_confirmed("dr", "run-1", at=at(1))


def test_the_active_site_moves_only_after_the_old_one_is_fenced():
    with pytest.raises(InputError, match="fence it first"):
        held().set_active("dr", "run-1", at=at(1))
    with pytest.raises(InputError, match="never changes the active site"):
        held(kind="drill", mode="drill").set_active("dr", "run-1", at=at(1))


def test_unfencing_the_site_that_is_not_active_is_refused():
    s = held().fence_confirmed("primary", "run-1", at=at(1)).set_active("dr", "run-1", at=at(2))
    with pytest.raises(InputError, match="two writable databases"):
        s.unfence("primary", "run-1", at=at(3))
    # an aborted failover (primary still active) gives the primary back its writes
    aborted = held().fence_confirmed("primary", "run-1", at=at(1)).unfence("primary", "run-1", at=at(2))
    assert aborted.fencing.status == "none" and aborted.fencing_epoch == 1


def test_release_is_idempotent_and_force_release_is_recorded():
    s = held().release("run-1", "failed", at=at(1))
    assert s.release("run-1", "failed", at=at(2)) is s
    stuck = held("dead-run")
    freed = stuck.force_release("drctl:bob", "worker lost with the run", at=at(5))
    entry = freed.history[-1]
    assert freed.holder is None
    assert (entry.run_id, entry.outcome, entry.released_by, entry.reason) == (
        "dead-run", "force_released", "drctl:bob", "worker lost with the run")
    assert freed.force_release("drctl:bob", "again", at=at(6)) is freed
    with pytest.raises(InputError, match="reason"):
        stuck.force_release("drctl:bob", " ", at=at(5))


def test_history_is_bounded():
    s = DrState.new("lab")
    for i in range(HISTORY_LIMIT + 5):
        s = s.acquire(f"r{i}", "drctl", "drill", "dr", "drill", at=at(i)).release(f"r{i}", "succeeded", at=at(i))
    assert len(s.history) == HISTORY_LIMIT
    assert s.history[0].run_id == "r5" and s.history[-1].run_id == f"r{HISTORY_LIMIT + 4}"


def test_a_naive_time_is_refused():
    with pytest.raises(InputError, match="time zone"):
        DrState.new("lab").acquire("r", "drctl", "failover", "dr", "planned", at=datetime(2025, 1, 1))


def test_a_step_detail_must_be_json():
    with pytest.raises(InputError, match="not JSON"):
        held().step_done("run-1", "fence", {"when": datetime.now(UTC)}, at=at(1))


@pytest.mark.parametrize("raw, problem", [
    (b"not json", "is not JSON"),
    (b'{"terraform_version": "1.9"}', "not a DR state of multicloud-dr"),
    (b'[1, 2]', "not a DR state of multicloud-dr"),
])
def test_foreign_content_is_an_input_error(raw, problem):
    with pytest.raises(InputError, match=problem) as info:
        DrState.parse(raw, "wasb://dr-backups/state/lab.json")
    assert "\n" not in str(info.value) and "wasb://dr-backups/state/lab.json" in str(info.value)


@pytest.mark.parametrize("change, problem", [
    ({"version": 7}, "format version 7"),
    ({"active_site": "mars"}, "active_site is 'mars'"),
    ({"fencing_epoch": -1}, "negative"),
    ({"fencing_epoch": True}, "fencing_epoch is True"),
    ({"holder": None}, "both set or both null"),
    ({"fencing": {"site": "primary", "status": "none", "at": None}}, "fencing is 'none' for site 'primary'"),
    ({"history": [{"kind": "failover"}]}, "history[0] has no"),
])
def test_a_malformed_state_is_an_input_error(change, problem):
    data = {**held().to_dict(), **change}
    with pytest.raises(InputError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        DrState.from_dict(data)


def test_round_trip_through_json():
    s = held().step_started("run-1", "fence", at=at(1)).step_done("run-1", "fence", {"epoch": 1}, at=at(2))
    assert DrState.parse(s.dump()) == s
    assert "updated_at" not in json.loads(s.dump())    # the server's Last-Modified is the only updated_at


# --- properties ---------------------------------------------------------------------------------------------

# "holder": whichever run holds the state at that point, so that sequences get past acquire often
RUNS = st.sampled_from(["holder", "holder", "holder", "r1", "r2"])
# "active"/"other": relative to the state at that point (the site a failover leaves, the one it goes to)
SITES = st.sampled_from(["primary", "dr", "active", "other", "other"])
STEPS = st.sampled_from(["fence", "data", "app", "traffic"])

ACTIONS = st.one_of(
    st.tuples(st.just("acquire"), RUNS, st.sampled_from([("failover", "emergency"), ("failover", "planned"),
                                                         ("failback", "planned"), ("drill", "drill")]), SITES),
    st.tuples(st.just("step_started"), RUNS, STEPS),
    st.tuples(st.just("step_done"), RUNS, STEPS),
    st.tuples(st.just("step_failed"), RUNS, STEPS),
    # twice each: the steps that need a holder, a fencing and the right site are the ones worth reaching
    *[st.tuples(st.just("fence_pending"), RUNS, SITES),
      st.tuples(st.just("fence_confirmed"), st.one_of(RUNS, st.none()), SITES),
      st.tuples(st.just("unfence"), RUNS, SITES),
      st.tuples(st.just("set_active"), RUNS, SITES)] * 2,
    st.tuples(st.just("release"), RUNS, st.sampled_from(["succeeded", "failed", "cancelled"])),
    st.tuples(st.just("force_release"), st.just("drctl:ops"), st.just("stuck")),
)


def resolve(s: DrState, action: tuple) -> tuple:
    other = "dr" if s.active_site == "primary" else "primary"
    sites = {"active": s.active_site, "other": other}
    who = (s.holder.run_id if s.holder else "r1") if action[1] == "holder" else action[1]
    return (action[0], who, *(sites.get(a, a) if isinstance(a, str) else a for a in action[2:]))


def apply(s: DrState, action: tuple, when: datetime) -> DrState:
    name, who, arg = action[0], action[1], action[2]
    if name == "acquire":
        (kind, mode), target = arg, action[3]
        return s.acquire(who, "test", kind, target, mode, at=when)
    if name in ("step_started",):
        return s.step_started(who, arg, at=when)
    if name in ("step_done", "step_failed"):
        return getattr(s, name)(who, arg, {"n": 1}, at=when)
    if name in ("fence_pending", "fence_confirmed", "unfence", "set_active"):
        return getattr(s, name)(arg, who, at=when)
    if name == "release":
        return s.release(who, arg, at=when)
    return s.force_release(who, arg, at=when)


@settings(max_examples=500, deadline=None)
@given(st.lists(ACTIONS, min_size=5, max_size=60))
def test_any_sequence_of_transitions_keeps_the_invariants(actions):
    s = DrState.new("lab")
    for i, action in enumerate(actions):
        before = s
        action = resolve(s, action)
        try:
            s = apply(s, action, at(i))
        except DrError:
            continue    # refused: the state is a value, so nothing changed
        name, who = action[0], action[1]
        # at most one holder, and an operation exactly when there is one
        assert (s.holder is None) == (s.operation is None)
        # the epoch never decreases, and moves by one only on a confirmed fencing
        assert s.fencing_epoch - before.fencing_epoch in (0, 1)
        if s.fencing_epoch != before.fencing_epoch:
            assert name == "fence_confirmed" and s.fencing.status == "confirmed"
        # only the holder changes the active site, to its target, after fencing the site it leaves
        if s.active_site != before.active_site:
            assert name == "set_active" and before.is_held_by(who)
            assert before.operation.kind != "drill" and before.operation.target_site == s.active_site
            assert before.fencing.site == before.active_site and before.fencing.status != "none"
        # a step done stays done while the same run holds the state
        if before.operation is not None and s.operation is not None and before.holder == s.holder:
            for step in before.operation.steps:
                if step.status == "done":
                    assert s.operation.step(step.name) == step
        # the site that is not active is never left unfenced once it had been fenced
        if before.fencing.site != before.active_site and before.fencing.status != "none":
            assert s.fencing.status != "none"
        # a non-holder changes nothing but a pending fencing or a force release
        if name not in ("acquire", "force_release", "fence_confirmed") and not before.is_held_by(who):
            assert s == before
        assert len(s.history) <= HISTORY_LIMIT
        assert DrState.parse(s.dump()) == s
