"""Who must approve a plan, what the approver is shown, and whether a recorded answer allows the apply.

- production and dr (the topology's `terraform.approval_environments`) need a human approval; so does any
  destroy (`terraform.confirm_destroy`), for which the approver must also type the environment's name;
- the approver sees the plan's counts per resource type and the saved plan's SHA-256; the apply step
  applies only the plan with that SHA-256;
- the answer is Airflow's HITL response: {"chosen_options": [...], "params_input": {...},
  "responded_by_user": {"id", "name"}, "responded_at"}.
"""

from __future__ import annotations

from typing import Any

from multicloud_dr.exceptions import InputError
from multicloud_dr.terraform.stacks import TerraformSettings

APPROVE = "Approve"
CONFIRM_PARAM = "confirm_environment"

# What comes after the plan (the DAG maps these to its tasks).
STOP, NEEDS_APPROVAL, NO_APPROVAL = "stop", "approve", "no_approval"


class ApprovalError(InputError):
    """The apply has no valid approval (rejected, missing, or a destroy confirmed with the wrong name)."""


def route_after_plan(plan: dict, settings: TerraformSettings) -> str:
    """STOP when there is nothing to apply (no changes, or action=plan); else whether a human must approve."""
    if plan["action"] == "plan" or not plan["changes"]:
        return STOP
    return NEEDS_APPROVAL if settings.approval_required(plan["environment"], plan["action"]) else NO_APPROVAL


def approval_text(plan: dict) -> str:
    """Markdown for the approval page: what the saved plan does (counts only: no values, they may be secret)."""
    destroy = plan["action"] == "destroy"
    lines = [f"### terraform {plan['action']} of `{plan['stack_label']}`", "", plan["summary_md"], "",
             f"Saved plan `{plan['plan_url']}`, SHA-256 `{plan['plan_sha256']}`: **Approve** applies exactly this "
             f"plan, nothing planned later."]
    if destroy:
        lines += ["", f"**This destroys every resource of the stack.** To confirm, type `{plan['environment']}` in "
                      f"*{CONFIRM_PARAM}* before approving; any other text fails the apply."]
    else:
        lines += ["", f"(*{CONFIRM_PARAM}* is only for a destroy: leave it empty.)"]
    return "\n".join(lines)


def check_approval(answer: dict[str, Any] | None, *, environment: str, action: str) -> str:
    """The approver's name, if `answer` allows applying; else ApprovalError saying why."""
    if not answer:
        raise ApprovalError(f"a {action} of {environment} needs a recorded approval and there is none (was the "
                            f"approval task marked success by hand?): trigger the DAG again and approve in Required "
                            f"Actions")
    if answer.get("chosen_options") != [APPROVE]:
        raise ApprovalError(f"the plan was not approved (answer {answer.get('chosen_options')}): nothing applied")
    who = (answer.get("responded_by_user") or {}).get("name") or "?"
    if action == "destroy":
        typed = ((answer.get("params_input") or {}).get(CONFIRM_PARAM) or "").strip()
        if typed != environment:
            raise ApprovalError(f"destroy of {environment} approved by {who} but {CONFIRM_PARAM} was {typed!r}, not "
                                f"{environment!r}: nothing destroyed; trigger the DAG again to retry")
    return who
