"""Decide what an inbound message is, and show the evidence for the decision.

Precedence follows how certain each signal is: a malformed message is never read further;
delivery reports, auto-reply and spam headers and calendar replies are machine-set and
decisive. Human mail is then read twice: by the weighted pattern rules of
``config/inbox.yaml`` (named, tunable by the team that reads the inbox) and by a linear
model over character and word n-grams (``tasks/inbox/human_model.py``) that takes the
rules' scores as features. The model decides; mail it is not sure of is ``other``, a review
list, because a wrong lead creates a contact. The evidence lists the rules that matched and
the model's strongest features, so every decision stays explainable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Literal, TypeVar

import phonenumbers
from stdnum.br import cnpj, cpf
from stdnum.es import cif, nif
from stdnum.exceptions import ValidationError as StdnumValidationError

from config.inbox_policy import InboxPolicy, Rule, load_inbox_policy
from tasks.inbox.bounces import DsnRecipient, judge_report
from tasks.inbox.human_model import HumanMailModel, load_model
from tasks.inbox.human_model import graded as graded_severity
from tasks.inbox.machine_mail import machine_signals
from tasks.inbox.parsing import Malformed, ParsedMail, ParseResult


class MessageClass(StrEnum):
    LEAD = "lead"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    SPAM = "spam"
    RSVP = "rsvp"
    OTHER = "other"
    MALFORMED = "malformed"


Severity = Literal["low", "medium", "high", "critical"]
_SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_LEVELS: dict[str, Severity] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


@dataclass(frozen=True)
class Evidence:
    rule: str
    score: float
    detail: str = ""


@dataclass(frozen=True)
class BounceInfo:
    kind: Literal["hard", "soft", "unknown"]
    hard_recipients: tuple[str, ...]
    soft_recipients: tuple[str, ...]
    status: str | None
    original_message_id: str | None
    # Each recipient with its reason (tasks/inbox/bounces.py), and those the report named
    # only by a local part, for the pipeline to resolve through the outbox.
    recipients: tuple[DsnRecipient, ...] = ()
    unresolved: tuple[DsnRecipient, ...] = ()


@dataclass(frozen=True)
class Rsvp:
    answer: Literal["accepted", "declined", "tentative"]
    via: Literal["icalendar", "text"]
    uid: str | None = None


@dataclass(frozen=True)
class Classification:
    """One class per message plus everything a task needs to act on it.

    ``suppress`` lists addresses that must not be mailed again (hard bounces, opt-outs),
    with ``suppress_reason``; soft-bounced addresses are in ``bounce.soft_recipients`` for
    the caller to count against ``InboxPolicy.soft_bounce_limit``.
    """

    label: MessageClass
    evidence: tuple[Evidence, ...]
    scores: Mapping[str, float] = field(default_factory=dict)
    severity: Severity | None = None
    reference: str | None = None
    bounce: BounceInfo | None = None
    suppress: tuple[str, ...] = ()
    suppress_reason: Literal["hard_bounce", "opt_out", "complaint"] | None = None
    rsvp: Rsvp | None = None
    malformed_reason: str | None = None

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(e.rule for e in self.evidence)


def fold(text: str) -> str:
    """Strip accents, keep case, so ASCII patterns match "não", "atención" and "NÃO"."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class _Compiled:
    name: str
    regex: re.Pattern[str]
    weight: float
    scope: str


def _compile(rules: Sequence[Rule], ignore_case: bool = True) -> tuple[_Compiled, ...]:
    flags = re.MULTILINE | (re.IGNORECASE if ignore_case else 0)
    return tuple(_Compiled(r.name, re.compile(r.pattern, flags), r.weight, r.scope) for r in rules)


def _score(rules: Sequence[_Compiled], subject: str, body: str) -> tuple[float, list[Evidence]]:
    total = 0.0
    hits: list[Evidence] = []
    both = f"{subject}\n{body}"
    for rule in rules:
        target = subject if rule.scope == "subject" else body if rule.scope == "body" else both
        match = rule.regex.search(target)
        if match:
            total += rule.weight
            hits.append(Evidence(rule.name, rule.weight, match.group(0)[:60]))
    return total, hits


