"""Target-audience segmentation, per-segment stats, best/worst and the two reports."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from config.scoring_policy import ScoringPolicy, load_scoring_policy
from tasks.scoring.audience import (
    analyze_audience,
    audience_html,
    audience_markdown,
    segment_contacts,
    segment_stats,
    svg_bar_chart,
    write_audience_html,
)

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> ScoringPolicy:
    return load_scoring_policy()


def contacts() -> pd.DataFrame:
    """Two clear segments: tech executives who answer and buy, retail staff who do not."""
    rows = []
    for i in range(6):
        rows.append(
            {
                "contact_id": i,
                "company_name": f"Nuvem Software {i} Ltda",
                "country": "br",
                "state": "SP",
                "job_title": "Diretor de TI",
                "registry_size": "300",
                "source_event": "Feira SP",
                "notes": "Pediu demo e integração com o ERP",
                "replies": 1,
                "opens": 3,
                "outcome": "won" if i < 5 else "lost",
                "complaints_total": 0,
                "score": 80.0,
                "band": "A",
                "scorecard_version": "v1",
            }
        )
    for i in range(6, 12):
        rows.append(
            {
                "contact_id": i,
                "company_name": f"Loja Central {i}",
                "country": "PT",
                "state": None,
                "job_title": "Vendedora",
                "registry_size": "ME",
                "source_event": "Expo Lisboa",
                "notes": "Só quer preço",
                "replies": 0,
                "opens": 1,
                "outcome": "lost" if i < 11 else "won",
                "complaints_total": 1,
                "score": 35.0,
                "band": "D",
                "scorecard_version": "v1",
            }
        )
    rows.append({"contact_id": 99, "company_name": None, "score": 50.0, "band": "C"})
    return pd.DataFrame(rows)


def test_segments_come_from_name_keywords_title_size_and_notes(policy: ScoringPolicy) -> None:
    seg = segment_contacts(contacts(), policy).set_index("contact_id")
    assert list(seg.loc[0, ["industry", "country", "job_level", "company_size"]]) == [
        "technology",
        "BR",
        "executive",
        "large",
    ]
    assert list(seg.loc[6, ["industry", "job_level", "company_size"]]) == [
        "retail",
        "staff",
        "micro",
    ]
    assert seg.loc[0, "need"] == ("demo", "integration")
    assert seg.loc[6, "need"] == ("pricing",)
    assert list(seg.loc[99, ["industry", "job_level", "need"]]) == [
        "(unknown)",
        "(unknown)",
        ("(none)",),
    ]


def test_configured_company_mapping_and_explicit_industry_win_over_keywords(
    policy: ScoringPolicy,
) -> None:
    audience = policy.audience.model_copy(
        update={"industry_by_company": {"Loja Central 6": "wholesale"}}
    )
    custom = policy.model_copy(update={"audience": audience})
    df = contacts()
    df["industry"] = None
    df.loc[df["contact_id"] == 7, "industry"] = "pharmacy"
    seg = segment_contacts(df, custom).set_index("contact_id")
    assert list(seg.loc[[6, 7, 8], "industry"]) == ["wholesale", "pharmacy", "retail"]


def test_segment_stats_count_rates_band_mix_and_complaints(policy: ScoringPolicy) -> None:
    stats = segment_stats(segment_contacts(contacts(), policy), "industry").set_index("segment")
    tech, retail = stats.loc["technology"], stats.loc["retail"]
    assert tech["count"] == 6 and retail["count"] == 6
    assert tech["response_rate"] == 1.0 and retail["response_rate"] == 0.0
    assert tech["conversion_rate"] == pytest.approx(5 / 6, abs=1e-4)
    assert retail["conversion_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert tech["band_A"] == 1.0 and retail["band_D"] == 1.0
    assert retail["complaints"] == 6 and tech["complaints"] == 0
    assert tech["mean_score"] == 80.0


def test_need_tags_count_a_contact_once_per_tag(policy: ScoringPolicy) -> None:
    stats = segment_stats(segment_contacts(contacts(), policy), "need").set_index("segment")
    assert stats.loc[["demo", "integration", "pricing"], "count"].tolist() == [6, 6, 6]


def test_best_and_worst_segments_are_named(policy: ScoringPolicy) -> None:
    report = analyze_audience(contacts(), policy, AS_OF)
    assert report.best.iloc[0]["conversion_rate"] == pytest.approx(5 / 6, abs=1e-4)
    assert report.worst.iloc[0]["conversion_rate"] == pytest.approx(1 / 6, abs=1e-4)
    assert "(unknown)" not in set(report.best["segment"]) | set(report.worst["segment"])
    assert report.funnel == {
        "contacts": 13,
        "contacted": 12,
        "responded": 6,
        "with_outcome": 12,
        "converted": 6,
    }
    assert report.band_mix == {"A": 6, "B": 0, "C": 1, "D": 6}


def test_small_segments_are_not_called_best_or_worst(policy: ScoringPolicy) -> None:
    audience = policy.audience.model_copy(update={"min_segment_size": 7})
    report = analyze_audience(contacts(), policy.model_copy(update={"audience": audience}), AS_OF)
    assert (report.best["count"] >= 7).all() and (report.worst["count"] >= 7).all()


def test_markdown_summary_names_segments_and_links_the_html(policy: ScoringPolicy) -> None:
    text = audience_markdown(analyze_audience(contacts(), policy, AS_OF), "reports/a.html")
    assert "[reports/a.html](reports/a.html)" in text
    assert "**Best segments**" in text and "**Worst segments**" in text
    assert re.search(r"\| technology \| 6 \| 80\.0 \| 100% \|", text)
    assert "| A | 6 |" in text


def test_html_report_is_standalone_with_valid_svg_charts(
    policy: ScoringPolicy, tmp_path: Path
) -> None:
    report = analyze_audience(contacts(), policy, AS_OF)
    path = write_audience_html(report, tmp_path / "reports" / "audience.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(svgs) == 9  # band mix, funnel, one per dimension
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed XML
    assert "Response rate by industry" in page and "Funnel" in page
    assert "<script" not in page and "http" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert audience_html(report) == page


def test_bar_lengths_are_proportional_and_labels_escaped() -> None:
    svg = svg_bar_chart(
        "t", [("<a&b>", 10, "#000"), ("half", 5, "#000"), ("none", float("nan"), "#000")]
    )
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[2] == 0
    assert "&lt;a&amp;b&gt;" in svg and "n/a" in svg
