"""The weekly competitor report: us vs each competitor per policy point, the period's changes
with their diffs, a timeline, and the pages that could not be read.

Pure: it takes the policy, the pages' current texts, the period's changes and the faults,
and returns markdown (the Prefect artifact) and a standalone HTML page (inline SVG, no
scripts).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.competitors_policy import CompetitorsPolicy, PolicyPoint
from tasks.competitors.diffing import current_statements

MATERIAL_COLOUR, COSMETIC_COLOUR = "#c62828", "#90a4ae"


@dataclass(frozen=True)
class CompetitorReport:
    as_of: datetime
    since: datetime
    competitors: list[tuple[str, str]]  # (id, name)
    table: dict[PolicyPoint, dict[str, str]]  # point -> column ("us" or id) -> cell
    changes: list[dict[str, Any]]
    faults: list[dict[str, Any]]

    @property
    def material(self) -> list[dict[str, Any]]:
        return [c for c in self.changes if c["material"]]


def build_report(
    policy: CompetitorsPolicy,
    pages: Sequence[dict[str, Any]],
    changes: Sequence[dict[str, Any]],
    as_of: datetime,
    since: datetime,
) -> CompetitorReport:
    """Side-by-side cells from each competitor's pages as they read now."""
    names = [(c.id, c.name) for c in policy.competitors]
    stated: dict[str, dict[PolicyPoint, list[str]]] = {cid: {} for cid, _ in names}
    for page in pages:
        if page.get("text") and page["competitor_id"] in stated:
            for point, values in current_statements(page["text"]).items():
                cell = stated[page["competitor_id"]].setdefault(point, [])
                cell += [v for v in values if v not in cell]
    table: dict[PolicyPoint, dict[str, str]] = {}
    for point in PolicyPoint:
        row = {"us": policy.ours.get(point, "—")}
        for cid, _ in names:
            row[cid] = "; ".join(stated[cid].get(point, [])) or "—"
        table[point] = row
    faults = [
        {k: p[k] for k in ("competitor_id", "url", "last_outcome", "last_reason")}
        for p in pages
        if p.get("last_outcome") in ("failed", "blocked", "unreadable")
    ]
    return CompetitorReport(as_of, since, names, table, list(changes), faults)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(report: CompetitorReport, html_link: str | None = None) -> str:
    """The artifact: the comparison table, the material changes with diffs, the faults."""
    names = dict(report.competitors)
    head = ["policy point", "us", *(names[c] for c, _ in report.competitors)]
    lines = [
        f"# Competitor client policies, {report.since:%Y-%m-%d} to {report.as_of:%Y-%m-%d}",
        "",
        f"{len(report.material)} material change(s), "
        f"{len(report.changes) - len(report.material)} cosmetic, "
        f"{len(report.faults)} page(s) that could not be read on the last run.",
        "",
        "## Us vs each competitor",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for point, row in report.table.items():
        cells = [point.value.replace("_", " "), row["us"], *(row[c] for c, _ in report.competitors)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Material changes", ""]
    if not report.material:
        lines.append("None in this period.")
    for c in report.material:
        lines += [
            f"### {names.get(c['competitor_id'], c['competitor_id'])}: {c['url']}",
            f"{c['detected_at']:%Y-%m-%d %H:%M} UTC. {c['summary']}",
            "",
            "```diff",
            c["diff"],
            "```",
            "",
        ]
    if report.faults:
        lines += ["## Pages not read on the last run (tried again next run)", ""]
        lines += [f"- {f['url']}: {f['last_reason'] or f['last_outcome']}" for f in report.faults]
    if html_link:
        lines += ["", f"HTML report with the timeline: {html_link}"]
    return "\n".join(lines) + "\n"


def svg_timeline(report: CompetitorReport, width: int = 720) -> str:
    """Changes over the period as dots, one row per competitor (material red, cosmetic grey)."""
    label_w, row_h, top = 170, 26, 40
    rows = report.competitors or [("", "")]
    height = top + len(rows) * row_h + 30
    span = max((report.as_of - report.since).total_seconds(), 1.0)
    plot_w = width - label_w - 20
    title = "Changes over the period"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<circle cx="{width - 170}" cy="14" r="5" fill="{MATERIAL_COLOUR}"/>',
        f'<text x="{width - 160}" y="18" font-size="11">material</text>',
        f'<circle cx="{width - 95}" cy="14" r="4" fill="{COSMETIC_COLOUR}"/>',
        f'<text x="{width - 85}" y="18" font-size="11">cosmetic</text>',
    ]
    days = int(span // 86400)
    for d in range(days + 1):
        x = label_w + (d * 86400) / span * plot_w
        day = report.since + timedelta(days=d)
        parts += [
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 24}" stroke="#eceff1"/>',
            f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
            f"{day:%m-%d}</text>",
        ]
    index = {cid: i for i, (cid, _) in enumerate(rows)}
    for i, (_, name) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">'
            f"{html.escape(name[:26])}</text>"
        )
    for c in report.changes:
        if c["competitor_id"] not in index:
            continue
        offset = (
            c["detected_at"] - report.since.astimezone(UTC).replace(tzinfo=None)
        ).total_seconds()
        x = label_w + min(max(offset / span, 0.0), 1.0) * plot_w
        y = top + index[c["competitor_id"]] * row_h + row_h / 2
        colour = MATERIAL_COLOUR if c["material"] else COSMETIC_COLOUR
        tip = html.escape(f"{c['detected_at']:%Y-%m-%d} {c['summary']}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{6 if c["material"] else 4}" '
            f'fill="{colour}"><title>{tip}</title></circle>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def report_html(report: CompetitorReport) -> str:
    """A standalone page: the table, the timeline and each change's diff (no scripts)."""
    names = dict(report.competitors)
    head = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in ["policy point", "us", *(names[c] for c, _ in report.competitors)]
    )
    body_rows = "".join(
        "<tr><th>"
        + html.escape(point.value.replace("_", " "))
        + "</th>"
        + "".join(
            f"<td>{html.escape(row[c])}</td>" for c in ["us", *(c for c, _ in report.competitors)]
        )
        + "</tr>"
        for point, row in report.table.items()
    )
    changes = (
        "".join(
            f'<section class="{"material" if c["material"] else "cosmetic"}">'
            f"<h3>{html.escape(names.get(c['competitor_id'], c['competitor_id']))}: "
            f"{html.escape(c['url'])}</h3>"
            f"<p>{c['detected_at']:%Y-%m-%d %H:%M} UTC. {html.escape(c['summary'])}</p>"
            f"<pre>{_diff_html(c['diff'])}</pre></section>"
            for c in report.changes
        )
        or "<p>No changes in this period.</p>"
    )
    faults = "".join(
        f"<li>{html.escape(f['url'])}: {html.escape(f['last_reason'] or f['last_outcome'])}</li>"
        for f in report.faults
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Competitor policies {report.as_of:%Y-%m-%d}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table.points{border-collapse:collapse;font-size:13px}"
        "table.points td,table.points th{padding:4px 8px;border-bottom:1px solid #ddd;"
        "text-align:left;vertical-align:top}"
        "pre{background:#fafafa;padding:8px;font-size:12px;white-space:pre-wrap}"
        ".add{color:#1b5e20}.del{color:#b71c1c}section.cosmetic{opacity:.6}"
        "</style></head><body>"
        f"<h1>Competitor client policies, {report.since:%Y-%m-%d} to {report.as_of:%Y-%m-%d}</h1>"
        f"<p>{len(report.material)} material change(s), "
        f"{len(report.changes) - len(report.material)} cosmetic.</p>"
        f'<h2>Us vs each competitor</h2><table class="points"><tr>{head}</tr>{body_rows}</table>'
        f"<h2>Timeline</h2><figure>{svg_timeline(report)}</figure>"
        f"<h2>Changes</h2>{changes}"
        + (f"<h2>Pages not read on the last run</h2><ul>{faults}</ul>" if faults else "")
        + "</body></html>\n"
    )


def _diff_html(diff: str) -> str:
    out = []
    for line in diff.splitlines():
        escaped = html.escape(line)
        if line.startswith("+") and not line.startswith("+++"):
            out.append(f'<span class="add">{escaped}</span>')
        elif line.startswith("-") and not line.startswith("---"):
            out.append(f'<span class="del">{escaped}</span>')
        else:
            out.append(escaped)
    return "\n".join(out)