@dataclass(frozen=True)
class ModelInput:
    """What the model reads: the text, and named numbers from headers and rules."""

    text: str
    dense: Mapping[str, float]
    folded: str
    severity_rules: Callable[[str], tuple[str, Evidence | None]]

    @cached_property
    def severity_dense(self) -> dict[str, float]:
        """The severity model's numbers, computed only for mail that is a complaint."""
        level, _ = self.severity_rules(self.folded)
        out = {f"severity-rule:{name}": float(name == level) for name in _SEVERITY_RANK}
        out["rules:complaint"] = self.dense["rules:complaint"]
        out.update({k: v for k, v in self.dense.items() if k.startswith("cues:")})
        return out


@dataclass(frozen=True)
class Reading:
    """A message as the rules read it: folded subject and own words, scores, hits."""

    subject: str
    body: str
    rsvp: Rsvp | None
    scores: dict[str, float]
    hits: dict[MessageClass, list[Evidence]]
    features: ModelInput


_CLOSING_LINE = re.compile(
    r"^\s*(--\s*|[^\W\d][\w .'!-]{1,38},|atenciosamente|att\.?|abs\.?|cordialmente|"
    r"saludos|un saludo|atentamente|regards|thanks|cheers|obrigad[oa]|gracias|grato)\s*$",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(
    r"^\s*(from|de|to|para|cc|date|data|fecha|sent|enviad[oa]( em| el)?|subject|assunto|asunto)"
    r"\s*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = re.compile(r"\S+@\S+|https?://\S+")
# A company's legal footer: every writer's mail may carry one, and it says nothing of
# what the sender wants.
_DISCLAIMER = re.compile(
    r"^\s*(this (e-?mail|message)\b.{0,80}\b(confidential|intended)|"
    r"confidential(ity)? (notice|note)|disclaimer|aviso (legal|de confidencialidad)|"
    r"(esta mensagem|este (correo|mensaje))\b.{0,60}\bconfidencia|"
    r"le informamos de que sus datos)",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")


def model_text(text: str) -> str:
    """The words that say what a message is about, without what says who sent it.

    The signature block (from the last closing line on: names, titles, phones), a legal
    disclaimer and all after it, forwarded header lines, addresses and the digits of
    numbers tell the model who wrote, not what they want, and would otherwise be learnt as
    if they did. A closing that is the first line of the text (header lines aside) is a
    greeting, and is kept.
    """
    lines = _HEADER_LINE.sub("", text).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    disclaimer = next(
        (i for i in range(first + 1, len(lines)) if _DISCLAIMER.search(lines[i])), len(lines)
    )
    lines = lines[:disclaimer]
    for index in range(len(lines) - 1, first, -1):
        if _CLOSING_LINE.match(lines[index]) and any(x.strip() for x in lines[first + 1 : index]):
            lines = lines[:index]
            break
    return _DIGITS.sub("0", _ADDRESS.sub(" @ ", "\n".join(lines)))


_FORWARD_MARK = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|mensagem encaminhada|mensaje reenviado|"
    r"original message|mensagem original|mensaje original)\s*-{2,}|begin forwarded message:|"
    r"in[ií]cio da mensagem encaminhada:|inicio del mensaje reenviado:)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def forwarded_text(text: str) -> str:
    """A forward as the model reads it: the innermost message of the chain.

    The point of a forward is the message at the bottom; the forwarders' notes ("FYI, see
    below"), signatures and disclaimers say who passed it on, and read as mail that asks
    for nothing. A chain whose bottom says next to nothing (an attached original under a
    notice) is read whole.
    """
    marks = [*_FORWARD_MARK.finditer(text), *_HEADER_BLOCK.finditer(text)]
    if marks:
        inner = model_text(text[max(m.end() for m in marks) :])
        if len(_WORDS.findall(inner)) >= _FEW_WORDS:
            return inner
    return model_text(text)


# Outlook forwards under a header block (From:, then Sent: or Date:), with no marker line.
_HEADER_BLOCK = re.compile(
    r"^\s*(from|de):\s.+\n\s*(sent|enviado|enviada|date|data|fecha):\s.*$",
    re.IGNORECASE | re.MULTILINE,
)
_WORDS = re.compile(r"[^\W\d_]{2,}")
_FEW_WORDS = 5


# Scale for rule scores as model features: a strong rule hit scores about 3.
_RULE_SCALE = 5.0
_BULK = re.compile(r"^(bulk|list|junk)", re.IGNORECASE)
_REPLY_SUBJECT = re.compile(r"^\s*(re|res|resp|aw|sv)\s*:", re.IGNORECASE)


class MailClassifier:
    """Compiled form of an ``InboxPolicy`` with its model; build once, classify many messages.

    ``model=None`` loads the shipped model; the training script passes ``with_model=False``
    to compute features before any model exists.
    """

    def __init__(
        self, policy: InboxPolicy, model: HumanMailModel | None = None, with_model: bool = True
    ) -> None:
        self.policy = policy
        self.model = model if model is not None or not with_model else load_model()
        self._auto_headers = [
            (h.name, h.header.lower(), re.compile(h.pattern, re.IGNORECASE), h.weight)
            for h in policy.auto_reply.headers
        ]
        self._spam_headers = [
            (h.name, h.header.lower(), re.compile(h.pattern, re.IGNORECASE), h.weight)
            for h in policy.spam_headers
        ]
        self._auto_text = _compile(policy.auto_reply.text)
        self._unsubscribe = _compile(policy.unsubscribe.rules)
        self._rsvp = _compile(policy.rsvp)
        # Cues are matched on lower-cased text, so they need no IGNORECASE, which makes
        # Python's re about twice as slow on these alternations.
        self._cues = {
            family: _compile(rules, ignore_case=False) for family, rules in policy.cues.items()
        }
        self._classes: dict[MessageClass, tuple[_Compiled, ...]] = {
            MessageClass.COMPLAINT: _compile(policy.classes.complaint),
            MessageClass.LEAD: _compile(policy.classes.lead),
            MessageClass.SPAM: _compile(policy.classes.spam),
        }
        self._severity = [
            (s.name, s.level, re.compile(s.pattern, re.IGNORECASE)) for s in policy.severity
        ]
        self._references = [re.compile(p, re.IGNORECASE) for p in policy.reference_patterns]
        self._separators = [
            re.compile(p, re.IGNORECASE | re.MULTILINE) for p in policy.reply_separators
        ]

    @classmethod
    def default(cls) -> MailClassifier:
        """The classifier for the bundled ``config/inbox.yaml`` (compiled once per process)."""
        return _default_classifier()

    def own_text(self, text: str) -> str:
        """The sender's words: quoted history and our footer below the reply line dropped.

        A bottom-posted reply writes under the ``>`` quote, so the lines after the last
        quoted line are the sender's too. The reply lines are found on accent-folded text
        ("escribió:"), as the policy's patterns are written.
        """
        lines = text.splitlines()
        folded = "\n".join(fold(line) for line in lines)
        cut = len(folded)
        for sep in self._separators:
            match = sep.search(folded, 0, cut)
            if match:
                cut = match.start()
        cut_line = folded.count("\n", 0, cut) + (cut == len(folded))
        kept = [line for line in lines[:cut_line] if not line.lstrip().startswith(">")]
        rest = lines[cut_line:]
        quoted = [i for i, line in enumerate(rest) if line.lstrip().startswith(">")]
        if quoted:
            kept += rest[quoted[-1] + 1 :]
        return "\n".join(kept)

    def classify(self, parsed: ParseResult) -> Classification:
        decided = self.decided_by_headers(parsed)
        if decided is not None:
            return decided
        assert isinstance(parsed, ParsedMail)
        read = self.read(parsed)
        subject, body, rsvp, scores, hits, features = (
            read.subject, read.body, read.rsvp, read.scores, read.hits, read.features
        )  # fmt: skip
        if self.model is None:
            raise RuntimeError("this classifier was built without a model")
        prediction, vector = self.model.predict(features.text, features.dense)
        label = MessageClass(prediction.label)
        confidence = prediction.probabilities[prediction.label]
        evidence = list(hits.get(label, ()))
        evidence.append(
            Evidence(
                f"model:{label.value}", round(confidence, 3), ", ".join(prediction.top_features)
            )
        )
        bar = self.policy.uncertain_below
        if label is MessageClass.LEAD:
            bar = max(bar, self.policy.lead_needs)
        elif label is MessageClass.COMPLAINT:
            bar = max(bar, self.policy.complaint_needs)
        if confidence < bar:
            evidence.insert(
                0,
                Evidence(
                    "uncertain", round(confidence, 3), f"best guess {label.value}, not sure enough"
                ),
            )
            label = MessageClass(self.policy.default_class)

        opt_out = scores[MessageClass.UNSUBSCRIBE.value] >= self.policy.unsubscribe.threshold
        suppress: tuple[str, ...] = ()
        if label is MessageClass.UNSUBSCRIBE or (label is MessageClass.COMPLAINT and opt_out):
            suppress = (parsed.from_address,)
            if label is MessageClass.COMPLAINT:
                evidence.extend(hits.get(MessageClass.UNSUBSCRIBE, ()))
        severity: Severity | None = None
        if label is MessageClass.COMPLAINT:
            # The rules' levels from the model's floor up (chosen by writer-CV) are floors:
            # wording the team marked (a lawyer, a regulator, a cancelled contract) is
            # never graded down by the model, which may grade up.
            floor, sev_hit = self._severity_of(features.folded)
            if sev_hit is not None:
                evidence.append(sev_hit)
            graded = self.model.predict_severity(vector, features.severity_dense)
            severity = _LEVELS[graded_severity(floor, graded.label, self.model.severity_floor)]
            evidence.append(
                Evidence(
                    f"model_severity:{graded.label}",
                    round(graded.probabilities[graded.label], 3),
                    ", ".join(graded.top_features),
                )
            )
        if label is MessageClass.RSVP and rsvp is None:
            rsvp = Rsvp("accepted", "text")
        reference = (
            self._reference_of(subject, body)
            if label in (MessageClass.COMPLAINT, MessageClass.LEAD)
            else None
        )
        if rsvp is not None:
            evidence.append(Evidence(f"rsvp:{rsvp.answer}", 0.0, rsvp.via))
        return Classification(
            label,
            tuple(evidence),
            {**scores, **{f"model:{k}": round(v, 4) for k, v in prediction.probabilities.items()}},
            severity=severity,
            reference=reference,
            suppress=suppress,
            suppress_reason="opt_out" if suppress else None,
            rsvp=rsvp,
        )

    def decided_by_headers(self, parsed: ParseResult) -> Classification | None:
        """The class that structure or machine-set headers decide, before any text is read."""
        if isinstance(parsed, Malformed):
            return Classification(
                MessageClass.MALFORMED,
                (Evidence(f"malformed:{parsed.reason.value}", 1.0, parsed.detail),),
                malformed_reason=parsed.reason.value,
            )
        bounce = self._bounce(parsed)
        if bounce is not None:
            return bounce
        header_hits = _header_hits(self._auto_headers, parsed.headers)
        if header_hits:
            return Classification(MessageClass.AUTO_REPLY, tuple(header_hits))
        # --- machine mail (tasks/inbox/machine_mail.py): never a complaint or a contact ---
        machine = machine_signals(parsed.headers, parsed.from_address, parsed.from_name)
        if machine:
            return Classification(
                MessageClass.AUTO_REPLY,
                tuple(Evidence(f"machine_mail:{signal}", 1.0) for signal in machine),
            )
        spam_hits = _header_hits(self._spam_headers, parsed.headers)
        if spam_hits:
            return Classification(MessageClass.SPAM, tuple(spam_hits))
        rsvp = _calendar_rsvp(parsed)
        if rsvp is not None:
            return Classification(
                MessageClass.RSVP, (Evidence(f"rsvp:{rsvp.answer}", 1.0, "icalendar"),), rsvp=rsvp
            )
        return None

    def read(self, parsed: ParsedMail) -> Reading:
        """Everything the rules see in a message, and the model's input built from it."""
        subject = fold(parsed.subject)
        own = self.own_text(parsed.text)
        body = fold(own)
        rsvp = self._rsvp_of(parsed, subject, body)
        scores, hits = self.rule_scores(subject, body)
        return Reading(
            subject, body, rsvp, scores, hits, self.model_input(parsed, own, scores, rsvp)
        )

    def rule_scores(
        self, subject: str, body: str
    ) -> tuple[dict[str, float], dict[MessageClass, list[Evidence]]]:
        """Each rule family's score on the folded subject and the sender's own words."""
        scores: dict[str, float] = {}
        hits: dict[MessageClass, list[Evidence]] = {}
        for label, rules in self._classes.items():
            scores[label.value], hits[label] = _score(rules, subject, body)
        for label, rules in (
            (MessageClass.AUTO_REPLY, self._auto_text),
            (MessageClass.UNSUBSCRIBE, self._unsubscribe),
            (MessageClass.RSVP, self._rsvp),
        ):
            scores[label.value], hits[label] = _score(rules, subject, body)
        return scores, hits

    def model_input(
        self, parsed: ParsedMail, own: str, scores: Mapping[str, float], rsvp: Rsvp | None
    ) -> ModelInput:
        """The text and numbers the model reads (the same code trains and predicts).

        A forwarded message is read whole, since its point is below the forwarding line;
        otherwise only the sender's own words, so our quoted campaign and its unsubscribe
        footer do not speak for the sender.
        """
        if parsed.forwarded:
            text = forwarded_text(
                "\n".join(
                    line for line in parsed.text.splitlines() if not line.lstrip().startswith(">")
                )
            )
        else:
            text = model_text(own)
        headers = parsed.headers
        dense = {f"rules:{k}": min(v, 10.0) / _RULE_SCALE for k, v in scores.items()}
        cue_text = fold(text).lower()
        for family, rules in self._cues.items():
            hits = sum(1 for rule in rules if rule.regex.search(cue_text))
            dense[f"cues:{family}"] = min(hits, 5) / 2
        dense.update(
            {
                "header:list-unsubscribe": float("list-unsubscribe" in headers),
                "header:list-id": float("list-id" in headers),
                "header:precedence-bulk": float(bool(_BULK.match(headers.get("precedence", "")))),
                "html-only": float(parsed.html_only),
                "attachment": float(bool(parsed.attachments)),
                "forwarded": float(parsed.forwarded),
                "reply": float(bool(_REPLY_SUBJECT.match(parsed.subject))),
                "rsvp-rule": float(rsvp is not None),
                "short": float(len(text) < 160),
            }
        )
        folded = fold(parsed.subject) + "\n" + fold(text)
        return ModelInput(f"{parsed.subject}\n{text}", dense, folded, self._severity_of)

    def _bounce(self, parsed: ParsedMail) -> Classification | None:
        """Bounces and feedback reports, judged by the policy's per-reason table."""
        report = parsed.delivery_report
        if report is None:
            return None
        judged = judge_report(report, self.policy.bounce_reasons)
        detail = f"{report.detected_by} {judged.status or ''} {','.join(judged.reasons)}"
        if judged.kind == "delivered":
            # "delivered" / "relayed" reports are receipts, not failures.
            return Classification(
                MessageClass.AUTO_REPLY, (Evidence("delivery_receipt", 1.0, report.detected_by),)
            )
        if judged.kind == "feedback":
            evidence = Evidence(f"feedback_report:{report.feedback_type}", 1.0, detail.strip())
        elif judged.kind == "delay":
            evidence = Evidence("delivery_delayed", 1.0, detail.strip())
        else:
            kind_rule = "hard" if judged.suppress else "soft" if judged.soft else "unknown"
            evidence = Evidence(f"{kind_rule}_bounce", 1.0, detail.strip())
        kind: Literal["hard", "soft", "unknown"] = (
            "hard" if judged.suppress else "soft" if judged.soft else "unknown"
        )
        info = BounceInfo(
            kind,
            judged.suppress,
            judged.soft,
            judged.status,
            report.original_message_id,
            report.recipients,
            judged.unresolved,
        )
        return Classification(
            MessageClass.BOUNCE,
            (evidence,),
            bounce=info,
            suppress=judged.suppress,
            suppress_reason=judged.suppress_reason,
        )

    def _rsvp_of(self, parsed: ParsedMail, subject: str, body: str) -> Rsvp | None:
        found = _calendar_rsvp(parsed)
        if found is not None:
            return found
        _, hits = _score(self._rsvp, subject, body)
        if not hits:
            return None
        declined = any("declined" in h.rule for h in hits)
        return Rsvp("declined" if declined else "accepted", "text")

    def _severity_of(self, text: str) -> tuple[Severity, Evidence | None]:
        """The highest level the severity rules or the policy's severity cues name."""
        best: Severity = "low"
        hit: Evidence | None = None
        for name, level, regex in self._severity:
            match = regex.search(text)
            if match and _SEVERITY_RANK[level] > _SEVERITY_RANK[best]:
                best, hit = level, Evidence(f"severity:{name}", 0.0, match.group(0)[:60])
        lowered = text.lower()
        for family, level in self.policy.severity_cues.items():
            if _SEVERITY_RANK[level] <= _SEVERITY_RANK[best]:
                continue
            for rule in self._cues[family]:
                match = rule.regex.search(lowered)
                if match:
                    best = level
                    hit = Evidence(f"severity_cue:{family}:{rule.name}", 0.0, match.group(0)[:60])
                    break
        return best, hit

    def _reference_of(self, subject: str, body: str) -> str | None:
        for text in (subject, body):
            for regex in self._references:
                match = regex.search(text)
                if match:
                    return match.group(1).upper().rstrip(".-/")
        return None


def _calendar_rsvp(parsed: ParsedMail) -> Rsvp | None:
    """The attendee's answer in an iCalendar REPLY (RFC 5546), if the message carries one."""
    cal = parsed.calendar
    if cal is None or cal.method != "REPLY":
        return None
    if cal.partstat == "ACCEPTED":
        return Rsvp("accepted", "icalendar", cal.uid)
    if cal.partstat == "DECLINED":
        return Rsvp("declined", "icalendar", cal.uid)
    if cal.partstat == "TENTATIVE":
        return Rsvp("tentative", "icalendar", cal.uid)
    return None


def _header_hits(
    rules: Sequence[tuple[str, str, re.Pattern[str], float]], headers: Mapping[str, str]
) -> list[Evidence]:
    hits = []
    for name, header, regex, weight in rules:
        value = headers.get(header)
        if value is not None and regex.search(value.strip()):
            hits.append(Evidence(name, weight, f"{header}: {value[:40]}"))
    return hits


@lru_cache(maxsize=4)
def _default_classifier() -> MailClassifier:
    return MailClassifier(load_inbox_policy())


def classify_message(
    parsed: ParseResult, classifier: MailClassifier | None = None
) -> Classification:
    """Classify with the given classifier, or with the bundled policy."""
    return (classifier or _default_classifier()).classify(parsed)


T = TypeVar("T")


def thread_parent(parsed: ParsedMail, known: Mapping[str, T]) -> T | None:
    """The stored item this message follows up, found through In-Reply-To then References.

    References are walked newest first (RFC 5322 section 3.6.4 lists them oldest first), so
    a follow-up attaches to the closest known ancestor, e.g. the complaint it answers.
    """
    candidates = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(
        reversed(parsed.references)
    )
    for msgid in candidates:
        if msgid in known:
            return known[msgid]
    return None


# --- signature fields ---------------------------------------------------------------------

_CLOSINGS = re.compile(
    r"^\s*(--\s*|atenciosamente|att\.?|abracos?|abs\.?|cordialmente|saludos( cordiales)?|"
    r"un saludo|best( regards)?|kind regards|regards|thanks|thank you|obrigad[oa]|gracias|"
    r"sincerely|cheers)[,.!]?\s*$",
    re.IGNORECASE,
)
_COMPANY_HINT = re.compile(
    r"\b(ltda|s\.?a\.?|s/a|eireli|me|inc|llc|ltd|corp|gmbh|s\.?l\.?|s\.? de r\.?l\.?|"
    r"sas|company|group|grupo|industria|comercio|tecnologia|solutions|consulting)\b\.?",
    re.IGNORECASE,
)
_LABELLED = re.compile(
    r"^\s*(empresa|company|compania|companhia|organization|organizacao|organizacion)\s*:\s*(.+)$",
    re.IGNORECASE,
)
_NAME = re.compile(
    r"^[A-ZÀ-Ý][a-zà-ÿ'\-]+(?: (?:d[aeo]s?|de la|del|van|von|[A-ZÀ-Ý][a-zà-ÿ'\-]+)){1,4}$"
)
_TAX_ID = re.compile(
    r"\b(?:(?P<label>cnpj|cpf|nif|cif|tax id|ein|vat)\s*[:#]?\s*)?"
    r"(?P<value>\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}|\d{3}\.?\d{3}\.?\d{3}-?\d{2}|"
    r"[A-Z]\d{7}[0-9A-J]|\d{8}[A-Z])\b",
    re.IGNORECASE,
)


def _signature_block(text: str) -> list[str]:
    lines = text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if _CLOSINGS.match(lines[index]):
            return [line.strip() for line in lines[index + 1 :] if line.strip()][:8]
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-5:]


def _tax_id(text: str) -> tuple[str, str] | None:
    for match in _TAX_ID.finditer(text):
        value = match.group("value")
        for kind, module in (("cnpj", cnpj), ("cpf", cpf), ("es_cif", cif), ("es_nif", nif)):
            try:
                return kind, module.validate(value)
            except StdnumValidationError:
                continue
    return None


def extract_signature_fields(
    text: str, from_name: str | None = None, region: str = "BR"
) -> dict[str, str]:
    """Name, company, phone (E.164) and a validated tax id from a message's signature.

    Only the block after the closing ("Atenciosamente", "Saludos", "Best regards", "-- ")
    is read, so names and numbers quoted from other people are not taken as the sender's.
    Fields that are not found are absent from the result.
    """
    block = _signature_block(text)
    fields: dict[str, str] = {}
    for line in block:
        if "name" not in fields and _NAME.match(line) and not _COMPANY_HINT.search(line):
            fields["name"] = line
            continue
        labelled = _LABELLED.match(fold(line))
        if "company" not in fields and labelled:
            fields["company"] = line.split(":", 1)[1].strip()
        elif (
            "company" not in fields
            and _COMPANY_HINT.search(fold(line))
            and not re.search(r"\d{4,}|@", line)
        ):
            fields["company"] = line
    if "name" not in fields and from_name:
        fields["name"] = from_name
    joined = "\n".join(block)
    for match in phonenumbers.PhoneNumberMatcher(joined, region):
        fields["phone"] = phonenumbers.format_number(
            match.number, phonenumbers.PhoneNumberFormat.E164
        )
        break
    found = _tax_id(joined)
    if found is not None:
        fields["tax_id_type"], fields["tax_id"] = found
    return fields
