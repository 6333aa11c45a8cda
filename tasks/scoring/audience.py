"""Who the prospects are and which segments answer: segmentation, stats and the reports.

Everything here is pure pandas on a contacts frame already joined with its scores; the
Prefect task only loads that frame, calls :func:`analyze_audience`, publishes
:func:`audience_markdown` as a markdown artifact and writes :func:`write_audience_html`
under the data dir. Charts are inline SVG so the HTML report is one self-contained file
and needs no plotting library.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from config.scoring_policy import BANDS, FACTOR_LEVELS, AudiencePolicy, ScoringPolicy
from tasks.scoring.scorecard import fold, job_levels, size_levels

DIMENSIONS: tuple[str, ...] = (
    "industry",
    "country",
    "state",
    "company_size",
    "job_level",
    "source_event",
    "need",
)
UNKNOWN = "(unknown)"
_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class AudienceReport:
    """The analysis: per-segment stats for every dimension, the funnel, best and worst."""

    segments: pd.DataFrame  # dimension, segment, count, mean_score, band_A..D, rates, complaints
    funnel: dict[str, int]  # contacts, contacted, responded, with_outcome, converted
    band_mix: dict[str, int]
    best: pd.DataFrame  # rows of `segments`, best first
    worst: pd.DataFrame  # rows of `segments`, worst first
    as_of: datetime
    scorecard_version: str


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series(np.full(len(df), None, dtype=object), index=df.index)


def _by_distinct(series: pd.Series, classify: Callable[[pd.Series], npt.NDArray[Any]]) -> pd.Series:
    """Apply ``classify`` (Series of distinct values -> array) once per distinct value."""
    codes, uniques = pd.factorize(series.astype(object))
    labels = np.append(
        np.asarray(classify(pd.Series(uniques, dtype=object)), dtype=object), UNKNOWN
    )
    return pd.Series(labels[codes], index=series.index, dtype=object)


def _industries(names: pd.Series, policy: AudiencePolicy) -> npt.NDArray[np.object_]:
    folded = fold(names)
    by_company = {fold(pd.Series([k])).iloc[0]: v for k, v in policy.industry_by_company.items()}
    words = folded.map(lambda n: set(_WORD.split(n)))
    out = []
    for name, tokens in zip(folded, words, strict=True):
        found = by_company.get(name)
        if found is None:
            found = next(
                (ind for ind, keys in policy.industry_keywords.items() if tokens & set(keys)),
                UNKNOWN,
            )
        out.append(found)
    return np.array(out, dtype=object)


def industry_segments(company_names: pd.Series, policy: AudiencePolicy) -> pd.Series:
    """The industry each company name falls in, as the analysis labels it (``UNKNOWN``
    when nothing matches): the segment a campaign audience filters on for a contact whose
    outreach profile names none."""
    return _by_distinct(company_names, lambda u: _industries(u, policy))


def _needs(notes: pd.Series, policy: AudiencePolicy) -> npt.NDArray[np.object_]:
    folded = fold(notes)
    out = []
    for text in folded:
        tokens = set(_WORD.split(text))
        tags = [tag for tag, keys in policy.need_tags.items() if tokens & set(keys)]
        out.append(tuple(tags) if tags else ("(none)",))
    result = np.empty(len(out), dtype=object)
    result[:] = out  # keep tuples whole: np.array would make a 2-D array of them
    return result


def segment_contacts(contacts: pd.DataFrame, policy: ScoringPolicy) -> pd.DataFrame:
    """The contacts with one label column per dimension (``need`` holds tuples of tags).

    Industry comes from an ``industry`` column when present, else the configured
    company mapping, else company-name keywords; needs come from ``notes`` and
    ``inquiry`` text. Text is classified once per distinct value.
    """
    aud = policy.audience
    out = contacts.copy()
    explicit = _col(contacts, "industry")
    derived = _by_distinct(_col(contacts, "company_name"), lambda u: _industries(u, aud))
    out["industry"] = explicit.where(explicit.notna(), derived)
    out["country"] = _col(contacts, "country").astype(object).str.upper().fillna(UNKNOWN)
    out["state"] = _col(contacts, "state").astype(object).fillna(UNKNOWN)
    size_source = _col(contacts, "company_size")
    if size_source.isna().all():
        size_source = _col(contacts, "registry_size")
    size_names = np.array([UNKNOWN, *FACTOR_LEVELS["company_size"]], dtype=object)
    out["company_size"] = _by_distinct(
        size_source, lambda u: size_names[size_levels(u.astype(str), policy)]
    )
    level_names = np.array([UNKNOWN, *FACTOR_LEVELS["seniority"]], dtype=object)
    out["job_level"] = _by_distinct(
        _col(contacts, "job_title"), lambda u: level_names[job_levels(u.astype(str), policy)]
    )
    out["source_event"] = _col(contacts, "source_event").astype(object).fillna(UNKNOWN)
    text = (
        _col(contacts, "notes").astype(object).fillna("")
        + " "
        + _col(contacts, "inquiry").astype(object).fillna("")
    )
    need_codes, need_uniques = pd.factorize(text)
    tags = _needs(pd.Series(need_uniques, dtype=object), aud)
    out["need"] = pd.Series(tags[need_codes], index=contacts.index, dtype=object)
    return out


def _flags(df: pd.DataFrame) -> pd.DataFrame:
    """Per contact: contacted, responded, has an outcome, converted, complaints."""
    replies = pd.to_numeric(_col(df, "replies"), errors="coerce")
    opens = pd.to_numeric(_col(df, "opens"), errors="coerce")
    outcome = _col(df, "outcome").astype(object).str.strip().str.lower()
    return pd.DataFrame(
        {
            "contacted": (replies.notna() | opens.notna()).astype(int),
            "responded": (replies.fillna(0) > 0).astype(int),
            "with_outcome": outcome.isin(["won", "lost", "paid", "defaulted"]).astype(int),
            "converted": outcome.isin(["won", "paid"]).astype(int),
            "complaints": pd.to_numeric(_col(df, "complaints_total"), errors="coerce").fillna(0),
        },
        index=df.index,
    )


def segment_stats(segmented: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Count, mean score, band mix, response and conversion rates, complaints per segment."""
    frame = pd.concat([segmented[[dimension, "score", "band"]], _flags(segmented)], axis=1)
    if dimension == "need":
        frame = frame.explode("need")
    frame["band"] = frame["band"].astype(str)
    groups = frame.groupby(dimension, sort=True)
    stats = groups.agg(
        count=("score", "size"),
        mean_score=("score", "mean"),
        contacted=("contacted", "sum"),
        responded=("responded", "sum"),
        with_outcome=("with_outcome", "sum"),
        converted=("converted", "sum"),
        complaints=("complaints", "sum"),
    )
    mix = pd.crosstab(frame[dimension], frame["band"], normalize="index")
    mix = mix.reindex(columns=list(BANDS), fill_value=0.0).add_prefix("band_")
    stats = stats.join(mix)
    stats["response_rate"] = stats["responded"] / stats["contacted"].where(stats["contacted"] > 0)
    stats["conversion_rate"] = stats["converted"] / stats["with_outcome"].where(
        stats["with_outcome"] > 0
    )
    stats["complaint_rate"] = stats["complaints"] / stats["count"]
    stats = stats.reset_index(names="segment")
    stats.insert(0, "dimension", dimension)
    return stats.round(
        {"mean_score": 1, "response_rate": 4, "conversion_rate": 4, "complaint_rate": 4}
        | {f"band_{b}": 4 for b in BANDS}
    )


