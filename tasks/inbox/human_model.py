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
from collections import Counter
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
        # A model may read only its named numbers (``"text": false``): the severity model
        # does, since wording learnt from a few hundred complaints did not carry to others.
        self.uses_text = bool(data.get("text", True))
        self.vocabulary = vocabulary if self.uses_text else {}
        self.idf = idf
        self.names = [""] * len(self.vocabulary)
        for gram, index in self.vocabulary.items():
            self.names[index] = gram
        self.is_word = np.array([name.startswith("w:") for name in self.names], dtype=bool)

    def predict(
        self, indices: np.ndarray, values: np.ndarray, dense: Mapping[str, float], top: int = 6
    ) -> Prediction:
        n_text = len(self.vocabulary)
        if not self.uses_text:
            indices, values = indices[:0], values[:0]
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
        # The lowest rule level that is a floor for the model's severity (see ``graded``).
        self.severity_floor: str = data["severity_model"].get("floor_from", "medium")
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


@dataclass(frozen=True)
class Settings:
    """What the training script chooses by cross-validation."""

    c_class: float = 10.0
    class_weight: str | None = None
    c_severity: float = 10.0
    severity_text: bool = True
    min_df: int = 2
    floor_from: str = "medium"


def _vectorize(grams: Sequence[list[str]], min_df: int) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        analyzer=_as_is, sublinear_tf=True, min_df=min_df, dtype=np.float64
    )
    return vectorizer, vectorizer.fit_transform(grams)


def _design(x_text: Any, dense: Sequence[Mapping[str, float]], names: Sequence[str]) -> Any:
    """Text columns (or none, when ``x_text`` is None) followed by the named numbers."""
    from scipy.sparse import csr_matrix, hstack

    block = csr_matrix(np.array([[row.get(n, 0.0) for n in names] for row in dense]))
    return block if x_text is None else hstack([x_text, block]).tocsr()


def _linear(x: Any, y: Sequence[str], c: float, class_weight: str | None) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=class_weight, max_iter=5000).fit(x, list(y))


def _export(model: Any, names: Sequence[str], text: bool) -> dict[str, Any]:
    return {
        "classes": [str(c) for c in model.classes_],
        "dense": list(names),
        "text": text,
        "coef": np.round(model.coef_, 6).tolist(),
        "intercept": np.round(model.intercept_, 6).tolist(),
    }


# --- the training script -------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mail_corpus"
FIXTURES = CORPUS.with_name("mail")
# Every labels file of the corpus trains, each split of it a writer (a CV group): the
# composed messages, their held-out split (worn by repeated scoring), the whole bodies of
# other hands (train2; heldout2 and heldout3, each once scored and reported) and more
# (train3, when merged). A held-out split scored once joins training afterwards; a fresh
# one is kept apart.
TRAINING_LABELS = (
    "labels.csv",
    "labels_train2.csv",
    "labels_heldout2.csv",
    "labels_train3.csv",
    "labels_heldout3.csv",
)


def training_labels(corpus: Path = CORPUS) -> list[str]:
    """The training labels files present in ``corpus`` (train3 arrives on its own branch)."""
    return [labels for labels in TRAINING_LABELS if (corpus / labels).exists()]


def writer_of(labels: str, split: str) -> str:
    """The CV group of a corpus row: its split in the composed corpus, else its labels file."""
    if labels == "labels.csv":
        return "composed" if split == "train" else split
    return labels.removeprefix("labels_").removesuffix(".csv")


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
    source: str = ""

    @property
    def rule_severity(self) -> str:
        """The severity the policy's rules give (a floor the model may only raise)."""
        return str(self.features.severity_rules(self.features.folded)[0])


