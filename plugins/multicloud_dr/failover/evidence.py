"""What the approver of a failover reads: the evidence as Markdown (the body of the approval step).

Pure: it renders what the evidence step gathered (the gates' decision, the replication checks and the current
achievable RPO, each traffic layer, each site's app health) and reads nothing itself, so the approval shows
exactly what the gates decided on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multicloud_dr.failover.gates import GateDecision


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def evidence_markdown(*, environment: str, target_site: str, mode: str, gates: GateDecision,
                      replication: dict[str, Any] | None = None, traffic: dict[str, Any] | None = None,
                      health: dict[str, dict[str, Any]] | None = None, triggered_by: str | None = None,
                      sections: Sequence[tuple[str, list[str], list[list[Any]]]] = ()) -> str:
    """The approval body: a verdict line first, then the facts behind it; `sections`: more of them, each a
    (title, table header, table rows), after the rest."""
    verdict = "**GATES PASSED**" if gates.passed and not gates.forced else \
        "**FORCED PAST FAILED GATES**" if gates.forced else "**STOPPED BY GATES**"
    lines = [f"# {mode.capitalize()} failover of `{environment}` to `{target_site}`", "",
             f"{verdict}: {gates.summary()}", ""]
    if triggered_by:
        lines += [f"Triggered by `{triggered_by}`.", ""]
    lines += ["## Gates", *_table(["gate", "ok", "detail"],
                                  [[g.name, "yes" if g.ok else "**no**", g.detail] for g in gates.gates])]
    if replication is not None:
        rpo = replication.get("rpo_seconds")
        lines += ["## Replication", f"Current achievable RPO: {'unknown' if rpo is None else f'{rpo:g} s'} "
                                    f"(target {replication.get('rpo_target_seconds')} s).", ""]
        lines += _table(["check", "status", "value", "threshold", "detail"],
                        [[c["name"], c["status"], c.get("value"), c.get("threshold"), c.get("detail")]
                         for c in replication.get("checks", [])])
    if traffic is not None:
        lines += ["## Traffic", f"Users reach: `{traffic.get('site')}`.", ""]
        lines += _table(["layer", "site", "details"],
                        [[layer["provider"], layer.get("site"),
                          ", ".join(f"{k}={v}" for k, v in layer.items() if k not in ("provider", "site", "pools"))]
                         for layer in traffic.get("layers", [])])
    if health is not None:
        lines += ["## Application health"]
        lines += _table(["site", "healthy", "detail"],
                        [[site, "yes" if h.get("healthy") else "**no**", h.get("detail") or h.get("url")]
                         for site, h in sorted(health.items())])
    for title, header, rows in sections:
        lines += [f"## {title}", *_table(header, rows)]
    return "\n".join(lines).rstrip() + "\n"
