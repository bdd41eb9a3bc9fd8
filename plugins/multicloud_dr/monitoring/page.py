"""The Disaster recovery page as HTML, rendered on the server from the status dict (monitoring/status.py): no
JavaScript build, no other origin, so it loads in the Airflow UI's frame at once. Each element that a test or a
user looks for carries a `data-dr` attribute naming the status field it shows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2rem;color:#1c2430;background:#fff}
h1{font-size:1.4rem;margin:0 0 .6rem} h2{font-size:1.05rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #dde}
.verdict{padding:.8rem 1rem;border-radius:6px;font-size:1.1rem;font-weight:600}
.ready{background:#e3f6e8;color:#125c2b;border:1px solid #8fd1a3}
.blocked{background:#fde8e8;color:#8a1c1c;border:1px solid #f0a3a3}
table{border-collapse:collapse;width:100%;font-size:.9rem} td,th{padding:.25rem .5rem;text-align:left;
border-bottom:1px solid #eef} th{background:#f5f6fa}
.ok{color:#137333;font-weight:600} .breach,.error,.failed,.drifted,.missing,.stale{color:#b3261e;font-weight:600}
.unknown,.running,.queued{color:#8a6d00;font-weight:600}
.strip span{display:inline-block;width:2.2rem;text-align:center;margin-right:2px;border-radius:3px;font-size:.75rem;
padding:.15rem 0;color:#fff} .strip .s-ok{background:#1e8e3e} .strip .s-failed{background:#c5221f}
.strip .s-missing{background:#9aa0a6} .strip .s-running,.strip .s-queued{background:#f9ab00}
.muted{color:#5f6368;font-size:.85rem} a{color:#1a57c9}
.charts{display:flex;gap:1rem;flex-wrap:wrap} .charts figure{flex:1;min-width:320px;max-width:640px;margin:0}
.charts figcaption{font-size:.8rem;color:#5f6368}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _link(text: Any, href: str | None) -> str:
    return f'<a href="{_e(href)}" target="_top">{_e(text)}</a>' if href else _e(text)


def _seconds(value: float | None) -> str:
    if value is None:
        return "unknown"
    if value < 120:
        return f"{value:.1f} s"
    if value < 2 * 3600:
        return f"{value / 60:.1f} min"
    if value < 3 * 86400:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _status(value: Any) -> str:
    word = _e(value or "unknown")
    return f'<span class="{word.replace(" ", "_")}">{word}</span>'


def chart(history: list[dict[str, Any]], target: float, now: datetime, hours: int, name: str) -> str:
    """An SVG line of the RPO over the last `hours`, the target drawn as a dashed line; each point links to its
    asset event's run."""
    width, height, pad = 640, 160, 34
    start = now - timedelta(hours=hours)
    points = []
    for h in history:
        at = h.get("at")
        if not at or h.get("rpo_seconds") is None:
            continue
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if when >= start:
            points.append((when, float(h["rpo_seconds"]), h.get("link")))
    # A log scale from 1 s: an RPO of seconds and a target of a day both stay readable (on a linear one the
    # seconds would sit on the axis); anything under a second is drawn at the bottom.
    top = max([target * 2] + [p[1] * 2 for p in points] + [10.0])
    span = math.log10(top)

    def x(when: datetime) -> float:
        return pad + (width - 2 * pad) * (when - start).total_seconds() / (hours * 3600)

    def y(value: float) -> float:
        return height - pad / 2 - (height - pad) * math.log10(min(max(value, 1.0), top)) / span

    parts = [f'<svg data-dr="rpo-chart-{name}" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="RPO over the last {hours} h">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafbfd"/>',
             f'<line x1="{pad}" x2="{width - pad}" y1="{y(target):.1f}" y2="{y(target):.1f}" stroke="#c5221f" '
             f'stroke-dasharray="5,4"/>',
             f'<text x="{width - pad}" y="{y(target) - 4:.1f}" font-size="10" text-anchor="end" fill="#c5221f">'
             f'target {_e(_seconds(target))}</text>',
             *(f'<line x1="{pad}" x2="{width - pad}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e3e6ec"/>'
               f'<text x="4" y="{y(v) + 3:.1f}" font-size="10" fill="#5f6368">{label}</text>'
               for v, label in ((1, "1 s"), (60, "1 min"), (3600, "1 h"), (86400, "1 d"), (7 * 86400, "7 d"))
               if v < top),
             f'<text x="{pad}" y="{height - 2}" font-size="10" fill="#5f6368">-{hours} h</text>',
             f'<text x="{width - pad}" y="{height - 2}" font-size="10" text-anchor="end" fill="#5f6368">now</text>']
    if len(points) > 1:
        line = " ".join(f"{x(w):.1f},{y(v):.1f}" for w, v, _ in points)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#1a57c9" stroke-width="1.6"/>')
    for when, value, href in points:
        dot = (f'<circle cx="{x(when):.1f}" cy="{y(value):.1f}" r="2.6" fill="#1a57c9">'
               f'<title>{_e(when.isoformat(timespec="seconds"))}: {_e(_seconds(value))}</title></circle>')
        parts.append(f'<a href="{_e(href)}" target="_top">{dot}</a>' if href else dot)
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" font-size="12" text-anchor="middle" fill="#5f6368">'
                     f'no replication_health events in the last {hours} h</text>')
    parts.append("</svg>")
    return "".join(parts)