def corpus_examples(
    corpus: Path = CORPUS,
    split: str | None = None,
    fold: str | None = None,
    labels: str = "labels.csv",
) -> list[Example]:
    """The rows of one labels file (optionally one split), read by a model-less classifier.

    ``fold`` names the fold of every row when the labels have none (the labelled fixtures
    of ``tests/fixtures/mail``, whose bounces and malformed files are left out).
    """
    import csv

    from config.inbox_policy import load_inbox_policy
    from tasks.inbox.classification import MailClassifier
    from tasks.inbox.parsing import Malformed, parse_message

    reader = MailClassifier(load_inbox_policy(), with_model=False)
    out: list[Example] = []
    with (corpus / labels).open(encoding="utf-8") as fh:
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
                    source=fold if fold is not None else writer_of(labels, row["split"]),
                )
            )
    return out


def training_examples(corpus: Path = CORPUS) -> list[Example]:
    """Every corpus row of every training labels file, and the labelled fixtures.

    The fixtures are a writer too (the rules were written on them): fitted with the rest,
    and held out in turn like every other writer.
    """
    out: list[Example] = []
    for labels in training_labels(corpus):
        out += corpus_examples(corpus, labels=labels)
    return out + corpus_examples(FIXTURES, fold="fixtures")


def _names(examples: Sequence[Example]) -> tuple[list[str], list[str]]:
    return sorted(examples[0].features.dense), sorted(examples[0].features.severity_dense)


def train(examples: Sequence[Example], settings: Settings) -> dict[str, Any]:
    """Fit the vectorizer, the class model and the severity model on ``examples``."""
    dense_names, severity_names = _names(examples)
    vectorizer, x_text = _vectorize([e.grams for e in examples], settings.min_df)
    classes = _linear(
        _design(x_text, [e.features.dense for e in examples], dense_names),
        [e.label for e in examples],
        settings.c_class,
        settings.class_weight,
    )
    complaints = [i for i, e in enumerate(examples) if e.label == "complaint"]
    severity = _linear(
        _design(
            x_text[complaints] if settings.severity_text else None,
            [examples[i].features.severity_dense for i in complaints],
            severity_names,
        ),
        [examples[i].severity for i in complaints],
        settings.c_severity,
        None,
    )
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, index in vectorizer.vocabulary_.items():
        vocabulary[index] = gram
    return {
        "vocabulary": vocabulary,
        "idf": np.round(vectorizer.idf_, 6).tolist(),
        "class_model": _export(classes, dense_names, True),
        "severity_model": {
            **_export(severity, severity_names, settings.severity_text),
            "floor_from": settings.floor_from,
        },
    }


def cv_splits(examples: Sequence[Example]) -> list[tuple[str, list[int], list[int]]]:
    """(writer, fit, score) row indices: each writer held out in turn, fitted on the rest.

    A writer's mail shares voice, layouts and habits; holding one out whole is the test
    closest to mail nobody here wrote, which random folds are not.
    """
    writers = sorted({e.source for e in examples})
    return [
        (
            writer,
            [i for i, e in enumerate(examples) if e.source != writer],
            [i for i, e in enumerate(examples) if e.source == writer],
        )
        for writer in writers
    ]


SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# The lowest rule level that is a floor the model may not grade below ("never": none is).
FLOOR_RANK = {**SEVERITY_RANK, "never": len(SEVERITIES)}


def graded(rule: str, model: str, floor_from: str = "medium") -> str:
    """The classifier's severity: the model's, never below a rule level that is a floor."""
    if FLOOR_RANK[floor_from] <= SEVERITY_RANK[rule] > SEVERITY_RANK[model]:
        return rule
    return model


