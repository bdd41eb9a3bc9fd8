"""The failover's request (Params) and who may approve it (F31)."""

from __future__ import annotations

import pytest

from multicloud_dr.exceptions import InputError
from multicloud_dr.failover.request import FailoverRequest, check_approver


def test_defaults_and_a_valid_emergency_request():
    assert FailoverRequest.parse({}).mode == "planned"
    forced = FailoverRequest.parse({"mode": "emergency", "force": True, "reason": "region down"})
    assert forced.force and forced.reason == "region down" and forced.target_site == "dr"


@pytest.mark.parametrize(("params", "words"), [
    ({"target_site": "moon"}, "target_site"),
    ({"mode": "yolo"}, "mode"),
    ({"force": True}, "force needs a reason"),
    ({"pre_approved": True, "mode": "emergency"}, "only a drill may be pre-approved"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_params_are_one_line_that_says_what_to_fix(params, words):
    with pytest.raises(InputError) as err:
        FailoverRequest.parse(params)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_the_trigger_cannot_approve_a_production_failover_but_another_person_can():
    with pytest.raises(InputError, match=r"cannot approve it too.*ask another approver"):
        check_approver("production", ["production", "dr"], "alice", "Alice ")
    assert check_approver("production", ["production", "dr"], "alice", "bob") == "bob"
    assert check_approver("staging", ["production", "dr"], "alice", "alice") == "alice"   # no four eyes there
    with pytest.raises(InputError, match="approver's name"):
        check_approver("staging", [], "alice", " ")
