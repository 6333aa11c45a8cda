"""The weekly report: the side-by-side table, the changes with diffs, the timeline, faults."""

from __future__ import annotations

from datetime import UTC, datetime

from config.competitors_policy import CompetitorsPolicy
from tasks.competitors.reporting import build_report, report_html, report_markdown, svg_timeline

POLICY = CompetitorsPolicy.model_validate(
    {
        "fetch": {"user_agent": "accountflow test agent"},
        "ours": {"warranty": "24 months", "returns": "30 days, free"},
        "competitors": [
            {"id": "acme", "name": "ACME", "pages": [{"url": "https://acme.example/terms"}]},
            {"id": "ibr", "name": "Ibérica <S.A.>", "pages": [{"url": "https://ibr.example/c"}]},
        ],
    }
)
AS_OF = datetime(2026, 12, 14, 8, tzinfo=UTC)
SINCE = datetime(2026, 12, 7, 8, tzinfo=UTC)
PAGES = [
    {"competitor_id": "acme", "url": "https://acme.example/terms", "last_outcome": "fetched",
     "last_reason": None, "text": "Warranty of 12 months.\nReturns within 14 days."},
    {"competitor_id": "ibr", "url": "https://ibr.example/c", "last_outcome": "failed",
     "last_reason": "redirect loop (too many redirects)", "text": None},
]  # fmt: skip
CHANGES = [
    {"id": 1, "competitor_id": "acme", "url": "https://acme.example/terms",
     "detected_at": datetime(2026, 12, 9, 5), "material": True, "points": ["warranty"],
     "summary": "warranty: 24 months → 12 months",
     "diff": "--- before\n+++ after\n-Warranty of 24 months.\n+Warranty of 12 months."},
    {"id": 2, "competitor_id": "acme", "url": "https://acme.example/terms",
     "detected_at": datetime(2026, 12, 11, 5), "material": False, "points": [],
     "summary": "cosmetic: no policy statement changed", "diff": "-a\n+b"},
]  # fmt: skip


def test_markdown_puts_us_beside_each_competitor_per_point_with_material_diffs() -> None:
    report = build_report(POLICY, PAGES, CHANGES, AS_OF, SINCE)
    text = report_markdown(report, html_link="file:///r.html")
    assert "| policy point | us | ACME | Ibérica <S.A.> |" in text
    assert "| warranty | 24 months | 12 months | — |" in text
    assert "| returns | 30 days, free | 14 days | — |" in text
    assert "1 material change(s), 1 cosmetic, 1 page(s) that could not be read" in text
    assert "-Warranty of 24 months.\n+Warranty of 12 months." in text
    assert "https://ibr.example/c: redirect loop (too many redirects)" in text
    assert "-a\n+b" not in text  # cosmetic diffs stay out of the artifact


def test_html_report_escapes_names_and_draws_one_dot_per_change_without_scripts() -> None:
    report = build_report(POLICY, PAGES, CHANGES, AS_OF, SINCE)
    page = report_html(report)
    assert "Ibérica &lt;S.A.&gt;" in page and "<S.A.>" not in page
    assert page.count("<circle") == 2 + 2 and "<script" not in page  # two changes, the legend
    assert '<span class="del">-Warranty of 24 months.</span>' in page


def test_timeline_places_changes_by_day_and_colours_material_ones() -> None:
    svg = svg_timeline(build_report(POLICY, PAGES, CHANGES, AS_OF, SINCE))
    assert svg.startswith("<svg") and svg.count('fill="#c62828"><title>') == 1
    assert "12-07" in svg and "12-14" in svg
