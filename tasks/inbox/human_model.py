"""The learned half of human-mail classification: character n-grams into a linear model.

Rules name what the team knows to look for; the model carries what the rules miss
(paraphrase, another writer's register, a language's inflections) and weighs the rules'
own scores as features, so it learns how far to trust each. It is trained by
``python -m tasks.inbox.human_model train`` from the training split of the committed corpus
(``tests/fixtures/mail_corpus``) and shipped as ``human_model.json``: vocabulary, idf and
weights, no pickle, so loading is a JSON read (tens of milliseconds), it survives
scikit-learn upgrades, and the file can be diffed. Inference does not import scikit-learn:
the same analyzer feeds a dictionary lookup and a dot product, which the tests check
against scikit-learn's own transform.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PATH = Path(__file__).resolve().with_name("human_model.json")
CLASSES = ("lead", "complaint", "auto_reply", "unsubscribe", "spam", "rsvp", "other")
SEVERITIES = ("low", "medium", "high", "critical")
# Only the start of a message is read: requests, complaints and footers show there, and
# the cost of the analyzer grows with the text.
MAX_CHARS = 3000
CHAR_NGRAMS = (3, 5)
_WORD = re.compile(r"\w\w+")
_WORD_CACHE_SIZE = 200_000  # words; about 100 MB at most, far less in practice
_SPACES = re.compile(r"\s+")


def fold_lower(text: str) -> str:
    """Lower case without accents, so "Não", "nao" and "NAO" are one feature."""
    text = text.lower()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _normalised(text: str) -> str:
    return _SPACES.sub(" ", fold_lower(text[:MAX_CHARS]))


def _char_grams(word: str) -> list[str]:
    """A word's character n-grams, padded with a space each side as ``char_wb`` does."""
    padded = f" {word} "
    size = len(padded)
    low, high = CHAR_NGRAMS
    if size < low:
        return [padded]
    return [
        padded[start : start + n]
        for n in range(low, min(high, size) + 1)
        for start in range(size - n + 1)
    ]


def _word_grams(words: list[str]) -> list[str]:
    return ["w:" + w for w in words] + [f"w:{a} {b}" for a, b in pairwise(words)]


def analyze(text: str) -> list[str]:
    """Character n-grams inside words (3 to 5) and word uni- and bigrams (``w:`` prefix).

    Character n-grams carry inflection and typos across PT, ES and EN; word n-grams make
    the evidence readable ("w:letter before", "w:procon").
    """
    text = _normalised(text)
    grams: list[str] = []
    for word in text.split(" "):
        if word:
            grams.extend(_char_grams(word))
    grams.extend(_word_grams(_WORD.findall(text)))
    return grams


@dataclass(frozen=True)
class Prediction:
    """Class probabilities and the features that pushed the winner up the most."""

    probabilities: Mapping[str, float]
    label: str
    top_features: tuple[str, ...]


