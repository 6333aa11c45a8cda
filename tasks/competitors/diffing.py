"""What changed between two snapshots of a page, and whether it matters.

The diff (difflib, over passages) is what a person reads; materiality is decided on the
page's facts (``classification.facts``): a value moved, a clause stating a point appeared
or went, or a clause turned negative. A change whose facts are equal (a new date, a menu,
a reworded sentence, whitespace, sentences reordered) is cosmetic and raises no event.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from config.competitors_policy import PolicyPoint
from tasks.competitors.classification import Passage, analyse, fact, facts, render_value

DIFF_CONTEXT = 1
MAX_DIFF_CHARS = 20_000


@dataclass(frozen=True)
class PointChange:
    """One point's statements before and after, and what kind of move that was."""

    point: PolicyPoint
    what: str  # value moved | clause added | clause removed | clause negated | clause changed
    before: tuple[str, ...]
    after: tuple[str, ...]

    def describe(self) -> str:
        name = self.point.value.replace("_", " ")
        before = ", ".join(self.before) or "-"
        after = ", ".join(self.after) or "-"
        if self.what == "value moved":
            return f"{name}: {before} → {after}"
        if self.what == "clause added":
            return f"{name}: clause added ({after})"
        if self.what == "clause removed":
            return f"{name}: clause removed ({before})"
        return f"{name}: {self.what} ({before} → {after})"


@dataclass(frozen=True)
class Assessment:
    material: bool
    points: tuple[PolicyPoint, ...]  # the points whose statements changed (or touched)
    changes: tuple[PointChange, ...]
    diff: str
    removed: tuple[str, ...] = field(default=())
    added: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return "material" if self.material else "cosmetic"

    def summary(self) -> str:
        if not self.changes:
            return "cosmetic: no policy statement changed"
        return "; ".join(c.describe() for c in self.changes)


def _render(values: tuple[tuple[str, ...], ...]) -> tuple[str, ...]:
    return tuple(render_value(v) for v in values)


def _point_change(point: PolicyPoint, gone: list[Passage], new: list[Passage]) -> PointChange:
    before = _render(tuple(sorted({v for p in gone for v in p.values})))
    after = _render(tuple(sorted({v for p in new for v in p.values})))
    if gone and not new:
        what = "clause removed"
    elif new and not gone:
        what = "clause added"
    elif {f.negated for f in gone} != {f.negated for f in new}:
        what = "clause negated"
    elif before != after:
        what = "value moved"
    else:
        what = "clause changed"
    return PointChange(point, what, before, after)


def _carriers(analysed: list[Passage], wanted: Counter[Any]) -> list[Passage]:
    """The passages that assert the facts in ``wanted`` (each fact taken once per count)."""
    left = Counter(wanted)
    out = []
    for passage in analysed:
        key = fact(passage)
        if key is not None and left[key] > 0:
            left[key] -= 1
            out.append(passage)
    return out


def unified_diff(old: list[str], new: list[str]) -> str:
    """A unified diff of passages, bounded so that a rewritten page stays storable."""
    lines = difflib.unified_diff(
        old, new, fromfile="before", tofile="after", n=DIFF_CONTEXT, lineterm=""
    )
    text = "\n".join(lines)
    if len(text) > MAX_DIFF_CHARS:
        text = text[:MAX_DIFF_CHARS] + "\n… (diff cut)"
    return text


def assess(old_text: str, new_text: str) -> Assessment:
    """Diff two versions of a page's canonical text and judge the change (module docstring)."""
    old_p, new_p = analyse(old_text), analyse(new_text)
    old_lines, new_lines = [p.text for p in old_p], [p.text for p in new_p]
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    removed: list[Passage] = []
    added: list[Passage] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += old_p[i1:i2]
            added += new_p[j1:j2]
    before, after = facts(old_p), facts(new_p)
    gone_p, new_p_ = _carriers(old_p, before - after), _carriers(new_p, after - before)
    changes = []
    for point in PolicyPoint:
        g = [p for p in gone_p if point in p.points]
        n = [p for p in new_p_ if point in p.points]
        if g or n:
            changes.append(_point_change(point, g, n))
    touched = Counter(pt for p in (*removed, *added) for pt in p.points)
    points = tuple(c.point for c in changes) or tuple(pt for pt in PolicyPoint if touched[pt])
    return Assessment(
        material=bool(changes),
        points=points,
        changes=tuple(changes),
        diff=unified_diff(old_lines, new_lines),
        removed=tuple(p.text for p in removed),
        added=tuple(p.text for p in added),
    )


def current_statements(text: str) -> dict[PolicyPoint, list[str]]:
    """Per point, the values a page states now (or its first passage on the point when it
    states none): a competitor's cell in the side-by-side table."""
    out: dict[PolicyPoint, list[str]] = {}
    first_passage: dict[PolicyPoint, str] = {}
    for passage in analyse(text):
        for point in passage.points:
            first_passage.setdefault(point, passage.text)
            shown = [render_value(v) for v in passage.values]
            if passage.negated:
                shown = [f"not {s}" for s in shown] or ["not offered"]
            for s in shown:
                if s not in out.setdefault(point, []):
                    out[point].append(s)
    for point, text_ in first_passage.items():
        if not out.get(point):
            out[point] = [text_ if len(text_) <= 90 else text_[:89] + "…"]
    return out