def cross_validate(
    examples: Sequence[Example],
    class_grid: Sequence[tuple[float, str | None]],
    severity_grid: Sequence[tuple[float, bool]],
    min_df: int = 2,
) -> tuple[dict[Any, list[dict[str, float]]], dict[Any, list[str | None]]]:
    """Out-of-writer class probabilities and severity-model levels, per setting.

    Each list is aligned with ``examples``; the severity model is scored on every true
    complaint (None for other rows), before any rule floor.
    """
    dense_names, severity_names = _names(examples)
    probabilities: dict[Any, list[dict[str, float]]] = {
        setting: [{} for _ in examples] for setting in class_grid
    }
    severities: dict[Any, list[str | None]] = {
        setting: [None] * len(examples) for setting in severity_grid
    }
    for _writer, fitted, scored in cv_splits(examples):
        vectorizer, x_fit = _vectorize([examples[i].grams for i in fitted], min_df)
        x_score = vectorizer.transform([examples[i].grams for i in scored])
        d_fit = _design(x_fit, [examples[i].features.dense for i in fitted], dense_names)
        d_score = _design(x_score, [examples[i].features.dense for i in scored], dense_names)
        for c, weight in class_grid:
            model = _linear(d_fit, [examples[i].label for i in fitted], c, weight)
            for row, probs in zip(scored, model.predict_proba(d_score), strict=True):
                probabilities[c, weight][row] = dict(
                    zip(model.classes_, map(float, probs), strict=True)
                )
        fit_c = [k for k, i in enumerate(fitted) if examples[i].label == "complaint"]
        score_c = [k for k, i in enumerate(scored) if examples[i].label == "complaint"]
        for c, text in severity_grid:
            x_a = _design(
                x_fit[fit_c] if text else None,
                [examples[fitted[k]].features.severity_dense for k in fit_c],
                severity_names,
            )
            x_b = _design(
                x_score[score_c] if text else None,
                [examples[scored[k]].features.severity_dense for k in score_c],
                severity_names,
            )
            model = _linear(x_a, [examples[fitted[k]].severity for k in fit_c], c, None)
            for k, level in zip(score_c, model.predict(x_b), strict=True):
                severities[c, text][scored[k]] = str(level)
    return probabilities, severities


def apply_thresholds(label: str, probability: float, thresholds: Mapping[str, float]) -> str:
    """``other`` for a best class below its bar: any class, and leads and complaints higher."""
    bar = max(thresholds["uncertain_below"], thresholds.get(f"{label}_needs", 0.0))
    return label if probability >= bar else "other"


def labels_at(
    probabilities: Sequence[Mapping[str, float]], thresholds: Mapping[str, float]
) -> list[str]:
    """The class of each scored row once the policy's thresholds apply."""
    out = []
    for probs in probabilities:
        best = max(probs, key=probs.__getitem__)
        out.append(apply_thresholds(best, probs[best], thresholds))
    return out


