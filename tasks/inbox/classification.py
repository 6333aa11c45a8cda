"""Decide what an inbound message is, and show the evidence for the decision.

Precedence follows how certain each signal is: a malformed message is never read further;
delivery reports and auto-reply headers are machine-set and decisive; opt-outs outrank the
business classes because ignoring one is a legal problem; lead, complaint and spam are
weighted pattern scores from ``config/inbox.yaml``, so every decision is explainable by
rule names and can be tuned by the team that reads the inbox.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Literal, TypeVar

import phonenumbers
from stdnum.br import cnpj, cpf
from stdnum.es import cif, nif
from stdnum.exceptions import ValidationError as StdnumValidationError

from config.inbox_policy import InboxPolicy, Rule, load_inbox_policy
from tasks.inbox.bounces import DsnRecipient, judge_report
from tasks.inbox.machine_mail import machine_signals
from tasks.inbox.parsing import Malformed, ParsedMail, ParseResult


class MessageClass(StrEnum):
    LEAD = "lead"
    COMPLAINT = "complaint"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    SPAM = "spam"
    MALFORMED = "malformed"


Severity = Literal["low", "medium", "high", "critical"]
_SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


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


def _compile(rules: Sequence[Rule]) -> tuple[_Compiled, ...]:
    return tuple(
        _Compiled(r.name, re.compile(r.pattern, re.IGNORECASE | re.MULTILINE), r.weight, r.scope)
        for r in rules
    )


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


class MailClassifier:
    """Compiled form of an ``InboxPolicy``; build once per run, classify many messages."""

    def __init__(self, policy: InboxPolicy) -> None:
        self.policy = policy
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
        """The sender's words: quoted history and our footer below the reply line dropped."""
        cut = len(text)
        for sep in self._separators:
            match = sep.search(text, 0, cut)
            if match:
                cut = match.start()
        kept = (line for line in text[:cut].splitlines() if not line.lstrip().startswith(">"))
        return "\n".join(kept)

    def classify(self, parsed: ParseResult) -> Classification:
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

        subject = fold(parsed.subject)
        own = self.own_text(parsed.text)
        body = fold(own)
        rsvp = self._rsvp_of(parsed, subject, body)
        spam_hits = _header_hits(self._spam_headers, parsed.headers)
        if spam_hits:
            return Classification(MessageClass.SPAM, tuple(spam_hits), rsvp=rsvp)

        scores: dict[str, float] = {}
        evidence: dict[MessageClass, list[Evidence]] = {}
        for label, rules in self._classes.items():
            scores[label.value], evidence[label] = _score(rules, subject, body)
        auto_score, auto_hits = _score(self._auto_text, subject, body)
        unsub_score, unsub_hits = _score(self._unsubscribe, subject, body)
        scores[MessageClass.AUTO_REPLY.value] = auto_score
        scores[MessageClass.UNSUBSCRIBE.value] = unsub_score
        business_max = max(scores[c.value] for c in self._classes)
        if auto_score >= self.policy.auto_reply.threshold and auto_score >= business_max:
            return Classification(MessageClass.AUTO_REPLY, tuple(auto_hits), scores, rsvp=rsvp)

        opt_out = unsub_score >= self.policy.unsubscribe.threshold
        suppress = (parsed.from_address,) if opt_out else ()
        reason: Literal["opt_out"] | None = "opt_out" if opt_out else None
        complaint_score = scores[MessageClass.COMPLAINT.value]
        if opt_out and complaint_score < self.policy.complaint_overrides_unsubscribe_at:
            return Classification(
                MessageClass.UNSUBSCRIBE,
                tuple(unsub_hits),
                scores,
                suppress=suppress,
                suppress_reason=reason,
                rsvp=rsvp,
            )

        # Dict order is the tie-break: a missed complaint costs more than a missed lead.
        label = max(self._classes, key=lambda c: scores[c.value])
        hits = list(evidence[label]) + (list(unsub_hits) if opt_out else [])
        if scores[label.value] < self.policy.min_score:
            label = MessageClass(self.policy.default_class)
            hits = [Evidence("default_class", 0.0, "no rule reached min_score")]
        severity: Severity | None = None
        if label is MessageClass.COMPLAINT:
            severity, sev_hit = self._severity_of(subject + "\n" + body)
            if sev_hit is not None:
                hits.append(sev_hit)
        reference = (
            self._reference_of(subject, body)
            if label in (MessageClass.COMPLAINT, MessageClass.LEAD)
            else None
        )
        if rsvp is not None:
            hits.append(Evidence(f"rsvp:{rsvp.answer}", 0.0, rsvp.via))
        return Classification(
            label,
            tuple(hits),
            scores,
            severity=severity,
            reference=reference,
            suppress=suppress,
            suppress_reason=reason,
            rsvp=rsvp,
        )

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
        cal = parsed.calendar
        if cal is not None and cal.method == "REPLY":
            answer = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
            found = answer.get(cal.partstat or "")
            if found == "accepted":
                return Rsvp("accepted", "icalendar", cal.uid)
            if found == "declined":
                return Rsvp("declined", "icalendar", cal.uid)
            if found == "tentative":
                return Rsvp("tentative", "icalendar", cal.uid)
        _, hits = _score(self._rsvp, subject, body)
        if not hits:
            return None
        declined = any("declined" in h.rule for h in hits)
        return Rsvp("declined" if declined else "accepted", "text")

    def _severity_of(self, text: str) -> tuple[Severity, Evidence | None]:
        best: Severity = "low"
        hit: Evidence | None = None
        for name, level, regex in self._severity:
            match = regex.search(text)
            if match and _SEVERITY_RANK[level] > _SEVERITY_RANK[best]:
                best, hit = level, Evidence(f"severity:{name}", 0.0, match.group(0)[:60])
        return best, hit

    def _reference_of(self, subject: str, body: str) -> str | None:
        for text in (subject, body):
            for regex in self._references:
                match = regex.search(text)
                if match:
                    return match.group(1).upper().rstrip(".-/")
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
