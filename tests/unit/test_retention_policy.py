"""Retention's policy validation and its pure decision (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multicloud_dr.backup.retention import Candidate, RetentionPolicy, decide, protected_keys
from multicloud_dr.exceptions import ConfigError

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def backup(n: int, days_old: float, status: str = "verified", logical_days_old: float | None = None) -> Candidate:
    logical = NOW - timedelta(days=days_old if logical_days_old is None else logical_days_old)
    return Candidate(key=f"wasb://c/p/db/{n:04d}/manifest.json", backup_id=f"db/{n:04d}", logical_date=logical,
                     stored_at=NOW - timedelta(days=days_old), status=status, bytes=1000 * n)


def actions(decisions) -> dict[str, str]:
    return {d.backup_id: d.action for d in decisions}


# --- policy ---------------------------------------------------------------------------------------

def test_default_policy_keeps_30_days_and_the_newest_verified():
    policy = RetentionPolicy()
    assert (policy.keep_days, policy.min_keep) == (30, 1)


def test_policy_that_keeps_nothing_is_refused_with_what_to_set():
    with pytest.raises(ConfigError) as err:
        RetentionPolicy(keep_days=0, min_keep=0)
    message = str(err.value)
    assert "keep nothing" in message and "keep_days" in message and "min_keep" in message


def test_min_keep_below_one_is_refused_even_with_keep_days():
    with pytest.raises(ConfigError, match="min_keep to at least 1"):
        RetentionPolicy(keep_days=30, min_keep=0)


@pytest.mark.parametrize("kwargs", [{"keep_days": -1}, {"min_keep": -1}, {"keep_days": -5, "min_keep": 3}])
def test_negative_values_are_refused(kwargs):
    with pytest.raises(ConfigError, match="must not be negative"):
        RetentionPolicy(**kwargs)


@pytest.mark.parametrize("kwargs", [{"keep_days": 1.5}, {"keep_days": "30"}, {"min_keep": True}])
def test_non_integers_are_refused(kwargs):
    with pytest.raises(ConfigError, match="whole number"):
        RetentionPolicy(**kwargs)


def test_keep_days_zero_with_min_keep_is_allowed():
    assert RetentionPolicy(keep_days=0, min_keep=2).min_keep == 2


# --- decision examples ----------------------------------------------------------------------------

def test_all_backups_past_the_window_keep_the_newest_verified_f11():
    backups = [backup(1, 60), backup(2, 50), backup(3, 40, "failed"), backup(4, 35, "unverified")]
    got = actions(decide(backups, NOW, RetentionPolicy()))
    assert got == {"db/0001": "delete", "db/0002": "keep", "db/0003": "delete", "db/0004": "delete"}


def test_min_keep_protects_the_newest_n_verified():
    backups = [backup(1, 90), backup(2, 80), backup(3, 70), backup(4, 60, "failed")]
    got = actions(decide(backups, NOW, RetentionPolicy(keep_days=30, min_keep=2)))
    assert got == {"db/0001": "delete", "db/0002": "keep", "db/0003": "keep", "db/0004": "delete"}


def test_young_backups_are_kept_whatever_their_status():
    backups = [backup(1, 40), backup(2, 29.9, "failed"), backup(3, 1, "unverified")]
    decisions = decide(backups, NOW, RetentionPolicy())
    assert actions(decisions) == {"db/0001": "keep", "db/0002": "keep", "db/0003": "keep"}
    assert "younger than keep_days=30" in decisions[1].reason
    assert "newest verified" in decisions[0].reason


def test_leased_old_backup_is_skipped_and_said_so_f12():
    backups = [backup(1, 60), backup(2, 50), backup(3, 1)]
    decisions = decide(backups, NOW, RetentionPolicy(), leased={backups[0].key})
    assert actions(decisions) == {"db/0001": "skip", "db/0002": "delete", "db/0003": "keep"}
    assert decisions[0].reason.startswith("in use")


def test_newest_is_by_logical_date_like_restore_latest():
    # A backfill of an older logical date stored later is not "the newest".
    backups = [backup(1, 40, logical_days_old=45), backup(2, 35, logical_days_old=50)]
    assert actions(decide(backups, NOW, RetentionPolicy())) == {"db/0001": "keep", "db/0002": "delete"}


def test_decisions_come_oldest_first_with_ages():
    decisions = decide([backup(2, 5), backup(1, 10)], NOW, RetentionPolicy())
    assert [d.backup_id for d in decisions] == ["db/0001", "db/0002"]
    assert decisions[0].age_days == pytest.approx(10)
    assert decisions[0].to_dict()["age_days"] == 10.0


def test_naive_now_is_refused():
    with pytest.raises(ConfigError, match="aware"):
        decide([backup(1, 1)], NOW.replace(tzinfo=None), RetentionPolicy())


def test_no_backups_no_decisions():
    assert decide([], NOW, RetentionPolicy()) == []


# --- properties -----------------------------------------------------------------------------------

STATUSES = st.sampled_from(["verified", "unverified", "failed"])


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=0, max_value=12))
    backups = []
    for i in range(n):
        age = draw(st.floats(min_value=-2, max_value=400, allow_nan=False))
        logical_offset = draw(st.floats(min_value=0, max_value=3, allow_nan=False))
        backups.append(backup(i + 1, age, draw(STATUSES), logical_days_old=age + logical_offset))
    policy = RetentionPolicy(keep_days=draw(st.integers(min_value=0, max_value=60)),
                             min_keep=draw(st.integers(min_value=1, max_value=4)))
    leased = draw(st.sets(st.sampled_from([b.key for b in backups]))) if backups else set()
    return backups, policy, leased


def newest_verified(backups, count):
    verified = [b for b in backups if b.status == "verified"]
    verified.sort(key=lambda b: (b.logical_date, b.stored_at, b.key), reverse=True)
    return {b.key for b in verified[:count]}


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_newest_verified_never_deleted(scenario):
    backups, policy, leased = scenario
    deleted = {d.key for d in decide(backups, NOW, policy, leased) if d.action == "delete"}
    assert not deleted & newest_verified(backups, 1)
    assert not deleted & newest_verified(backups, policy.min_keep)
    assert set(protected_keys(backups, policy)) == newest_verified(backups, policy.min_keep)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_nothing_younger_than_keep_days_deleted(scenario):
    backups, policy, leased = scenario
    by_key = {b.key: b for b in backups}
    for d in decide(backups, NOW, policy, leased):
        if d.action == "delete":
            assert NOW - by_key[d.key].stored_at >= timedelta(days=policy.keep_days)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_leased_never_deleted(scenario):
    backups, policy, leased = scenario
    decisions = decide(backups, NOW, policy, leased)
    assert not {d.key for d in decisions if d.action == "delete"} & leased
    assert {d.key for d in decisions if d.action == "skip"} <= leased


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_one_decision_per_backup_and_deletes_are_exactly_the_expired(scenario):
    backups, policy, leased = scenario
    decisions = decide(backups, NOW, policy, leased)
    assert sorted(d.key for d in decisions) == sorted(b.key for b in backups)
    protected = newest_verified(backups, policy.min_keep)
    expired = {b.key for b in backups if NOW - b.stored_at >= timedelta(days=policy.keep_days)}
    assert {d.key for d in decisions if d.action == "delete"} == expired - protected - leased
