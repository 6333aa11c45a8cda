"""The account plan for one company, as HTML and as PDF: who is who, the history of contact,
health over time with its reasons, contracts and obligations, open complaints, the next
actions and the planned cadence steps.

Pure: the caller hands in the frames ``accounts_store.plan_data`` reads and gets text and
bytes back. The health chart is drawn by hand (an inline SVG in the HTML, lines in the PDF)
so the plan needs no plotting library and looks the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import jinja2
import pandas as pd
from fpdf import FPDF

from tasks.outreach.rendering import _latin1

Frames = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class PlanHeader:
    company: str
    owner: str
    stand_in: str | None
    as_of: datetime


def _text(value: Any, empty: str = "") -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return empty
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp | datetime):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[list[str]]:
    return [[_text(r.get(c)) for c in columns] for r in frame.to_dict("records")]


SECTIONS: list[tuple[str, str, list[str], list[str]]] = [
    # (title, frame, columns, headers)
    ("Who is who", "contacts", ["full_name", "job_title", "email", "band", "lead_rating"],
     ["name", "role", "email", "reliability", "fair rating"]),
    ("Next actions", "actions", ["due_date", "action", "reason", "assignee_id"],
     ["due", "action", "why", "who"]),
    ("Contracts and obligations", "obligations",
     ["reference", "kind", "item", "quantity", "target", "due_date", "state"],
     ["contract", "kind", "item", "qty", "terms", "due", "state"]),
    ("Open complaints", "complaints", ["id", "severity", "subject", "status", "sla_state"],
     ["id", "severity", "subject", "status", "SLA"]),
    ("History of contact", "history", ["at", "direction", "what", "detail"],
     ["when", "in/out", "what", "detail"]),
    ("Planned cadence steps", "planned", ["at", "detail"], ["due", "campaign / step"]),
]  # fmt: skip


def chart_points(
    health: pd.DataFrame, width: float, height: float
) -> list[tuple[float, float, float]]:
    """(x, y, score) of each score in a width x height box (y down, 0-100 mapped)."""
    if health.empty:
        return []
    times = pd.to_datetime(health["as_of"])
    span = (times.max() - times.min()).total_seconds() or 1.0
    points = []
    for t, score in zip(times, health["score"].astype(float), strict=True):
        x = (t - times.min()).total_seconds() / span * width if len(health) > 1 else width / 2
        points.append((x, height - score / 100.0 * height, score))
    return points


def html_template(text: str) -> jinja2.Template:
    """The plan's page (``config/templates/_accounts/plan.html.j2``), autoescaped."""
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(text)


def _latest(frames: Frames) -> dict[str, Any] | None:
    health = frames["health"]
    if health.empty:
        return None
    row = health.iloc[-1]
    return {"score": _text(row["score"]), "band": _text(row["band"]), "reasons": row["reasons"]}


def _sections(frames: Frames) -> list[tuple[str, list[list[str]], list[str]]]:
    return [(t, _rows(frames[f], cols), heads) for t, f, cols, heads in SECTIONS]


def render_html(header: PlanHeader, frames: Frames, template: jinja2.Template) -> str:
    w, hgt = 520.0, 160.0
    health = frames["health"]
    return template.render(
        h=header,
        latest=_latest(frames),
        points=chart_points(health, w, hgt),
        w=w,
        hgt=hgt,
        first=_text(health["as_of"].iloc[0]) if len(health) else "",
        last=_text(health["as_of"].iloc[-1]) if len(health) else "",
        sections=_sections(frames),
    )


def render_pdf(header: PlanHeader, frames: Frames) -> bytes:
    """An A4 PDF with the same sections; the chart is drawn with lines."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(header.as_of.astimezone(UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, _latin1(f"Account plan: {header.company}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 9)
    away = f" (while away: {header.stand_in})" if header.stand_in else ""
    pdf.cell(
        0, 5, _latin1(f"Owner {header.owner}{away} - as of {header.as_of:%Y-%m-%d %H:%M} UTC"),
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.ln(3)
    _heading(pdf, "Health")
    latest = _latest(frames)
    pdf.set_font("helvetica", "", 9)
    if latest is None:
        pdf.multi_cell(0, 5, "No health score yet.", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font("helvetica", "B", 10)
        pdf.cell(
            0, 6, _latin1(f"{latest['score']} ({latest['band']})"), new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_font("helvetica", "", 9)
        pdf.multi_cell(0, 4.5, _latin1(str(latest["reasons"])), new_x="LMARGIN", new_y="NEXT")
        _chart(pdf, frames["health"])
    for title, rows, headers in _sections(frames):
        _heading(pdf, title)
        if not rows:
            pdf.set_font("helvetica", "", 9)
            pdf.cell(0, 5, "None.", new_x="LMARGIN", new_y="NEXT")
            continue
        pdf.set_font("helvetica", "", 8)
        with pdf.table(
            headings_style=_bold(), line_height=4.5, text_align="LEFT", first_row_as_headings=True
        ) as table:
            for record in [headers, *rows]:
                row = table.row()
                for value in record:
                    row.cell(_latin1(value[:160]))
    return bytes(pdf.output())


def _bold() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(235, 235, 235))


def _heading(pdf: FPDF, title: str) -> None:
    pdf.ln(2)
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")


def _chart(pdf: FPDF, health: pd.DataFrame) -> None:
    """Health over time in a 170 x 45 mm box with gridlines at 0, 25, 50, 75 and 100."""
    left, top, w, h = pdf.l_margin + 8, pdf.get_y() + 3, 160.0, 40.0
    pdf.set_font("helvetica", "", 7)
    pdf.set_draw_color(220, 220, 220)
    for level in (0, 25, 50, 75, 100):
        y = top + h - level / 100 * h
        pdf.line(left, y, left + w, y)
        pdf.text(left - 7, y + 1, str(level))
    points = chart_points(health, w, h)
    pdf.set_draw_color(31, 111, 178)
    pdf.set_line_width(0.6)
    for (x1, y1, _), (x2, y2, _) in pairwise(points):
        pdf.line(left + x1, top + y1, left + x2, top + y2)
    pdf.set_fill_color(31, 111, 178)
    for x, y, _ in points:
        pdf.rect(left + x - 0.8, top + y - 0.8, 1.6, 1.6, style="F")
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)  # tables after the chart must not inherit the blue
    if len(health):
        pdf.text(left, top + h + 4, _text(health["as_of"].iloc[0]))
        pdf.text(left + w - 14, top + h + 4, _text(health["as_of"].iloc[-1]))
    pdf.set_y(top + h + 7)
