"""What a failover run is asked to do (the dr_failover DAG's Params, `drctl failover`'s options), validated, and
who may approve it.

F31 (the same person triggers and approves a production failover or destroy): in an environment that needs
four eyes (the topology's terraform.approval_environments: production and dr by default), the approver must
not be the user who triggered the run; the refusal says another approver is needed, and the report records who
approved. A drill may be pre-approved by a Param, which the report records as such.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from multicloud_dr.config import SITES
from multicloud_dr.exceptions import InputError

Mode = Literal["planned", "emergency", "drill"]


class FailoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_site: Literal["primary", "dr"] = "dr"
    mode: Mode = "planned"
    dry_run: bool = False
    force: bool = False
    reason: str | None = None
    pre_approved: bool = False          # drills only: the report records "pre-approved by the run's Params"

    @model_validator(mode="after")
    def _rules(self) -> FailoverRequest:
        if self.force and not (self.reason and self.reason.strip()):
            raise ValueError("force needs a reason (it is recorded in the report)")
        if self.pre_approved and self.mode != "drill":
            raise ValueError("only a drill may be pre-approved; a planned or emergency failover needs an approver")
        return self

    @classmethod
    def parse(cls, params: dict) -> FailoverRequest:
        """From the DAG's Params or drctl's options; bad input is one line that says what to fix."""
        try:
            return cls.model_validate(params)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            raise InputError(f"failover {where}: {first['msg']} (target_site: {' or '.join(SITES)}; "
                             f"mode: planned, emergency or drill)") from None


def check_approver(environment: str, four_eyes: list[str], triggered_by: str | None, approved_by: str) -> str:
    """The approver's name if they may approve; InputError if not (F31)."""
    if not approved_by or not approved_by.strip():
        raise InputError("an approval needs the approver's name")
    if environment in four_eyes and triggered_by and approved_by.strip().lower() == triggered_by.strip().lower():
        raise InputError(f"{approved_by} triggered this failover of {environment} and cannot approve it too: "
                         f"{environment} needs a second person (four eyes); ask another approver")
    return approved_by.strip()