def _rank(segments: pd.DataFrame, policy: AudiencePolicy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Best and worst named segments of a useful size.

    Ranked by conversion, then response, then mean score, so outcomes speak first and
    the score only breaks ties (or decides when no outreach has happened yet).
    """
    named = segments[
        (segments["count"] >= policy.min_segment_size)
        & ~segments["segment"].isin([UNKNOWN, "(none)"])
    ]
    keys = ["conversion_rate", "response_rate", "mean_score", "count"]
    ordered = named.sort_values(
        [*keys, "dimension", "segment"],
        ascending=[False, False, False, False, True, True],
        na_position="last",
        kind="mergesort",
    )
    worst = named.sort_values(
        [*keys, "dimension", "segment"],
        ascending=[True, True, True, False, True, True],
        na_position="last",
        kind="mergesort",
    )
    n = policy.top_segments
    return ordered.head(n).reset_index(drop=True), worst.head(n).reset_index(drop=True)


def analyze_audience(
    contacts: pd.DataFrame, policy: ScoringPolicy, as_of: datetime
) -> AudienceReport:
    """Segment contacts (joined with score and band) and summarise every dimension."""
    segmented = segment_contacts(contacts, policy)
    segments = pd.concat([segment_stats(segmented, d) for d in DIMENSIONS], ignore_index=True)
    flags = _flags(segmented)
    funnel = {
        "contacts": len(segmented),
        "contacted": int(flags["contacted"].sum()),
        "responded": int(flags["responded"].sum()),
        "with_outcome": int(flags["with_outcome"].sum()),
        "converted": int(flags["converted"].sum()),
    }
    bands = segmented["band"].astype(str).value_counts()
    best, worst = _rank(segments, policy.audience)
    versions = _col(contacts, "scorecard_version").dropna().astype(str).unique()
    return AudienceReport(
        segments=segments,
        funnel=funnel,
        band_mix={b: int(bands.get(b, 0)) for b in BANDS},
        best=best,
        worst=worst,
        as_of=as_of,
        scorecard_version=";".join(sorted(versions)) or "unknown",
    )


# ---------------------------------------------------------------- rendering


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.0%}"


def _segment_line(row: pd.Series) -> str:
    return (
        f"{row['dimension']} = **{row['segment']}** ({row['count']} contacts, "
        f"conversion {_pct(row['conversion_rate'])}, response {_pct(row['response_rate'])}, "
        f"mean score {row['mean_score']})"
    )


def audience_markdown(
    report: AudienceReport, html_link: str | None = None, rows_per_dimension: int = 8
) -> str:
    """The summary for a Prefect markdown artifact: headline, funnel, best/worst, tables."""
    f = report.funnel
    lines = [
        f"# Target audience, {report.as_of:%Y-%m-%d}",
        "",
        f"{f['contacts']} contacts scored with `{report.scorecard_version}`; "
        f"{f['contacted']} contacted, {f['responded']} responded, "
        f"{f['converted']} converted of {f['with_outcome']} with an outcome.",
        "",
    ]
    if html_link:
        lines += [f"Full report with charts: [{html_link}]({html_link})", ""]
    lines += ["| band | contacts |", "|---|---:|"]
    lines += [f"| {b} | {n} |" for b, n in report.band_mix.items()]
    lines += ["", "**Best segments**", ""]
    lines += [f"{i}. {_segment_line(r)}" for i, (_, r) in enumerate(report.best.iterrows(), 1)]
    lines += ["", "**Worst segments**", ""]
    lines += [f"{i}. {_segment_line(r)}" for i, (_, r) in enumerate(report.worst.iterrows(), 1)]
    for dimension in DIMENSIONS:
        table = report.segments[report.segments["dimension"] == dimension]
        table = table.sort_values(["count", "segment"], ascending=[False, True]).head(
            rows_per_dimension
        )
        lines += [
            "",
            f"### {dimension.replace('_', ' ')}",
            "",
            "| segment | count | mean score | A | B | C | D | response | conversion | complaints |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for _, r in table.iterrows():
            lines.append(
                f"| {r['segment']} | {r['count']} | {r['mean_score']} | "
                + " | ".join(_pct(r[f"band_{b}"]) for b in BANDS)
                + f" | {_pct(r['response_rate'])} | {_pct(r['conversion_rate'])} | "
                f"{int(r['complaints'])} |"
            )
    return "\n".join(lines) + "\n"


_BAND_COLOURS = {"A": "#2e7d32", "B": "#9e9d24", "C": "#ef6c00", "D": "#c62828"}


def svg_bar_chart(
    title: str,
    bars: list[tuple[str, float, str]],
    value_format: str = "{:.0f}",
    width: int = 560,
) -> str:
    """A horizontal bar chart as inline SVG: (label, value, colour) per bar."""
    bar_h, gap, label_w, top = 22, 6, 170, 28
    height = top + len(bars) * (bar_h + gap) + 8
    largest = max((v for _, v, _ in bars if not pd.isna(v)), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="0" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    span = width - label_w - 70
    for i, (label, value, colour) in enumerate(bars):
        y = top + i * (bar_h + gap)
        v = 0.0 if pd.isna(value) else float(value)
        w = max(v / largest * span, 0.0)
        shown = "n/a" if pd.isna(value) else value_format.format(value)
        parts += [
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
            f"{html.escape(str(label)[:28])}</text>",
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>',
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{shown}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def audience_html(report: AudienceReport, rows_per_dimension: int = 10) -> str:
    """A standalone HTML page: band mix, funnel and response rate per segment, as SVG."""
    f = report.funnel
    charts = [
        svg_bar_chart("Band mix", [(b, n, _BAND_COLOURS[b]) for b, n in report.band_mix.items()]),
        svg_bar_chart(
            "Funnel",
            [
                ("contacts", f["contacts"], "#455a64"),
                ("contacted", f["contacted"], "#546e7a"),
                ("responded", f["responded"], "#0277bd"),
                ("with outcome", f["with_outcome"], "#00838f"),
                ("converted", f["converted"], "#2e7d32"),
            ],
        ),
    ]
    for dimension in DIMENSIONS:
        table = report.segments[report.segments["dimension"] == dimension]
        table = table.sort_values(["count", "segment"], ascending=[False, True]).head(
            rows_per_dimension
        )
        charts.append(
            svg_bar_chart(
                f"Response rate by {dimension.replace('_', ' ')}",
                [
                    (f"{segment} ({count})", float(rate), "#0277bd")
                    for segment, count, rate in zip(
                        table["segment"],
                        table["count"],
                        table["response_rate"].to_numpy(dtype=float),
                        strict=True,
                    )
                ],
                value_format="{:.0%}",
            )
        )

    def listing(frame: pd.DataFrame) -> str:
        items = "".join(
            "<li>" + html.escape(_segment_line(r).replace("**", "")) + "</li>"
            for _, r in frame.iterrows()
        )
        return f"<ol>{items}</ol>"

    body = "\n".join(f"<figure>{c}</figure>" for c in charts)
    table_html = report.segments.to_html(index=False, na_rep="n/a", border=0, classes="segments")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Target audience {report.as_of:%Y-%m-%d}</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "figure{display:inline-block;margin:0 2em 2em 0;vertical-align:top}"
        "table.segments{border-collapse:collapse;font-size:12px}"
        "table.segments td,table.segments th{padding:2px 6px;border-bottom:1px solid #ddd}"
        "</style></head><body>"
        f"<h1>Target audience, {report.as_of:%Y-%m-%d}</h1>"
        f"<p>{f['contacts']} contacts scored with "
        f"<code>{html.escape(report.scorecard_version)}</code>.</p>"
        f"<h2>Best segments</h2>{listing(report.best)}"
        f"<h2>Worst segments</h2>{listing(report.worst)}"
        f"{body}<h2>All segments</h2>{table_html}</body></html>\n"
    )


def write_audience_html(report: AudienceReport, path: Path) -> Path:
    """Write the HTML report to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(audience_html(report), encoding="utf-8")
    return path