class _Linear:
    """A multinomial logistic regression over tf-idf features plus named dense features."""

    def __init__(self, data: Mapping[str, Any], vocabulary: Mapping[str, int], idf: np.ndarray):
        self.classes: tuple[str, ...] = tuple(data["classes"])
        self.dense: tuple[str, ...] = tuple(data["dense"])
        self.coef = np.asarray(data["coef"], dtype=np.float64)
        self.intercept = np.asarray(data["intercept"], dtype=np.float64)
        self.vocabulary = vocabulary
        self.idf = idf
        self.names = [""] * len(vocabulary)
        for gram, index in vocabulary.items():
            self.names[index] = gram
        self.is_word = np.array([name.startswith("w:") for name in self.names], dtype=bool)

    def predict(
        self, indices: np.ndarray, values: np.ndarray, dense: Mapping[str, float], top: int = 6
    ) -> Prediction:
        n_text = len(self.vocabulary)
        dense_values = np.array([dense.get(name, 0.0) for name in self.dense])
        logits = self.intercept.copy()
        if len(indices):
            logits += self.coef[:, indices] @ values
        logits += self.coef[:, n_text:] @ dense_values
        logits -= logits.max()
        probs = np.exp(logits)
        probs /= probs.sum()
        best = int(np.argmax(probs))
        if len(self.classes) > 2:
            contrib_text = self.coef[best, indices] * values
        else:  # binary: one row of weights, positive for classes[1]
            contrib_text = self.coef[0, indices] * values * (1 if best else -1)
        contrib_dense = self.coef[best if len(self.classes) > 2 else 0, n_text:] * dense_values
        contributions = np.concatenate([contrib_text, contrib_dense])
        positions = np.concatenate([indices, np.arange(n_text, n_text + len(self.dense))])
        strongest = np.argsort(-contributions)[: 4 * top]
        ranked = [int(positions[k]) for k in strongest if contributions[k] > 0]
        readable = [self.label_of(i) for i in ranked if i >= n_text or self.is_word[i]][:top]
        if len(readable) < top:
            chars = [f"'{self.names[i]}'" for i in ranked if i < n_text and not self.is_word[i]]
            readable += chars[: top - len(readable)]
        return Prediction(
            {c: float(p) for c, p in zip(self.classes, probs, strict=True)},
            self.classes[best],
            tuple(readable),
        )

    def label_of(self, position: int) -> str:
        """A feature as the evidence shows it: a word, a bracketed dense name, or n-gram."""
        if position >= len(self.names):
            return f"[{self.dense[position - len(self.names)]}]"
        return self.names[position].removeprefix("w:")


class HumanMailModel:
    """The shipped model: one vectorizer, a class model and a complaint-severity model."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        vocab: dict[str, int] = {g: i for i, g in enumerate(data["vocabulary"])}
        self.vocabulary = vocab
        self.idf = np.asarray(data["idf"], dtype=np.float64)
        self.cls = _Linear(data["class_model"], vocab, self.idf)
        self.severity = _Linear(data["severity_model"], vocab, self.idf)
        self.thresholds: dict[str, float] = dict(data["thresholds"])
        self.trained_on: dict[str, Any] = dict(data.get("trained_on", {}))
        self._word_cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> HumanMailModel:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def vectorize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear tf-idf, l2-normalised: scikit-learn's ``TfidfVectorizer`` arithmetic.

        A word's in-vocabulary character n-grams are looked up once and remembered, since
        the same words recur from message to message.
        """
        text = _normalised(text)
        vocab, cache = self.vocabulary, self._word_cache
        found: list[int] = []
        for word in text.split(" "):
            if not word:
                continue
            known = cache.get(word)
            if known is None:
                known = [vocab[g] for g in _char_grams(word) if g in vocab]
                if len(cache) < _WORD_CACHE_SIZE:
                    cache[word] = known
            found.extend(known)
        found.extend(vocab[g] for g in _word_grams(_WORD.findall(text)) if g in vocab)
        if not found:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        indices, counts = np.unique(np.array(found, dtype=np.intp), return_counts=True)
        tf = 1.0 + np.log(counts)
        values = tf * self.idf[indices]
        norm = float(np.sqrt(values @ values))
        return indices, values / norm if norm else values

    def predict(
        self, text: str, dense: Mapping[str, float]
    ) -> tuple[Prediction, tuple[np.ndarray, np.ndarray]]:
        """The class, and the text's vector for ``predict_severity`` to reuse."""
        indices, values = self.vectorize(text)
        return self.cls.predict(indices, values, dense), (indices, values)

    def predict_severity(
        self, vector: tuple[np.ndarray, np.ndarray], dense: Mapping[str, float]
    ) -> Prediction:
        return self.severity.predict(vector[0], vector[1], dense)


@lru_cache(maxsize=2)
def load_model(path: Path = MODEL_PATH) -> HumanMailModel:
    """The shipped model, read once per process."""
    return HumanMailModel.load(path)


# --- training (scikit-learn; run by the script, never at inference) ---------------------------


def _as_is(grams: list[str]) -> list[str]:
    return grams


