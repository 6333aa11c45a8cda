"""Public mail corpora with known answers, and how our bounce reading scores on them.

Three labelled sets of real mail that no one on this project wrote: sisimai's
set-of-emails and Mail-DeliveryStatus-BounceParser's corpus (read in place from the shared
corpora folder, never copied into the project), and flufl.bounce's own test corpus
(fetched from the package index into a cache). Each set is split by a hash of the file
name into a tuning part and a held-out part; rules are only ever tuned on the first, and
every figure is given for both.

Used by ``benchmarks/bench_bounces.py`` and by the inbox tests.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flufl.bounce

from tasks.inbox.classification import Classification, MailClassifier, MessageClass
from tasks.inbox.parsing import ParsedMail, parse_message

ROOT = Path(__file__).resolve().parent.parent
FLUFL_VERSION = "6.0.0"
CACHE_DIR = ROOT / "benchmarks" / ".data"
MACHINE_LABELS = frozenset({MessageClass.BOUNCE, MessageClass.AUTO_REPLY})


def corpora_dir() -> Path | None:
    """``ACCOUNTFLOW_CORPORA_DIR``, else ``../shared/corpora`` from the checkout (or from
    the folder holding a worktree)."""
    configured = os.environ.get("ACCOUNTFLOW_CORPORA_DIR")
    candidates = [Path(configured)] if configured else []
    candidates += [ROOT.parent / "shared" / "corpora", ROOT.parent.parent / "shared" / "corpora"]
    for path in candidates:
        if (path / "sisimai" / "truth.json").is_file():
            return path
    return None


def flufl_corpus(cache: Path = CACHE_DIR, fetch: bool = True) -> Path | None:
    """flufl.bounce's ``tests`` folder from its sdist on the package index, cached."""
    target = cache / f"flufl_bounce-{FLUFL_VERSION}"
    if (target / "tests" / "data").is_dir():
        return target / "tests"
    if not fetch:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"flufl.bounce=={FLUFL_VERSION}"
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    done = subprocess.run(
        [*command, "--quiet", "-d", str(cache), spec], capture_output=True, check=False
    )
    archives = sorted(cache.glob(f"flufl_bounce-{FLUFL_VERSION}.tar.gz"))
    if done.returncode != 0 or not archives:
        return None
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name and m.isfile()]
        tar.extractall(cache, members=members, filter="data")
    return target / "tests" if (target / "tests" / "data").is_dir() else None


def cpython_email_data() -> Path | None:
    """CPython's ``Lib/test/test_email/data`` in this interpreter's install, if present."""
    for base in {sysconfig.get_paths()["stdlib"], str(Path(sys.base_prefix) / "lib")}:
        for path in (
            Path(base) / "test" / "test_email" / "data",
            Path(base) / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "test"
            / "test_email" / "data",
        ):  # fmt: skip
            if path.is_dir():
                return path
    return None


