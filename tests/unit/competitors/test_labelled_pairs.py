"""The labelled page-version pairs (benchmarks/competitor_pairs.py) hold the classifier to
its target on the held-out templates; the training ones guard against regressions."""

from __future__ import annotations

import pytest

from benchmarks.competitor_pairs import pairs
from tasks.competitors.diffing import assess
from tasks.competitors.extraction import html_text


def test_labelled_set_has_200_pairs_in_three_languages_and_a_disjoint_heldout_part() -> None:
    labelled = pairs()
    assert len(labelled) >= 200
    assert {p.lang for p in labelled} == {"pt", "es", "en"}
    train = {p.template for p in labelled if p.split == "train"}
    heldout = {p.template for p in labelled if p.split == "heldout"}
    assert train and heldout and not train & heldout
    assert {p.lang for p in labelled if p.split == "heldout"} == {"pt", "es", "en"}


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_material_change_precision_and_recall_reach_095(split: str) -> None:
    tp = fp = fn = 0
    for p in (x for x in pairs() if x.split == split):
        found = assess(html_text(p.before), html_text(p.after)).material
        tp += found and p.material
        fp += found and not p.material
        fn += (not found) and p.material
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.95