def fit(
    grams: Sequence[list[str]],
    dense: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    severity_rows: Sequence[int],
    severities: Sequence[str],
    dense_names: Sequence[str],
    severity_dense_names: Sequence[str],
    c_class: float = 10.0,
    c_severity: float = 10.0,
    min_df: int = 2,
) -> dict[str, Any]:
    """Fit the vectorizer and both linear models; returns the JSON-able artifact.

    ``grams`` are the documents already through ``analyze`` (analysed once per training
    run, not once per fit).
    """
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        analyzer=_as_is, sublinear_tf=True, min_df=min_df, dtype=np.float64
    )
    x_text = vectorizer.fit_transform(grams)

    def with_dense(rows: Sequence[int], names: Sequence[str]) -> Any:
        block = np.array([[dense[r].get(n, 0.0) for n in names] for r in rows])
        return hstack([x_text[list(rows)], csr_matrix(block)]).tocsr()

    everything = list(range(len(grams)))
    classes = LogisticRegression(C=c_class, max_iter=5000)
    classes.fit(with_dense(everything, dense_names), list(labels))
    severity = LogisticRegression(C=c_severity, max_iter=5000)
    severity.fit(with_dense(severity_rows, severity_dense_names), list(severities))
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, index in vectorizer.vocabulary_.items():
        vocabulary[index] = gram

    def export(model: Any, names: Sequence[str]) -> dict[str, Any]:
        return {
            "classes": [str(c) for c in model.classes_],
            "dense": list(names),
            "coef": np.round(model.coef_, 6).tolist(),
            "intercept": np.round(model.intercept_, 6).tolist(),
        }

    return {
        "vocabulary": vocabulary,
        "idf": np.round(vectorizer.idf_, 6).tolist(),
        "class_model": export(classes, dense_names),
        "severity_model": export(severity, severity_dense_names),
    }


# --- the training script -------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mail_corpus"
FIXTURES = CORPUS.with_name("mail")
# Classes that reach the model: bounces and malformed mail are decided before it.
_HUMAN = frozenset(CLASSES)


@dataclass(frozen=True)
class Example:
    """One labelled corpus message, parsed and read by the rules."""

    file: str
    label: str
    severity: str
    language: str
    split: str
    fold: str
    features: Any  # ModelInput
    grams: list[str]


