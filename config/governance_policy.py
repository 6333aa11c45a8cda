"""Governance policy: per-field freshness rules, retention, and the lawful basis each
contact is held on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.policy_loader import load_policy
from config.settings import get_settings

FreshField = Literal["email", "phone", "job_title", "city", "state", "country"]
# GDPR art. 6(1) and their LGPD art. 7 counterparts, by the names privacy notices use.
LawfulBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interest",
]
SourceKind = Literal["exhibition", "inbox"]


class ConsentRule(BaseModel):
    """A column of an export that records the person's consent, and the answers that mean
    yes (``agreed``; compared folded: case, accents and punctuation ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headers: list[str] = Field(default_factory=list)
    agreed: list[str] = Field(default_factory=list)


class LawfulBasisPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    by_source: dict[SourceKind, LawfulBasis] = Field(
        default={"exhibition": "legitimate_interest", "inbox": "legitimate_interest"},
        description="The basis a contact collected from each source is held on.",
    )
    consent: ConsentRule = ConsentRule()
    # The basis of a contact whose company holds a contract with us (None: not used).
    contract: LawfulBasis | None = "contract"
    # When several rules apply, the first basis in this list wins.
    precedence: list[LawfulBasis] = Field(
        default=["consent", "contract", "legitimate_interest"], min_length=1
    )

    @model_validator(mode="after")
    def _every_basis_ranked(self) -> LawfulBasisPolicy:
        used = {*self.by_source.values(), "consent", *([self.contract] if self.contract else [])}
        missing = sorted(used - set(self.precedence))
        if missing:
            raise ValueError(f"precedence must rank every basis in use; missing {missing}")
        if set(self.by_source) != {"exhibition", "inbox"}:
            raise ValueError("by_source must give a basis for both exhibition and inbox")
        return self


class ReverificationPolicy(BaseModel):
    """The email asking a contact with stale details to confirm them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign: str = Field(default="reverify-details", pattern=r"^[a-z0-9][a-z0-9-]*$")
    # At most one re-verification email per contact in this many days.
    every_days: int = Field(default=365, ge=1)
    # A confirmation link works this many days after its email was sent.
    link_valid_days: int = Field(default=60, ge=1)


class GovernancePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    freshness: dict[FreshField, int] = Field(
        default={"job_title": 365, "phone": 365, "email": 730},
        description="Days a field stays fresh after it was last confirmed.",
    )
    # Source rows keep their raw cells this long; then the cells are dropped and the row,
    # its disposition and the counts stay.
    raw_retention_days: int = Field(default=730, ge=1)
    lawful_basis: LawfulBasisPolicy = LawfulBasisPolicy()
    reverification: ReverificationPolicy = ReverificationPolicy()


def governance_policy() -> GovernancePolicy:
    """``config_dir/governance.yaml``, validated."""
    return load_policy(get_settings().config_dir / "governance.yaml", GovernancePolicy)