def held_out(name: str) -> bool:
    """One file in three, by a hash of its name: never looked at while tuning rules."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 3 == 0


# --- one file read the way the inbox reads it ---------------------------------------------------


@dataclass(frozen=True)
class Read:
    name: str
    label: MessageClass
    recipients: tuple[str, ...]
    reasons: tuple[str, ...]
    suppressed: tuple[str, ...]
    soft: tuple[str, ...]
    original_message_id: str | None
    flufl_found: bool
    verdict: Classification
    returned_message_ids: frozenset[str] = frozenset()


def read(path: Path, classifier: MailClassifier) -> Read:
    raw = path.read_bytes()
    parsed = parse_message(raw)
    verdict = classifier.classify(parsed)
    recipients: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    original: str | None = None
    if isinstance(parsed, ParsedMail) and parsed.delivery_report is not None:
        report = parsed.delivery_report
        recipients = tuple(r.address for r in report.recipients)
        reasons = tuple(getattr(r, "reason", "") for r in report.recipients)
        original = report.original_message_id
    bounce = verdict.bounce
    return Read(
        path.name,
        verdict.label,
        recipients,
        reasons,
        verdict.suppress,
        bounce.soft_recipients if bounce else (),
        original,
        _flufl_finds(raw),
        verdict,
        _returned_message_ids(raw),
    )


_BODY_MESSAGE_ID = re.compile(
    rb"^[ \t>]*message-id[ \t]*:[ \t]*<?([^<>\s]+@[^<>\s]+)>?", re.I | re.M
)


def _returned_message_ids(raw: bytes) -> frozenset[str]:
    """The Message-IDs written below the report's own headers (the returned original's,
    attached or quoted): where one is present, the reader should recover it."""
    split = re.search(rb"\r?\n\r?\n", raw)
    body = raw[split.end() :] if split else b""
    return frozenset(
        f"<{m.group(1).decode('latin-1').lower()}>" for m in _BODY_MESSAGE_ID.finditer(body)
    )


def _flufl_finds(raw: bytes) -> bool:
    import email

    try:
        temporary, permanent = flufl.bounce.all_failures(email.message_from_bytes(raw))
    except Exception:
        return False
    return bool(temporary or permanent)


# --- scores -----------------------------------------------------------------------------------


@dataclass
class Score:
    """Counts over one part (tuning or held-out) of one corpus."""

    files: int = 0
    failures: int = 0
    recognised: int = 0
    flufl_recognised: int = 0
    recipient_expected: int = 0
    recipient_found: int = 0
    hard_known: int = 0
    hard_agree: int = 0
    hard_agree_sisimai: int = 0
    wrongful_suppressions: int = 0
    wrongful_by_reason: Counter[str] = field(default_factory=Counter)
    feedback: int = 0
    feedback_suppressed: int = 0
    feedback_via_outbox: int = 0
    message_id_present: int = 0
    message_id_recovered: int = 0
    reason_known: int = 0
    reason_agree: int = 0
    not_bounces: int = 0
    not_bounces_as_bounce: int = 0
    failures_as: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    reason_disagreements: list[str] = field(default_factory=list)

    def rate(self, part: int, whole: int) -> float | None:
        return round(part / whole, 3) if whole else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "failure_bounces": self.failures,
            "recognised": self.rate(self.recognised, self.failures),
            "flufl_bounce_recognised": self.rate(self.flufl_recognised, self.failures),
            "recipient_recovered": self.rate(self.recipient_found, self.recipient_expected),
            "hard_soft_agreement": self.rate(self.hard_agree, self.hard_known),
            "hard_soft_agreement_sisimai_convention": self.rate(
                self.hard_agree_sisimai, self.hard_known
            ),
            "hard_known": self.hard_known,
            "wrongful_suppressions": self.wrongful_suppressions,
            "wrongful_by_reason": dict(self.wrongful_by_reason),
            "feedback_reports": self.feedback,
            "feedback_suppressed": self.feedback_suppressed,
            "feedback_resolved_through_outbox": self.feedback_via_outbox,
            "original_message_id_recovered": self.rate(
                self.message_id_recovered, self.message_id_present
            ),
            "original_message_id_present": self.message_id_present,
            "reason_agreement_sisimai": self.rate(self.reason_agree, self.reason_known),
            "not_bounces": self.not_bounces,
            "not_bounces_read_as_bounce": self.not_bounces_as_bounce,
            "failures_read_as": dict(self.failures_as),
        }


def _count_message_id(score: Score, got: Read) -> None:
    """Original Message-ID recovery, over recognised failures that carry one."""
    if got.label is MessageClass.BOUNCE and got.returned_message_ids:
        score.message_id_present += 1
        found = (got.original_message_id or "").lower()
        # A quoted-printable original may break its Message-ID line with a soft "=".
        score.message_id_recovered += any(
            found == wanted or (wanted.endswith("=>") and found.startswith(wanted[:-2]))
            for wanted in got.returned_message_ids
        )


# Reasons our table suppresses though sisimai's convention calls them soft (a suspended
# or disabled mailbox is a bad address for us: issue 21).
POLICY_HARD = frozenset({"suspend"})
ADDRESS_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "suspend", "notaccept"})


def _sisimai_truth(root: Path) -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = json.loads((root / "truth.json").read_text())
    return loaded


def score_sisimai(root: Path, classifier: MailClassifier) -> dict[str, Score]:
    """Recognition of failure bounces, hard/soft against sisimai's flag, ARF suppression."""
    truth = _sisimai_truth(root)
    scores = {"tuning": Score(), "held_out": Score()}
    for name, records in sorted(truth.items()):
        score = scores["held_out" if held_out(name) else "tuning"]
        score.files += 1
        got = read(root / name, classifier)
        reasons = {r["reason"] for r in records}
        if reasons <= {"feedback"}:
            score.feedback += 1
            suppressed = got.label is MessageClass.BOUNCE and bool(got.suppressed)
            score.feedback_suppressed += suppressed
            # Naming no recipient, the report is matched to our outbox by the Message-ID
            # of the message it returns (tasks/inbox/pipeline.py).
            unresolved = got.verdict.bounce is not None and bool(got.verdict.bounce.unresolved)
            score.feedback_via_outbox += (
                not suppressed and unresolved and got.original_message_id is not None
            )
            if not suppressed:
                score.misses.append(name)
            continue
        if reasons <= {"vacation", "delivered"}:
            score.not_bounces += 1
            score.not_bounces_as_bounce += got.label is MessageClass.BOUNCE and bool(
                got.suppressed or got.soft
            )
            continue
        score.failures += 1
        score.recognised += got.label is MessageClass.BOUNCE
        score.flufl_recognised += got.flufl_found
        score.failures_as[got.label.value] += 1
        if got.label is not MessageClass.BOUNCE:
            score.misses.append(name)
            continue
        _count_message_id(score, got)
        score.reason_known += 1
        score.reason_agree += set(got.reasons) == reasons
        if set(got.reasons) != reasons:
            score.reason_disagreements.append(
                f"{name}: truth {sorted(reasons)} ours {sorted(set(got.reasons))} status "
                f"{records[0].get('status')}"
            )
        truth_hard = any(r["hard"] for r in records)
        ours_hard = bool(got.suppressed)
        policy_hard = truth_hard or bool(reasons & POLICY_HARD)
        score.hard_known += 1
        score.hard_agree += ours_hard == policy_hard
        score.hard_agree_sisimai += ours_hard == truth_hard
        if ours_hard != policy_hard:
            score.disagreements.append(
                f"{name}: truth {sorted(reasons)} ours {got.reasons} status "
                f"{records[0].get('status')}"
            )
    return scores


