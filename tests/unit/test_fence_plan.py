"""The pure fencing decision: what is left to do to fence (or unfence) a server in a given state.

The property tests apply a plan to the state it was made from (as a server would) and check that nothing is left
to do afterwards, and that a fenced server plans nothing: fencing twice is a no-op (F23)."""

from __future__ import annotations

import itertools

import pytest

from multicloud_dr.connections import Endpoint
from multicloud_dr.failover.fence import (
    KILL_SESSION,
    LOCK_ACCOUNT,
    READ_ONLY_OFF,
    READ_ONLY_ON,
    SUPER_READ_ONLY_OFF,
    SUPER_READ_ONLY_ON,
    UNLOCK_ACCOUNT,
    Account,
    FenceResult,
    Observed,
    Session,
    plan_fence,
    plan_unfence,
    probe_reachable,
)

APP = "petclinic_app"


def apply(observed: Observed, plan) -> Observed:
    """What a MySQL-like server holds after running `plan` in order, with its rules: under super_read_only no
    account may be changed; read_only OFF also turns super_read_only OFF; super_read_only ON also turns read_only
    ON."""
    read_only, super_ro = observed.read_only, observed.super_read_only
    accounts = {(a.user, a.host): a.locked for a in observed.accounts}
    sessions = list(observed.sessions)
    for action in plan:
        if action.kind in (LOCK_ACCOUNT, UNLOCK_ACCOUNT):
            assert not super_ro, "an account changed under super_read_only: the server refuses it"
            accounts[(action.account.user, action.account.host)] = action.kind == LOCK_ACCOUNT
        elif action.kind == KILL_SESSION:
            sessions.remove(action.session)
        elif action.kind == READ_ONLY_ON:
            read_only = True
        elif action.kind == READ_ONLY_OFF:
            read_only, super_ro = False, (False if super_ro is not None else None)
        elif action.kind == SUPER_READ_ONLY_ON:
            read_only, super_ro = True, True
        elif action.kind == SUPER_READ_ONLY_OFF:
            super_ro = False
    return Observed(read_only, super_ro, tuple(Account(u, h, locked) for (u, h), locked in accounts.items()),
                    tuple(sessions))


def all_states():
    """Every combination of flags, lock states of two accounts and open sessions (MariaDB: no super_read_only)."""
    for read_only, super_ro, lock_a, lock_b, n_sessions in itertools.product(
            (False, True), (None, False, True), (False, True), (False, True), (0, 2)):
        if super_ro and not read_only:
            continue   # not a state a server can be in: super_read_only implies read_only
        accounts = (Account(APP, "127.0.0.1", lock_a), Account(APP, "localhost", lock_b))
        yield Observed(read_only, super_ro, accounts, tuple(Session(10 + i, APP) for i in range(n_sessions)))


@pytest.mark.parametrize("observed", list(all_states()))
def test_a_fence_plan_leaves_the_server_fenced_and_a_second_fence_plans_nothing(observed):
    after = apply(observed, plan_fence(observed))
    assert after.read_only and all(a.locked for a in after.accounts) and not after.sessions
    assert after.super_read_only in (None, True)        # where the server has it, it ends ON
    assert plan_fence(after) == []


@pytest.mark.parametrize("observed", list(all_states()))
def test_an_unfence_plan_leaves_the_server_writable_and_the_accounts_open(observed):
    after = apply(observed, plan_unfence(observed))
    assert not after.read_only and not after.super_read_only and not any(a.locked for a in after.accounts)
    assert plan_unfence(after) == []


def test_accounts_are_locked_and_sessions_ended_before_the_server_turns_read_only():
    """No new app session may start while its old ones are ended, and none is left holding a lock that
    read_only would wait for."""
    observed = Observed(False, None, (Account(APP, "%", False),), (Session(7, APP),))
    assert [a.kind for a in plan_fence(observed)] == [LOCK_ACCOUNT, KILL_SESSION, READ_ONLY_ON]
    assert [a.describe() for a in plan_fence(observed)] == [
        "lock account 'petclinic_app'@'%'", "end session 7 of petclinic_app", "read_only ON"]


def test_a_fenced_server_with_one_unlocked_account_keeps_read_only_while_super_read_only_is_lifted():
    observed = Observed(True, True, (Account(APP, "%", False),), ())
    plan = plan_fence(observed)
    assert [a.kind for a in plan] == [SUPER_READ_ONLY_OFF, LOCK_ACCOUNT, SUPER_READ_ONLY_ON]
    assert READ_ONLY_OFF not in [a.kind for a in plan]


def test_postgres_roles_read_as_names():
    observed = Observed(False, None, (Account("app", None, False),), (Session(4242, "app"),))
    assert [a.describe() for a in plan_fence(observed)] == ["lock account app", "end session 4242 of app",
                                                            "read_only ON"]


def test_an_unreachable_fence_is_pending_and_json_able():
    result = FenceResult("mysql", "mysql_primary", reachable=False, reason="refused")
    assert result.pending and result.to_dict()["pending"] is True and not result.verified
    assert not FenceResult("mysql", "mysql_primary", operation="unfence", reachable=False).pending


def test_a_closed_port_is_unreachable_at_once_without_raising():
    import socket

    with socket.socket() as sock:          # a port that was free a moment ago, with nothing listening now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reachable, reason = probe_reachable(Endpoint("mysql", "127.0.0.1", port), timeout=2)
    assert not reachable and "refused" in reason