def render(status: dict[str, Any]) -> str:
    now = datetime.fromisoformat(status["generated_at"])
    verdict = status["verdict"]
    rpo = status.get("rpo") or {}
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Disaster recovery: {_e(status['environment'])}"
           f"</title><style>{STYLE}</style></head><body>",
           f"<h1>Disaster recovery: <span data-dr='environment'>{_e(status['environment'])}</span></h1>",
           f"<div data-dr='verdict' class='verdict {'ready' if verdict.get('ready') else 'blocked'}'>"
           f"{_e(verdict.get('text'))}</div>"]

    out.append("<h2>Current achievable RPO</h2>")
    out.append(f"<p><b data-dr='rpo_seconds'>{_e(_seconds(status.get('rpo_seconds')))}</b> "
               f"(target {_e(_seconds(status.get('rpo_target_seconds')))}), measured "
               f"{_link(rpo.get('measured_at') or 'never', rpo.get('link'))}; "
               f"{_e(rpo.get('events', 0))} events in {7} days</p>")
    history = rpo.get("history") or []
    target = float(status.get("rpo_target_seconds") or 0)
    out.append("<div class='charts'><figure>" + chart(history, target, now, 24, "24h") +
               "<figcaption>last 24 h</figcaption></figure><figure>" + chart(history, target, now, 24 * 7, "7d") +
               "<figcaption>last 7 days</figcaption></figure></div>")

    out.append("<h2>Replication checks</h2><table data-dr='checks'><tr><th>check</th><th>status</th><th>value"
               "</th><th>threshold</th><th>detail</th><th>measured</th></tr>")
    for c in status.get("checks") or []:
        value = c.get("value")
        shown = "-" if value is None else (_seconds(value) if c.get("unit", "seconds") == "seconds" else value)
        limit = c.get("threshold")
        out.append(f"<tr data-dr-check='{_e(c['name'])}'><td>{_e(c['name'])}</td><td>{_status(c.get('status'))}</td>"
                   f"<td>{_link(shown, c.get('link'))}</td><td>{_e('-' if limit is None else _seconds(limit))}</td>"
                   f"<td>{_e(c.get('detail'))}</td><td>{_e(c.get('measured_at'))}</td></tr>")
    if not status.get("checks"):
        out.append("<tr><td colspan='6' class='muted'>no replication_health run recorded yet</td></tr>")
    out.append("</table>")

    backups = status.get("backups") or {}
    out.append("<h2>Backups</h2><table data-dr='backups'><tr><th>database</th><th>newest verified</th><th>age</th>"
               "<th>size</th><th>verified</th><th>copies</th></tr>")
    for name, b in (backups.get("databases") or {}).items() if isinstance(backups.get("databases"), dict) else ():
        if not b:
            out.append(f"<tr data-dr-backup='{_e(name)}'><td>{_e(name)}</td><td colspan='5' class='missing'>"
                       f"no verified backup</td></tr>")
        elif "error" in b:
            out.append(f"<tr data-dr-backup='{_e(name)}'><td>{_e(name)}</td><td colspan='5' class='error'>"
                       f"{_e(b['error'])}</td></tr>")
        else:
            copies = ", ".join(f"{c['url'].split('://')[0]}{' ✓' if c.get('verified_at') else ' (unverified)'}"
                               for c in b.get("copies") or []) or "none"
            out.append(f"<tr data-dr-backup='{_e(name)}'><td>{_e(name)}</td><td>{_e(b['backup_id'])}</td>"
                       f"<td data-dr='backup-age'>{_e(_seconds(b.get('age_seconds')))}</td>"
                       f"<td>{_e(_bytes(b.get('bytes')))}</td><td>{_e(b.get('verified_at'))}</td>"
                       f"<td>{_e(copies)}; 3-2-1 {'yes' if b.get('three_two_one') else '<b>no</b>'}</td></tr>")
    out.append("</table>")
    nights = backups.get("nights") or []
    out.append("<p class='strip' data-dr='nights'>Last nights: " + "".join(
        f"<a href='{_e(n['link'])}' target='_top'>" * bool(n.get("link")) +
        f"<span class='s-{_e(n['status'])}' title='{_e(n['night'])}: {_e(n['status'])}'>{_e(n['night'][5:])}</span>" +
        "</a>" * bool(n.get("link")) for n in nights) + ("" if nights else "<span class='s-missing'>none</span>") +
        "</p>")

    drills = status.get("drills") or {}
    out.append("<h2>Drills</h2><table data-dr='drills'><tr><th>drill</th><th>when</th><th>took</th>"
               "<th>predicted restore</th><th>RTO target</th><th>detail</th></tr>")
    restore = drills.get("restore") if isinstance(drills.get("restore"), dict) else {}
    last_run = drills.get("last_restore_run") or {}
    for name, d in (restore or {}).items():
        if not d:
            out.append(f"<tr><td>restore {_e(name)}</td><td colspan='5' class='muted'>no restore drill yet</td></tr>")
            continue
        out.append(f"<tr><td>restore {_e(name)}</td><td>{_link(d.get('at'), last_run.get('link'))}</td>"
                   f"<td>{_e(_seconds(d.get('seconds')))}</td><td>{_e(_seconds(d.get('predicted_seconds')))}</td>"
                   f"<td>{_e(_seconds(d.get('rto_seconds')))}</td><td>{_e(d.get('message'))}</td></tr>")
    failover_drill = drills.get("failover")
    if failover_drill:
        out.append(f"<tr><td>failover drill</td><td>{_link(failover_drill.get('ended_at'), failover_drill.get('link'))}"
                   f"</td><td>{_e(_seconds(failover_drill.get('seconds')))}</td><td>-</td>"
                   f"<td>{_e(_seconds(status.get('rto_target_seconds')))}</td><td>{_status(failover_drill.get('outcome'))}"
                   f"</td></tr>")
    else:
        out.append("<tr><td>failover drill</td><td colspan='5' class='muted'>no failover drill yet</td></tr>")
    out.append("</table>")

    state = status.get("state") or {}
    out.append("<h2>DR state</h2>")
    if "error" in state:
        out.append(f"<p class='error'>{_e(state['error'])}</p>")
    else:
        fencing = state.get("fencing") or {}
        fenced = f", fencing {_e(fencing.get('status'))} at {_e(fencing.get('site'))}" if fencing.get("site") else ""
        held = f", held by {_e(state['holder'].get('run_id'))}" if state.get("holder") else ""
        out.append(f"<p>Active site <b data-dr='active_site'>{_e(state.get('active_site'))}</b>, fencing epoch "
                   f"<b data-dr='fencing_epoch'>{_e(state.get('fencing_epoch'))}</b>{fenced}{held}</p>")
        out.append("<table data-dr='last'><tr><th>last</th><th>ended</th><th>outcome</th><th>RTO</th><th>RPO</th>"
                   "<th>report</th></tr>")
        for kind in ("failover", "failback"):
            item = (state.get("last") or {}).get(kind)
            if not item:
                out.append(f"<tr><td>{kind}</td><td colspan='5' class='muted'>none yet</td></tr>")
                continue
            out.append(f"<tr><td>{kind}</td><td>{_link(item.get('ended_at'), item.get('link'))}</td>"
                       f"<td>{_status(item.get('outcome'))}</td><td>{_e(_seconds(item.get('rto_seconds')))}</td>"
                       f"<td>{_e(_seconds(item.get('rpo_seconds')))}</td><td>{_e(item.get('report') or '-')}</td></tr>")
        out.append("</table>")

    drift = status.get("drift") or {}
    stacks = drift.get("stacks") if isinstance(drift.get("stacks"), list) else []
    runs = drift.get("runs") if isinstance(drift.get("runs"), list) else []
    out.append("<h2>Terraform drift</h2><table data-dr='drift'><tr><th>stack</th><th>status</th><th>checked</th>"
               "<th>detail</th></tr>")
    for d in stacks:
        out.append(f"<tr><td>{_e(d.get('stack'))}</td><td>{_status(d.get('status'))}</td>"
                   f"<td>{_link(d.get('checked_at') or '-', runs[0]['link'] if runs else None)}</td>"
                   f"<td>{_e(d.get('detail') or d.get('error'))}</td></tr>")
    out.append("</table>")

    approvals = status.get("approvals") if isinstance(status.get("approvals"), list) else []
    out.append("<h2>Pending approvals</h2><table data-dr='approvals'><tr><th>waiting</th><th>run</th><th>approvers"
               "</th><th>since</th></tr>")
    for a in approvals:
        out.append(f"<tr><td>{_link(a.get('subject'), a.get('link'))}</td><td>{_e(a.get('dag_id'))} / "
                   f"{_e(a.get('run_id'))}</td><td>{_e(', '.join(a.get('assigned_users') or []) or 'anyone')}</td>"
                   f"<td>{_e(a.get('created_at'))}</td></tr>")
    if not approvals:
        out.append("<tr><td colspan='4' class='muted'>none</td></tr>")
    out.append("</table>")
    out.append(f"<p class='muted'>Generated {_e(status['generated_at'])} in {_e(status.get('seconds'))} s; the same "
               f"data as JSON: <a href='api/status'>api/status</a></p></body></html>")
    return "".join(out)
