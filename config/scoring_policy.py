"""The scorecard and audience policy, validated from ``config/scoring.yaml``.

The factor/level vocabulary lives here (not in the YAML) because the scoring code computes
those levels: a policy that names a level the code never produces, or omits one it does,
would silently score zero, so validation rejects it with the key that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.policy_loader import load_policy

DEFAULT_SCORING_POLICY_PATH = Path(__file__).resolve().parent / "scoring.yaml"

ABSENT = "absent"
BANDS: tuple[str, ...] = ("A", "B", "C", "D")

# Level 0 of every factor is ABSENT (input missing: factor skipped); levels 1.. follow.
FACTOR_LEVELS: dict[str, tuple[str, ...]] = {
    "tax_id": ("valid_company", "valid_person", "invalid"),
    "email_domain": ("corporate", "free_mail", "disposable"),
    "completeness": ("full", "partial", "sparse"),
    "phone_country": ("match", "mismatch"),
    "domain_company": ("match", "mismatch"),
    "seniority": ("executive", "manager", "staff", "other"),
    "lead_rating": ("hot", "warm", "cold"),
    "engagement": ("replied", "opened", "ignored"),
    "complaints": ("none", "minor", "critical"),
    "obligations": ("met", "late_payments", "missed"),
    "data_age": ("fresh", "aging", "stale"),
    "registry_status": ("active", "inactive"),
    "company_age": ("established", "young", "new"),
    "company_size": ("large", "medium", "small", "micro"),
}
FACTORS: tuple[str, ...] = tuple(FACTOR_LEVELS)


def reason_code(factor: str, level: str) -> str:
    """Stable code stored with each score, e.g. ``TAX_ID_VALID_COMPANY``."""
    return f"{factor}_{level}".upper()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelConfig(_Strict):
    points: float
    reason: str = Field(min_length=3, description="Words an account manager can read.")


class FactorConfig(_Strict):
    weight: float = Field(default=1.0, ge=0.0)
    absent: str = Field(min_length=3, description="Said when the factor is skipped.")
    levels: dict[str, LevelConfig]


class Bands(_Strict):
    """Lower score bounds; anything below C is D."""

    A: float = Field(ge=0, le=100)
    B: float = Field(ge=0, le=100)
    C: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> Bands:
        if not self.A > self.B > self.C:
            raise ValueError(f"bands must satisfy A > B > C, got {self.A}, {self.B}, {self.C}")
        return self


class Thresholds(_Strict):
    fresh_max_days: int = Field(default=180, gt=0)
    aging_max_days: int = Field(default=730, gt=0)
    established_min_years: float = Field(default=5.0, gt=0)
    young_min_years: float = Field(default=1.0, ge=0)
    large_min_employees: int = Field(default=250, gt=0)
    medium_min_employees: int = Field(default=50, gt=0)
    small_min_employees: int = Field(default=10, gt=0)
    critical_complaints_total: int = Field(default=5, gt=0)
    domain_company_min_similarity: float = Field(default=90.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.fresh_max_days >= self.aging_max_days:
            raise ValueError("fresh_max_days must be below aging_max_days")
        if self.young_min_years >= self.established_min_years:
            raise ValueError("young_min_years must be below established_min_years")
        if not (self.large_min_employees > self.medium_min_employees > self.small_min_employees):
            raise ValueError("employee thresholds must satisfy large > medium > small")
        return self


class LeadRatingMap(_Strict):
    """Raw fair ratings (any language, or stars) to hot/warm/cold."""

    aliases: dict[str, Literal["hot", "warm", "cold"]]
    stars: dict[int, Literal["hot", "warm", "cold"]]


class RegistryFields(_Strict):
    """Dotted JSON paths (``data.company.status``, ``items.0.size``) into the response."""

    legal_status: str
    founded: str
    size: str


class RegistryMapping(_Strict):
    path_template: str = Field(pattern=r"\{tax_id\}")
    fields: RegistryFields
    refresh_age_days: float = Field(default=30.0, gt=0)
    active_statuses: list[str]
    inactive_statuses: list[str]
    size_aliases: dict[str, Literal["large", "medium", "small", "micro"]]


class AudiencePolicy(_Strict):
    min_segment_size: int = Field(default=5, ge=1)
    top_segments: int = Field(default=3, ge=1)
    industry_keywords: dict[str, list[str]]
    industry_by_company: dict[str, str] = {}
    need_tags: dict[str, list[str]]


class ScoringPolicy(_Strict):
    version: str = Field(min_length=1)
    combine: Literal["additive", "logistic"] = "additive"
    base: float = 50.0
    points_to_double_odds: float = Field(default=10.0, gt=0)
    max_reasons: int = Field(default=4, ge=1, le=6)  # reason keys pack 7 bits per slot
    bands: Bands
    factors: dict[str, FactorConfig]
    thresholds: Thresholds = Thresholds()
    free_mail_domains: list[str]
    disposable_domains: list[str]
    seniority_keywords: dict[Literal["executive", "manager", "staff"], list[str]]
    lead_rating: LeadRatingMap
    registry: RegistryMapping
    audience: AudiencePolicy

    @field_validator("free_mail_domains", "disposable_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({d.strip().lower() for d in value if d.strip()})

    @model_validator(mode="after")
    def _factors_match_code(self) -> ScoringPolicy:
        missing = set(FACTORS) - set(self.factors)
        unknown = set(self.factors) - set(FACTORS)
        if missing or unknown:
            raise ValueError(
                f"factors must be exactly {sorted(FACTORS)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        for name, factor in self.factors.items():
            expected = set(FACTOR_LEVELS[name])
            if set(factor.levels) != expected:
                raise ValueError(
                    f"factors.{name}.levels must be exactly {sorted(expected)}, "
                    f"got {sorted(factor.levels)}"
                )
        return self

    def band_for(self, score: float) -> str:
        """Band of one score; the vectorised scorecard uses the same bounds."""
        if score >= self.bands.A:
            return "A"
        if score >= self.bands.B:
            return "B"
        if score >= self.bands.C:
            return "C"
        return "D"


def load_scoring_policy(path: Path | None = None) -> ScoringPolicy:
    """The scorecard from ``path`` (default: the bundled ``config/scoring.yaml``)."""
    return load_policy(path or DEFAULT_SCORING_POLICY_PATH, ScoringPolicy)
