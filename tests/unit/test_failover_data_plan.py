"""The failover's data plan (failover/data.py plan_data): per database, promote the replica or restore the newest
verified backup into the DR server, by mode, measured lag and the topology's failover_method; drills restore into a
scratch database and never promote; a plan that cannot be carried out is refused with one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multicloud_dr.config import DatabaseConfig, load_topology
from multicloud_dr.exceptions import ConfigError, InputError
from multicloud_dr.failover.data import (
    DEFAULT_DRILL_SUFFIX,
    DataPlan,
    drop_drill_data,
    lag_check_name,
    plan_data,
    run_data,
)

BASE = load_topology()
RPO = 600
LOCATION = "wasb://dr-backups/mysql"


def topology(*databases: DatabaseConfig):
    return BASE.model_copy(update={"databases": list(databases),
                                   "targets": BASE.targets.model_copy(update={"rpo_seconds": RPO}),
                                   "backup": BASE.backup.model_copy(update={"location": LOCATION})})


def mysql(name="shop", **changes) -> DatabaseConfig:
    fields = {"name": name, "engine": "mysql", "primary_conn_id": "mysql_primary", "replica_conn_id": "mysql_replica",
              "dr_conn_id": "mysql_dr"} | changes
    return DatabaseConfig(**fields)


def postgres(name="shop", **changes) -> DatabaseConfig:
    fields = {"name": name, "engine": "postgres", "primary_conn_id": "postgres_primary",
              "replica_conn_id": "postgres_standby"} | changes
    return DatabaseConfig(**fields)


def only(plans: list[DataPlan]) -> DataPlan:
    assert len(plans) == 1
    return plans[0]


def test_planned_promotes_the_replica_whatever_its_lag():
    plan = only(plan_data(topology(mysql()), "planned", {"mysql_replica/shop": None}))
    assert plan == DataPlan("shop", "mysql", "promote", "mysql_replica", "mysql_replica", "shop", plan.reason)
    assert "nothing is lost" in plan.reason


@pytest.mark.parametrize("lag", [0.0, 12.5, float(RPO)])
def test_emergency_promotes_a_replica_within_the_rpo_target(lag):
    plan = only(plan_data(topology(mysql()), "emergency", {"mysql_replica/shop": lag}))
    assert (plan.method, plan.target, plan.target_database) == ("promote", "mysql_replica", "shop")
    assert f"{lag:.1f} s behind" in plan.reason


@pytest.mark.parametrize(("lags", "words"), [
    ({"mysql_replica/shop": None}, "unknown (stopped or unreachable)"),   # a stopped replica: never zero
    ({}, "unknown"),                                                        # not measured at all
    ({"mysql_replica/shop": RPO + 0.5}, f"{RPO + 0.5:.1f} s"),
])
def test_emergency_restores_the_newest_backup_when_the_lag_is_unknown_or_too_large(lags, words):
    plan = only(plan_data(topology(mysql()), "emergency", lags))
    assert plan == DataPlan("shop", "mysql", "restore", LOCATION, "mysql_dr", "shop", plan.reason)
    assert words in plan.reason and "not within the RPO target" in plan.reason


def test_emergency_without_a_replica_restores():
    plan = only(plan_data(topology(mysql(replica_conn_id=None)), "emergency", {}))
    assert (plan.method, plan.source, plan.target) == ("restore", LOCATION, "mysql_dr")


def test_a_database_without_a_dr_server_is_always_promoted():
    for db in (mysql(dr_conn_id=None), postgres(), postgres(dr_conn_id="mysql_dr")):
        plan = only(plan_data(topology(db), "emergency", {lag_check_name(db): None}))
        assert (plan.method, plan.source, plan.target) == ("promote", db.replica_conn_id, db.replica_conn_id)
        assert "unknown" in plan.reason        # the gates judge the lag; the plan says what it was


def test_the_lag_is_looked_up_by_the_replication_check_name_of_each_engine():
    plans = plan_data(topology(mysql(), postgres()), "emergency",
                      {"mysql_replica/shop": 1.0, "postgres_standby/shop": 2.0})
    assert [(p.engine, p.method) for p in plans] == [("mysql", "promote"), ("postgres", "promote")]
    assert "1.0 s behind" in plans[0].reason and "2.0 s" in plans[1].reason


def test_explicit_methods_win_over_the_lag_and_the_mode():
    lags = {"mysql_replica/shop": 0.0}
    assert only(plan_data(topology(mysql(failover_method="restore")), "planned", lags)).method == "restore"
    plan = only(plan_data(topology(mysql(failover_method="promote")), "emergency", {"mysql_replica/shop": None}))
    assert plan.method == "promote" and plan.reason == "failover_method: promote in the topology"


@pytest.mark.parametrize(("db", "mode", "words"), [
    (mysql(replica_conn_id=None, dr_conn_id=None), "emergency", "neither a replica_conn_id"),
    (mysql(replica_conn_id=None), "planned", "a planned failover promotes the replica"),
    (mysql(replica_conn_id=None, failover_method="promote"), "emergency", "promote needs a replica_conn_id"),
    (mysql(dr_conn_id=None, failover_method="restore"), "emergency", "restore needs a dr_conn_id"),
    (postgres(failover_method="restore", dr_conn_id="mysql_dr"), "emergency", "backups are MySQL dumps"),
    (postgres(replica_conn_id=None), "planned", "neither a replica_conn_id"),
])
def test_an_impossible_plan_is_refused_with_one_line(db, mode, words):
    with pytest.raises(ConfigError, match=words) as err:
        plan_data(topology(db), mode, {})
    assert "\n" not in str(err.value)


def test_an_unknown_mode_is_refused():
    with pytest.raises(InputError, match="use one of planned, emergency, drill"):
        plan_data(topology(mysql()), "sometime", {})


def test_a_drill_restores_into_the_scratch_database_and_never_promotes():
    dbs = (mysql(failover_method="promote"), mysql("nodr", dr_conn_id=None), postgres())
    for args in (("emergency", {"mysql_replica/shop": 0.0}), ("drill", {})):
        shop, nodr, pg = plan_data(topology(*dbs), args[0], args[1], drill=True)
        assert shop == DataPlan("shop", "mysql", "restore", LOCATION, "mysql_dr", "shop" + DEFAULT_DRILL_SUFFIX,
                                shop.reason)
        assert (nodr.method, nodr.target, nodr.target_database) == ("skip", None, None)
        assert "no dr_conn_id" in nodr.reason
        assert pg.method == "skip" and "MySQL dumps" in pg.reason


def test_a_drill_database_that_would_be_another_topology_database_or_too_long_is_refused():
    with pytest.raises(ConfigError, match="is another topology database"):
        plan_data(topology(mysql(), mysql("shop" + DEFAULT_DRILL_SUFFIX)), "planned", {}, drill=True)
    with pytest.raises(ConfigError, match="longer than 64"):
        plan_data(topology(mysql("x" * 60)), "planned", {}, drill=True)


def test_the_plan_is_json_able_and_rebuilt_from_its_dict():
    plan = only(plan_data(topology(mysql()), "emergency", {}))
    assert DataPlan(**plan.to_dict()) == plan


@pytest.mark.parametrize("name", ["shop", "shop_drill_x", DEFAULT_DRILL_SUFFIX])
def test_teardown_refuses_anything_but_a_drill_database_before_connecting(name):
    plan = DataPlan("shop", "mysql", "restore", LOCATION, "no_such_connection", name, "drill")
    with pytest.raises(InputError, match="not a drill's scratch database"):
        drop_drill_data(topology(mysql()), plan)


def test_teardown_refuses_a_topology_database_even_with_the_suffix():
    live = mysql("shop" + DEFAULT_DRILL_SUFFIX)
    plan = DataPlan(live.name, "mysql", "restore", LOCATION, "no_such_connection", live.name, "drill")
    with pytest.raises(InputError, match="refusing to drop it"):
        drop_drill_data(topology(mysql(), live), plan)


def test_teardown_of_a_skipped_database_does_nothing():
    plan = DataPlan("shop", "postgres", "skip", None, None, None, "drill: nothing to restore")
    assert drop_drill_data(topology(postgres()), plan)["dropped"] == []


def test_a_planned_promotion_without_a_reachable_primary_is_refused_before_anything_is_touched():
    plan = DataPlan("shop", "mysql", "promote", "no_such_connection", "no_such_connection", "shop", "planned")
    with pytest.raises(InputError, match="run an emergency failover instead"):
        run_data(topology(mysql()), plan, mode="planned", primary_reachable=False)


def test_a_plan_for_a_database_the_topology_does_not_have_is_refused():
    plan = DataPlan("other", "mysql", "restore", LOCATION, "mysql_dr", "other", "x")
    with pytest.raises(ConfigError, match="plan the data step again"):
        run_data(topology(mysql()), plan, mode="emergency", primary_reachable=False)


def test_a_skipped_database_is_reported_as_nothing_to_do():
    plan = DataPlan("shop", "postgres", "skip", None, None, None, "drill: nothing to restore")
    outcome = run_data(topology(postgres()), plan, mode="drill", primary_reachable=True)
    assert outcome["already"] and outcome["method"] == "skip" and outcome["detail"] == plan.reason


@given(lag=st.one_of(st.none(), st.floats(0, 10 * RPO)), mode=st.sampled_from(["planned", "emergency"]),
       replica=st.booleans(), dr=st.booleans())
def test_auto_promotes_exactly_when_planned_or_within_the_rpo_and_restores_otherwise(lag, mode, replica, dr):
    db = mysql(replica_conn_id="mysql_replica" if replica else None, dr_conn_id="mysql_dr" if dr else None)
    try:
        plan = only(plan_data(topology(db), mode, {"mysql_replica/shop": lag}))
    except ConfigError:
        assert not replica and (not dr or mode == "planned")
        return
    if not dr:
        assert plan.method == "promote"
    elif not replica:
        assert plan.method == "restore"
    else:
        within = mode == "planned" or (lag is not None and lag <= RPO)
        assert plan.method == ("promote" if within else "restore")
    assert plan.target == (db.replica_conn_id if plan.method == "promote" else db.dr_conn_id)