def corpus_examples(
    corpus: Path = CORPUS, split: str | None = None, fold: str | None = None
) -> list[Example]:
    """The corpus rows (optionally one split), read by a model-less classifier.

    ``fold`` names the fold of every row when the labels have none (the labelled fixtures
    of ``tests/fixtures/mail``, whose bounces and malformed files are left out).
    """
    import csv

    from config.inbox_policy import load_inbox_policy
    from tasks.inbox.classification import MailClassifier
    from tasks.inbox.parsing import Malformed, parse_message

    reader = MailClassifier(load_inbox_policy(), with_model=False)
    out: list[Example] = []
    with (corpus / "labels.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if split is not None and row.get("split") != split:
                continue
            if row["class"] not in _HUMAN:
                continue
            parsed = parse_message((corpus / row["file"]).read_bytes())
            if isinstance(parsed, Malformed):
                raise ValueError(f"{row['file']}: corpus message is malformed ({parsed.reason})")
            if reader.decided_by_headers(parsed) is not None:
                continue  # never reaches the model, so it must not teach it
            features = reader.read(parsed).features
            out.append(
                Example(
                    row["file"],
                    row["class"],
                    row["severity"],
                    row["language"],
                    row.get("split", "train"),
                    fold if fold is not None else row["fold"],
                    features,
                    analyze(features.text),
                )
            )
    return out


def train(examples: Sequence[Example], c_class: float, c_severity: float) -> dict[str, Any]:
    """Fit both models on ``examples`` (the caller chooses which split that is)."""
    dense_names = sorted(examples[0].features.dense)
    severity_names = sorted(examples[0].features.severity_dense)
    complaints = [i for i, e in enumerate(examples) if e.label == "complaint"]
    return fit(
        [e.grams for e in examples],
        [{**e.features.dense, **e.features.severity_dense} for e in examples],
        [e.label for e in examples],
        complaints,
        [examples[i].severity for i in complaints],
        dense_names,
        severity_names,
        c_class=c_class,
        c_severity=c_severity,
    )


def _cross_validate(
    examples: Sequence[Example], c_class: float, c_severity: float
) -> tuple[list[dict[str, float]], list[str], list[str | None]]:
    """Probabilities, best classes and severities of each fold from a model fit on the other.

    The folds share no fragment (see ``make_corpus.py``), so these figures behave like the
    held-out split's: random folds would share sentences and flatter the model.
    """
    probabilities: list[dict[str, float]] = [{} for _ in examples]
    best: list[str] = [""] * len(examples)
    graded: list[str | None] = [None] * len(examples)
    for fold in ("a", "b"):
        fitted = [e for e in examples if e.fold != fold]
        model = HumanMailModel(train(fitted, c_class, c_severity) | {"thresholds": {}})
        for i, e in enumerate(examples):
            if e.fold != fold:
                continue
            prediction, vector = model.predict(e.features.text, e.features.dense)
            probabilities[i], best[i] = dict(prediction.probabilities), prediction.label
            if e.label == "complaint":
                graded[i] = model.predict_severity(vector, e.features.severity_dense).label
    return probabilities, best, graded


def _accuracy_at(
    examples: Sequence[Example],
    probabilities: Sequence[Mapping[str, float]],
    best: Sequence[str],
    thresholds: Mapping[str, float],
) -> float:
    """Class accuracy on the scored examples once the policy's thresholds are applied."""
    right = scored = 0
    for e, probs, label in zip(examples, probabilities, best, strict=True):
        if not probs:
            continue
        scored += 1
        right += apply_thresholds(label, probs[label], thresholds) == e.label
    return right / scored


def apply_thresholds(label: str, probability: float, thresholds: Mapping[str, float]) -> str:
    """``other`` for a best class below its bar: any class, and leads and complaints higher."""
    bar = max(thresholds["uncertain_below"], thresholds.get(f"{label}_needs", 0.0))
    return label if probability >= bar else "other"


THRESHOLD_GRID = [
    {"uncertain_below": u, "lead_needs": lead, "complaint_needs": complaint}
    for u in (0.0, 0.2, 0.3, 0.4, 0.5)
    for lead in (0.0, 0.4, 0.5, 0.6, 0.7)
    for complaint in (0.0, 0.4, 0.5, 0.6, 0.7)
]


def main(argv: Sequence[str] | None = None) -> None:
    """``train``: choose C and the thresholds across the training folds, then fit on both."""
    import argparse
    import hashlib

    parser = argparse.ArgumentParser(description="Train the shipped human-mail model.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    # The labelled fixtures join every fit; the rules were written on them, so they are
    # training data, never scored.
    examples = corpus_examples(args.corpus, split="train") + corpus_examples(
        FIXTURES, fold="fixtures"
    )
    results = []
    for c_class in (10.0, 30.0):
        probabilities, best, graded = _cross_validate(examples, c_class, c_class)
        severity_right = [
            g == e.severity for g, e in zip(graded, examples, strict=True) if g is not None
        ]
        # Highest accuracy; among ties, the strictest bars (a wrong lead or complaint costs
        # more than a message on the review list).
        accuracy, strictness, chosen = max(
            (
                (round(_accuracy_at(examples, probabilities, best, t), 3), sum(t.values()), t)
                for t in THRESHOLD_GRID
            ),
            key=lambda r: r[:2],
        )
        severity = sum(severity_right) / len(severity_right)
        print(
            f"C={c_class:g}: cross-fold class accuracy {accuracy:.3f} at {chosen}, "
            f"severity accuracy {severity:.3f}"
        )
        results.append((accuracy + severity, strictness, c_class, chosen))
    _, _, c_best, thresholds = max(results, key=lambda r: r[:3])
    artifact = train(examples, c_best, c_best)
    digest = hashlib.sha256((args.corpus / "labels.csv").read_bytes()).hexdigest()
    artifact["thresholds"] = thresholds
    artifact["trained_on"] = {
        "corpus": "tests/fixtures/mail_corpus",
        "split": "train",
        "messages": len(examples),
        "labels_sha256": digest,
        "C": c_best,
    }
    args.out.write_text(json.dumps(artifact, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), C={c_best:g}")
    print(f"thresholds for config/inbox.yaml: {thresholds}")


if __name__ == "__main__":
    main()
