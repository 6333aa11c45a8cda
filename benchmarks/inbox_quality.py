"""Human-mail classification quality: per-class precision and recall, severity accuracy.

Reads the corpus of ``tests/fixtures/mail_corpus`` (held-out and training splits, reported
apart: the model and the thresholds were chosen on the training split only), the labelled
fixtures of ``tests/fixtures/mail``, and optionally a folder of arbitrary mail with no
labels (CPython's ``Lib/test/test_email/data``), for which it counts classes, leads and
crashes. ``--split heldout2`` scores only the second held-out split
(``labels_heldout2.csv``, written by other hands after the first was worn by repeated
scoring); it is not in the default run, so tuning never shows it by accident.
``--split heldout3`` (``labels_heldout3.csv``, whole messages written by a third hand that
read neither the corpus texts nor the cue lists) is kept out of the default run the same way.
Run: ``.venv/bin/python -m benchmarks.inbox_quality [--split NAME] [--arbitrary DIR] [--json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tasks.inbox.classification import Classification, MailClassifier
from tasks.inbox.human_model import CORPUS
from tasks.inbox.parsing import parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mail"


def predicted_class(result: Classification) -> str:
    return result.label.value


def report(
    truth: Sequence[str],
    predicted: Sequence[str],
    severity_truth: Sequence[str] = (),
    severity_predicted: Sequence[str | None] = (),
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/support, and severity accuracy on true complaints.

    Severity is scored on every labelled complaint: a complaint read as another class
    counts as a wrong severity, so a missed complaint is not hidden.
    """
    hits = Counter(t for t, p in zip(truth, predicted, strict=True) if t == p)
    said, real = Counter(predicted), Counter(truth)
    per_class = {
        c: {
            "precision": round(hits[c] / said[c], 3) if said[c] else None,
            "recall": round(hits[c] / real[c], 3) if real[c] else None,
            "support": real[c],
        }
        for c in sorted(set(truth) | set(predicted))
    }
    out: dict[str, Any] = {
        "messages": len(truth),
        "accuracy": round(sum(hits.values()) / len(truth), 3),
        "per_class": per_class,
        "confusions": {
            f"{t} -> {p}": n
            for (t, p), n in Counter(
                (t, p) for t, p in zip(truth, predicted, strict=True) if t != p
            ).most_common()
        },
    }
    if severity_truth:
        right = sum(t == p for t, p in zip(severity_truth, severity_predicted, strict=True))
        out["severity_accuracy"] = round(right / len(severity_truth), 3)
        out["severity_complaints"] = len(severity_truth)
        out["severity_by_level"] = {
            level: {
                "right": sum(
                    t == p == level for t, p in zip(severity_truth, severity_predicted, strict=True)
                ),
                "of": sum(t == level for t in severity_truth),
                "read_as": dict(
                    Counter(
                        p or "not a complaint"
                        for t, p in zip(severity_truth, severity_predicted, strict=True)
                        if t == level and p != level
                    )
                ),
            }
            for level in ("low", "medium", "high", "critical")
        }
    return out


def labelled(
    rows: Iterable[dict[str, str]], root: Path, classifier: MailClassifier
) -> dict[str, Any]:
    truth: list[str] = []
    predicted: list[str] = []
    severity_truth: list[str] = []
    severity_predicted: list[str | None] = []
    for row in rows:
        result = classifier.classify(parse_message((root / row["file"]).read_bytes()))
        truth.append(row["class"])
        predicted.append(predicted_class(result))
        if row["class"] == "complaint":
            severity_truth.append(row["severity"])
            severity_predicted.append(
                result.severity if result.label.value == "complaint" else None
            )
    return report(truth, predicted, severity_truth, severity_predicted)


SPLIT_LABELS = {
    "train": "labels.csv",
    "heldout": "labels.csv",
    "heldout2": "labels_heldout2.csv",
    "heldout3": "labels_heldout3.csv",
}


def corpus_rows(split: str, corpus: Path = CORPUS) -> list[dict[str, str]]:
    with (corpus / SPLIT_LABELS[split]).open(encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["split"] == split]


DEFAULT_SPLITS = ("heldout", "train", "fixtures")


def arbitrary(directory: Path, classifier: MailClassifier) -> dict[str, Any]:
    """Classes of every file in ``directory`` (no labels): how many would become leads."""
    classes: Counter[str] = Counter()
    crashes: list[str] = []
    files = sorted(p for p in directory.iterdir() if p.is_file())
    for path in files:
        try:
            classes[classifier.classify(parse_message(path.read_bytes())).label.value] += 1
        except Exception as exc:  # counted, not raised: the figure is how many crash
            crashes.append(f"{path.name}: {type(exc).__name__}")
    return {
        "files": len(files),
        "classes": dict(sorted(classes.items())),
        "leads": classes["lead"],
        "crashes": crashes,
    }


def run(
    arbitrary_dir: Path | None = None, splits: Sequence[str] = DEFAULT_SPLITS
) -> dict[str, Any]:
    classifier = MailClassifier.default()
    out: dict[str, Any] = {}
    for split in splits:
        if split == "fixtures":
            with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
                out[split] = labelled(list(csv.DictReader(fh)), FIXTURES, classifier)
        else:
            out[split] = labelled(corpus_rows(split), CORPUS, classifier)
    if arbitrary_dir is not None:
        out["arbitrary"] = arbitrary(arbitrary_dir, classifier)
    return out


def _print(name: str, result: dict[str, Any]) -> None:
    if "accuracy" not in result:
        print(f"{name}: {json.dumps(result)}")
        return
    severity = (
        f", severity accuracy {result['severity_accuracy']:.3f} on {result['severity_complaints']}"
        if "severity_accuracy" in result
        else ""
    )
    print(f"{name}: {result['messages']} messages, accuracy {result['accuracy']:.3f}{severity}")
    for cls, figures in result["per_class"].items():
        print(
            f"  {cls:12s} n={figures['support']:3d}  precision={figures['precision']}  "
            f"recall={figures['recall']}"
        )
    for level, figures in result.get("severity_by_level", {}).items():
        print(
            f"  severity {level:8s} {figures['right']}/{figures['of']}  "
            f"wrong as {figures['read_as']}"
        )
    if result["confusions"]:
        print("  confusions: " + ", ".join(f"{k} {v}" for k, v in result["confusions"].items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split",
        action="append",
        choices=[*SPLIT_LABELS, "fixtures"],
        help="a split to score (repeatable); default: heldout, train and fixtures",
    )
    parser.add_argument("--arbitrary", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.arbitrary, args.split or DEFAULT_SPLITS)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            _print(key, value)