def score_bounceparser(root: Path, classifier: MailClassifier) -> dict[str, Score]:
    """Recognition, recipient recovery, and suppressions for reasons that say nothing
    bad about the address (spam, quota, size, filter, expiry)."""
    truth: dict[str, dict[str, Any]] = json.loads((root / "truth.json").read_text())
    scores = {"tuning": Score(), "held_out": Score()}
    for name, expected in sorted(truth.items()):
        score = scores["held_out" if held_out(name) else "tuning"]
        score.files += 1
        got = read(root / name, classifier)
        if not expected["bounce"]:
            score.not_bounces += 1
            score.not_bounces_as_bounce += got.label is MessageClass.BOUNCE and bool(
                got.suppressed or got.soft
            )
            continue
        score.failures += 1
        score.recognised += got.label is MessageClass.BOUNCE
        score.flufl_recognised += got.flufl_found
        score.failures_as[got.label.value] += 1
        if got.label is not MessageClass.BOUNCE:
            score.misses.append(name)
        _count_message_id(score, got)
        accept = {a.lower() for a in expected.get("accept_addresses") or []}
        if accept:
            score.recipient_expected += 1
            found = bool(accept & set(got.recipients))
            score.recipient_found += found
            if not found:
                score.disagreements.append(
                    f"{name}: recipient {sorted(accept)} ours {got.recipients}"
                )
        if expected["hard"] is not None:
            score.hard_known += 1
            ours_hard = bool(got.suppressed)
            score.hard_agree += ours_hard == expected["hard"]
            score.hard_agree_sisimai += ours_hard == expected["hard"]
            if ours_hard != expected["hard"]:
                score.disagreements.append(
                    f"{name}: truth {expected['reason']} hard={expected['hard']} ours {got.reasons}"
                )
        if expected["hard"] is False and got.suppressed:
            score.wrongful_suppressions += len(got.suppressed)
            score.wrongful_by_reason[expected["reason"]] += len(got.suppressed)
    return scores


def flufl_expectations(tests: Path) -> dict[str, set[str]]:
    """File -> the addresses flufl.bounce's own tests expect (its DETECTORS table)."""
    tree = ast.parse((tests / "test_detectors.py").read_text())
    table: list[tuple[str, str, list[bytes], bool]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DETECTORS" for t in node.targets
        ):
            table = ast.literal_eval(node.value)
    expected: dict[str, set[str]] = {}
    for _, filename, addresses, _ in table:
        expected.setdefault(filename, set()).update(a.decode().lower() for a in addresses)
    return expected


# Files of flufl.bounce's corpus that are no bounce: its tests say groupwise_03 is not one,
# and qmail_08 is an "Auto reply" (Precedence: auto_reply) kept there for a decoding bug.
FLUFL_NOT_BOUNCES = frozenset({"groupwise_03.txt", "qmail_08.txt"})


def score_flufl(tests: Path, classifier: MailClassifier) -> dict[str, Score]:
    expected = flufl_expectations(tests)
    scores = {"tuning": Score(), "held_out": Score()}
    for path in sorted((tests / "data").glob("*.txt")):
        score = scores["held_out" if held_out(path.name) else "tuning"]
        score.files += 1
        got = read(path, classifier)
        if path.name in FLUFL_NOT_BOUNCES:
            score.not_bounces += 1
            score.not_bounces_as_bounce += got.label is MessageClass.BOUNCE and bool(
                got.suppressed or got.soft
            )
            continue
        score.failures += 1
        score.recognised += got.label is MessageClass.BOUNCE
        score.flufl_recognised += got.flufl_found
        score.failures_as[got.label.value] += 1
        if got.label is not MessageClass.BOUNCE:
            score.misses.append(path.name)
        _count_message_id(score, got)
        wanted = expected.get(path.name) or set()
        if wanted:
            score.recipient_expected += 1
            found = bool(wanted & set(got.recipients))
            score.recipient_found += found
            if not found:
                score.disagreements.append(
                    f"{path.name}: recipient {sorted(wanted)} ours {got.recipients}"
                )
    return scores


def sisimai_untruthed(root: Path, classifier: MailClassifier) -> Iterator[Read]:
    """The corpus files sisimai's fact tests give no answer for (read, not scored)."""
    truth = _sisimai_truth(root)
    for path in sorted(root.glob("*.eml")):
        if path.name not in truth:
            yield read(path, classifier)
