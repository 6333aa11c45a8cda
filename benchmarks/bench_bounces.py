"""Bounce reading on real mail we did not write, beside flufl.bounce, per corpus and split.

    python -m benchmarks.bench_bounces            # JSON figures
    python -m benchmarks.bench_bounces --misses   # also the files we get wrong (tuning part)

Per corpus and per part (tuning, held-out): our recognition rate of failure bounces and
flufl.bounce's, recipient recovery, hard/soft agreement with the corpus's truth, wrongful
suppressions (an address suppressed for a reason that says nothing bad about it), and
feedback-loop reports that suppress the reported recipient.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from benchmarks.mail_corpora import (
    Score,
    corpora_dir,
    flufl_corpus,
    score_bounceparser,
    score_flufl,
    score_sisimai,
    sisimai_untruthed,
)
from tasks.inbox.classification import MailClassifier


def _both(scores: dict[str, Score], misses: bool) -> dict[str, Any]:
    out: dict[str, Any] = {part: score.as_dict() for part, score in scores.items()}
    whole = Score()
    for score in scores.values():
        for name in (
            "files", "failures", "recognised", "flufl_recognised", "recipient_expected",
            "recipient_found", "hard_known", "hard_agree", "hard_agree_sisimai",
            "wrongful_suppressions", "feedback", "feedback_suppressed", "feedback_via_outbox",
            "message_id_present", "message_id_recovered", "reason_known", "reason_agree",
            "not_bounces", "not_bounces_as_bounce",
        ):  # fmt: skip
            setattr(whole, name, getattr(whole, name) + getattr(score, name))
        whole.wrongful_by_reason += score.wrongful_by_reason
        whole.failures_as += score.failures_as
    out["all"] = whole.as_dict()
    if misses:
        out["tuning_misses"] = scores["tuning"].misses
        out["tuning_disagreements"] = scores["tuning"].disagreements
        out["tuning_reason_disagreements"] = scores["tuning"].reason_disagreements
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", action="store_true", help="list tuning-part mistakes")
    args = parser.parse_args(argv)
    classifier = MailClassifier.default()
    started = time.perf_counter()
    result: dict[str, Any] = {}
    root = corpora_dir()
    if root is None:
        print("shared corpora not found (set ACCOUNTFLOW_CORPORA_DIR)", file=sys.stderr)
    else:
        result["sisimai"] = _both(score_sisimai(root / "sisimai", classifier), args.misses)
        untruthed = list(sisimai_untruthed(root / "sisimai", classifier))
        result["sisimai"]["without_truth"] = {
            "files": len(untruthed),
            "read_as": dict(Counter(r.label.value for r in untruthed)),
        }
        result["bounceparser"] = _both(
            score_bounceparser(root / "bounceparser", classifier), args.misses
        )
    tests = flufl_corpus()
    if tests is None:
        print("flufl.bounce's corpus could not be fetched", file=sys.stderr)
    else:
        result["flufl.bounce"] = _both(score_flufl(tests, classifier), args.misses)
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
