"""The inbox classification policy (``config/inbox.yaml``) as a validated model.

Rules live in YAML so the account manager's team can tune wording per language without a
release; the model rejects patterns that do not compile, naming the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from config.policy_loader import load_policy
from config.settings import CONFIG_DIR

Severity = Literal["low", "medium", "high", "critical"]
Scope = Literal["subject", "body", "any"]


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


class Rule(BaseModel):
    """A named, weighted pattern; matching is case-insensitive on accent-folded text."""

    name: str
    pattern: str
    weight: float = 1.0
    scope: Scope = "any"

    _check = field_validator("pattern")(_compiles)


class SeverityRule(BaseModel):
    name: str
    pattern: str
    level: Severity

    _check = field_validator("pattern")(_compiles)


class HeaderRule(BaseModel):
    """A header whose value (lower-cased) matching ``pattern`` is decisive evidence."""

    name: str
    header: str
    pattern: str
    weight: float = 10.0

    _check = field_validator("pattern")(_compiles)


class AutoReplyPolicy(BaseModel):
    headers: list[HeaderRule] = []
    text: list[Rule] = []
    threshold: float = 2.0


class ScoredPolicy(BaseModel):
    rules: list[Rule] = []
    threshold: float = 2.0


class ClassesPolicy(BaseModel):
    lead: list[Rule] = []
    complaint: list[Rule] = []
    spam: list[Rule] = []


# sisimai's reason names (tasks/inbox/bounces.py:Reason); every one needs a rule.
BOUNCE_REASONS = (
    "userunknown", "hostunknown", "hasmoved", "suspend", "notaccept", "suppressed",
    "mailboxfull", "exceedlimit", "mesgtoobig", "expired", "blocked", "rejected", "requireptr",
    "badreputation", "authfailure", "spamdetected", "virusdetected", "filtered",
    "policyviolation", "contenterror", "notcompliantrfc", "norelaying", "securityerror",
    "failedstarttls", "speeding", "toomanyconn", "networkerror", "systemerror", "systemfull",
    "mailererror", "syntaxerror", "onhold", "undefined", "feedback", "vacation", "delivered",
)  # fmt: skip


class BounceReasonRule(BaseModel):
    """What one bounce reason means: ``suppress`` the address (it is bad, or its owner
    reported us), ``count`` it as a soft bounce toward ``soft_bounce_limit``, or ``ignore``
    it (a delivery or vacation notice). ``about`` says whose fault it is: the recipient's
    address, our message, or our sending host; a refusal ``about: sender`` during our own
    SMTP send pauses that sender and suppresses nobody."""

    action: Literal["suppress", "count", "ignore"]
    about: Literal["recipient", "message", "sender"] = "recipient"


class InboxPolicy(BaseModel):
    auto_reply: AutoReplyPolicy = AutoReplyPolicy()
    unsubscribe: ScoredPolicy = ScoredPolicy()
    rsvp: list[Rule] = []
    spam_headers: list[HeaderRule] = []
    classes: ClassesPolicy = ClassesPolicy()
    default_class: Literal["other", "lead", "complaint", "spam"] = Field(
        default="other",
        description="The class of mail the model is not sure of: a review list, not a lead.",
    )
    uncertain_below: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Below this probability of its best class, mail gets the default class.",
    )
    lead_needs: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="A lead creates a contact, so it needs at least this probability.",
    )
    complaint_needs: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="A complaint starts an SLA clock, so it may need more than other classes.",
    )
    cues: dict[str, list[Rule]] = Field(
        default_factory=dict,
        description=(
            "Broad cue words by family; only the model reads their scores. Matched on "
            "accent-folded, lower-cased text, so patterns are written in lower case."
        ),
    )
    severity: list[SeverityRule] = []
    severity_cues: dict[str, Severity] = Field(
        default_factory=dict,
        description="Cue families that set a complaint's lowest severity when any rule matches.",
    )

    reference_patterns: list[str] = []
    soft_bounce_limit: int = Field(default=3, ge=1)
    reply_separators: list[str] = []
    bounce_reasons: dict[str, BounceReasonRule] = Field(
        default_factory=lambda: {r: BounceReasonRule(action="count") for r in BOUNCE_REASONS},
        description="Per bounce reason: suppress, count as soft, or ignore.",
    )

    @field_validator("cues")
    @classmethod
    def _cues_are_lower_case(cls, cues: dict[str, list[Rule]]) -> dict[str, list[Rule]]:
        for family, rules in cues.items():
            for rule in rules:
                if re.search(r"(?<!\\)[A-Z]", rule.pattern):
                    raise ValueError(f"cue {family}.{rule.name} has upper case; text is lowered")
        return cues

    @model_validator(mode="after")
    def _severity_cues_name_families(self) -> InboxPolicy:
        unknown = sorted(set(self.severity_cues) - set(self.cues))
        if unknown:
            raise ValueError(f"severity_cues name no cue family: {', '.join(unknown)}")
        return self

    @field_validator("bounce_reasons")
    @classmethod
    def _every_reason_has_a_rule(
        cls, table: dict[str, BounceReasonRule]
    ) -> dict[str, BounceReasonRule]:
        unknown = sorted(set(table) - set(BOUNCE_REASONS))
        if unknown:
            raise ValueError(f"unknown bounce reasons {unknown}; known: {list(BOUNCE_REASONS)}")
        missing = sorted(set(BOUNCE_REASONS) - set(table))
        if missing:
            raise ValueError(f"no rule for bounce reasons {missing}")
        return table

    _check_refs = field_validator("reference_patterns", "reply_separators")(
        lambda values: [_compiles(v) for v in values]
    )


DEFAULT_INBOX_POLICY = CONFIG_DIR / "inbox.yaml"


def load_inbox_policy(path: Path | None = None) -> InboxPolicy:
    """Read and validate the inbox policy (default: the bundled ``config/inbox.yaml``)."""
    return load_policy(path or DEFAULT_INBOX_POLICY, InboxPolicy)
