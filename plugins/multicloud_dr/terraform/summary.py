"""A saved plan, summarised from `terraform show -json PLANFILE` (the JSON plan representation).

Counted the way terraform's own "Plan: N to add, N to change, N to destroy." line counts: each entry of
`resource_changes[].change.actions` is ["no-op"], ["create"], ["read"], ["update"], ["delete"],
["delete", "create"] or ["create", "delete"] (a replacement, which counts as one add and one destroy);
"no-op" and "read" (data sources) are not changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from multicloud_dr.exceptions import DrError


class PlanFormatError(DrError):
    """`terraform show -json` printed something that is not a plan representation."""


def _zero() -> dict[str, int]:
    return {"add": 0, "change": 0, "destroy": 0}


@dataclass
class PlanSummary:
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)   # resource type -> add/change/destroy
    replaced: list[str] = field(default_factory=list)                  # addresses to be replaced
    deleted: list[str] = field(default_factory=list)                   # addresses to be destroyed (not replaced)
    output_changes: list[str] = field(default_factory=list)            # output names that change

    @property
    def totals(self) -> dict[str, int]:
        total = _zero()
        for counts in self.by_type.values():
            for key, value in counts.items():
                total[key] += value
        return total

    def one_line(self) -> str:
        t = self.totals
        line = f"{t['add']} to add, {t['change']} to change, {t['destroy']} to destroy"
        if self.output_changes:
            line += f", {len(self.output_changes)} output(s) change"
        return line

    def to_markdown(self) -> str:
        """A table per resource type for the approval page (no attribute values: they may be secrets)."""
        if not self.by_type and not self.output_changes:
            return "No changes."
        lines = [f"**{self.one_line()}**", ""]
        if self.by_type:
            lines += ["| resource type | add | change | destroy |", "| --- | ---: | ---: | ---: |"]
            lines += [f"| `{rtype}` | {c['add']} | {c['change']} | {c['destroy']} |"
                      for rtype, c in sorted(self.by_type.items())]
        if self.deleted:
            lines += ["", "Destroyed: " + ", ".join(f"`{a}`" for a in self.deleted[:50])
                      + (f" and {len(self.deleted) - 50} more" if len(self.deleted) > 50 else "")]
        if self.replaced:
            lines += ["", "Replaced (destroyed, then created): " + ", ".join(f"`{a}`" for a in self.replaced[:50])
                      + (f" and {len(self.replaced) - 50} more" if len(self.replaced) > 50 else "")]
        if self.output_changes:
            lines += ["", "Outputs that change: " + ", ".join(f"`{n}`" for n in self.output_changes)]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"by_type": self.by_type, "totals": self.totals, "replaced": self.replaced, "deleted": self.deleted,
                "output_changes": self.output_changes}


def summarize_plan(document: dict) -> PlanSummary:
    if not isinstance(document, dict) or "format_version" not in document:
        raise PlanFormatError("terraform show -json did not print a plan representation (no format_version)")
    summary = PlanSummary()
    for change in document.get("resource_changes") or []:
        actions = (change.get("change") or {}).get("actions") or []
        if change.get("mode") == "data" or actions in (["no-op"], ["read"], []):
            continue
        counts = summary.by_type.setdefault(change.get("type") or "unknown", _zero())
        if "create" in actions:
            counts["add"] += 1
        if actions == ["update"]:
            counts["change"] += 1
        if "delete" in actions:
            counts["destroy"] += 1
            (summary.replaced if "create" in actions else summary.deleted).append(change.get("address", "?"))
    summary.output_changes = sorted(name for name, change in (document.get("output_changes") or {}).items()
                                    if (change or {}).get("actions") not in (["no-op"], None))
    return summary