def quality_report(
    truth: Sequence[str],
    predicted: Sequence[str],
    severity_truth: Sequence[str] = (),
    severity_predicted: Sequence[str | None] = (),
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/support, and severity accuracy on true complaints.

    Severity is scored on every labelled complaint: a complaint read as another class
    counts as a wrong severity (None), so a missed complaint is not hidden.
    """
    pairs = list(zip(truth, predicted, strict=True))
    hits = Counter(t for t, p in pairs if t == p)
    said, real = Counter(predicted), Counter(truth)
    out: dict[str, Any] = {
        "messages": len(truth),
        "accuracy": round(sum(hits.values()) / len(truth), 3),
        "per_class": {
            c: {
                "precision": round(hits[c] / said[c], 3) if said[c] else None,
                "recall": round(hits[c] / real[c], 3) if real[c] else None,
                "support": real[c],
            }
            for c in sorted(set(truth) | set(predicted))
        },
        "confusions": {
            f"{t} -> {p}": n
            for (t, p), n in Counter(x for x in pairs if x[0] != x[1]).most_common()
        },
    }
    if severity_truth:
        levels = list(zip(severity_truth, severity_predicted, strict=True))
        out["severity_accuracy"] = round(sum(t == p for t, p in levels) / len(levels), 3)
        out["severity_complaints"] = len(levels)
        out["severity_by_level"] = {
            level: {
                "right": sum(t == p == level for t, p in levels),
                "of": sum(t == level for t, _ in levels),
                "read_as": dict(
                    Counter(p or "not a complaint" for t, p in levels if t == level and p != level)
                ),
            }
            for level in SEVERITIES
        }
    return out


def writer_report(
    examples: Sequence[Example],
    predicted: Sequence[str],
    severity_levels: Sequence[str | None],
    floor_from: str,
) -> dict[str, Any]:
    """Writer-CV figures: all writers pooled, and each left-out writer on its own.

    A complaint's severity is the model's graded by the rules' floors, and counts only
    when the message was read as a complaint, as the benchmark scores it.
    """
    out: dict[str, Any] = {}
    for writer in ["all", *sorted({e.source for e in examples})]:
        rows = [i for i, e in enumerate(examples) if writer in ("all", e.source)]
        complaints = [i for i in rows if examples[i].label == "complaint"]
        out[writer] = quality_report(
            [examples[i].label for i in rows],
            [predicted[i] for i in rows],
            [examples[i].severity for i in complaints],
            [
                graded(examples[i].rule_severity, str(severity_levels[i]), floor_from)
                if predicted[i] == "complaint"
                else None
                for i in complaints
            ],
        )
    return out


def _mean_writer_accuracy(examples: Sequence[Example], predicted: Sequence[str]) -> float:
    writers = sorted({e.source for e in examples})
    per = [
        sum(p == e.label for e, p in zip(examples, predicted, strict=True) if e.source == w)
        / sum(e.source == w for e in examples)
        for w in writers
    ]
    return sum(per) / len(per)


def _precision(examples: Sequence[Example], predicted: Sequence[str], label: str) -> float:
    said = [e.label == label for e, p in zip(examples, predicted, strict=True) if p == label]
    return sum(said) / len(said) if said else 1.0


THRESHOLD_GRID = [
    {"uncertain_below": u, "lead_needs": lead, "complaint_needs": complaint}
    for u in (0.0, 0.2, 0.3, 0.4, 0.5)
    for lead in (0.0, 0.4, 0.5, 0.6, 0.7)
    for complaint in (0.0, 0.3, 0.4, 0.5, 0.6)
]
# Stronger regularisation (C 10) and C 100 never won in writer-CV (2026-12-07), nor did the
# severity model without text; each setting costs a fit per writer, so the grid stays small.
CLASS_GRID: list[tuple[float, str | None]] = [(30.0, None), (30.0, "balanced")]
SEVERITY_GRID: list[tuple[float, bool]] = [(3.0, True), (30.0, True)]
FLOOR_GRID = ("medium", "high", "critical", "never")


# A wrong lead creates a contact and a wrong complaint starts an SLA clock: settings whose
# pooled writer-CV precision on either falls below this are not chosen while others reach
# it. It was 0.93 until train3 (mail written for the classes' borders) joined; since then
# no setting reaches 0.92, and 0.88 costs about a point of accuracy over no floor.
PRECISION_FLOOR = 0.88


def choose(examples: Sequence[Example]) -> tuple[Settings, dict[str, float], dict[str, Any]]:
    """The settings and thresholds with the best mean accuracy over left-out writers.

    Class settings and thresholds are chosen together, among those that keep pooled lead
    and complaint precision at ``PRECISION_FLOOR``; among ties, the strictest bars (a
    wrong lead or complaint costs more than a message on the review list). The severity
    model and the rules' floor are chosen on severity accuracy over true complaints.
    """
    probabilities, severities = cross_validate(examples, CLASS_GRID, SEVERITY_GRID)
    best: tuple[bool, float, float, Any, dict[str, float]] | None = None
    per_setting: dict[str, Any] = {}
    for setting in CLASS_GRID:
        for thresholds in THRESHOLD_GRID:
            predicted = labels_at(probabilities[setting], thresholds)
            accuracy = round(_mean_writer_accuracy(examples, predicted), 3)
            precise = all(
                _precision(examples, predicted, label) >= PRECISION_FLOOR
                for label in ("lead", "complaint")
            )
            key = (precise, accuracy, sum(thresholds.values()), setting, thresholds)
            if best is None or key[:3] > best[:3]:
                best = key
            if accuracy > per_setting.get(str(setting), {}).get("mean_writer_accuracy", -1):
                per_setting[str(setting)] = {
                    "mean_writer_accuracy": accuracy,
                    "thresholds": thresholds,
                }
    assert best is not None
    complaints = [i for i, e in enumerate(examples) if e.label == "complaint"]

    def severity_accuracy(setting: tuple[float, bool], floor_from: str) -> float:
        right = sum(
            graded(examples[i].rule_severity, str(severities[setting][i]), floor_from)
            == examples[i].severity
            for i in complaints
        )
        return round(right / len(complaints), 3)

    severity_table = {
        f"{setting} floor from {floor}": severity_accuracy(setting, floor)
        for setting in SEVERITY_GRID
        for floor in FLOOR_GRID
    }
    sev_setting, floor_from = max(
        ((s, f) for s in SEVERITY_GRID for f in FLOOR_GRID),
        key=lambda sf: severity_accuracy(*sf),
    )
    (c_class, weight), thresholds = best[3], best[4]
    settings = Settings(c_class, weight, sev_setting[0], sev_setting[1], floor_from=floor_from)
    report = {
        "class_settings": per_setting,
        "severity_settings": severity_table,
        "precision_floor_met": best[0],
        "mean_writer_accuracy": best[1],
        "writers": writer_report(
            examples,
            labels_at(probabilities[best[3]], thresholds),
            severities[sev_setting],
            floor_from,
        ),
    }
    return settings, thresholds, report


def print_writer_report(report: Mapping[str, Any]) -> None:
    """Per left-out writer: class and severity accuracy; pooled: per-class figures."""
    for writer, figures in report.items():
        print(
            f"  {writer:10s} n={figures['messages']:4d}  class {figures['accuracy']:.3f}  "
            f"severity {figures.get('severity_accuracy', float('nan')):.3f} "
            f"on {figures.get('severity_complaints', 0)}"
        )
    for cls, figures in report["all"]["per_class"].items():
        print(
            f"  {cls:12s} n={figures['support']:4d}  precision={figures['precision']}  "
            f"recall={figures['recall']}"
        )
    for level, figures in report["all"].get("severity_by_level", {}).items():
        print(
            f"  severity {level:8s} {figures['right']}/{figures['of']}  "
            f"wrong as {figures['read_as']}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """``train``: choose settings and thresholds by writer-CV, then fit on everything."""
    import argparse
    import hashlib

    parser = argparse.ArgumentParser(description="Train the shipped human-mail model.")
    parser.add_argument("command", choices=["train"])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    examples = training_examples(args.corpus)
    settings, thresholds, report = choose(examples)
    for name, figures in report["class_settings"].items():  # best thresholds per setting
        print(f"class C, weight {name}: {figures}")
    for name, accuracy in report["severity_settings"].items():
        print(f"severity C, text {name}: {accuracy:.3f}")
    print(
        f"chosen: {settings} at {thresholds}, precision floor met: {report['precision_floor_met']}"
    )
    print_writer_report(report["writers"])
    artifact = train(examples, settings)
    labels = training_labels(args.corpus)
    digest = hashlib.sha256(b"".join((args.corpus / name).read_bytes() for name in labels))
    artifact["thresholds"] = thresholds
    artifact["trained_on"] = {
        "corpus": "tests/fixtures/mail_corpus",
        "labels": labels,
        "writers": sorted({e.source for e in examples}),
        "messages": len(examples),
        "labels_sha256": digest.hexdigest(),
        "settings": {
            "C": settings.c_class,
            "class_weight": settings.class_weight,
            "severity_C": settings.c_severity,
            "severity_text": settings.severity_text,
            "severity_floor_from": settings.floor_from,
        },
        "writer_cv": {
            writer: {
                "accuracy": figures["accuracy"],
                "severity_accuracy": figures.get("severity_accuracy"),
            }
            for writer, figures in report["writers"].items()
        },
    }
    args.out.write_text(json.dumps(artifact, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), {settings}")
    print(f"thresholds for config/inbox.yaml: {thresholds}")


if __name__ == "__main__":
    main()
