"""Policy models for ingestion (column mapping, matching) and the cached getter."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from config.policy_loader import load_policy
from config.settings import get_settings

FIELDS = (
    "first_name", "last_name", "full_name", "email", "company", "job_title", "phone", "mobile",
    "tax_id", "country", "state", "city", "notes", "lead_rating", "scan_time",
)  # fmt: skip


class NamedSource(BaseModel):
    match: list[str] = []
    columns: dict[str, str] = {}
    timezone: str | None = Field(None, description="Zone of the scan times (the fair's clock).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {v!r} (expected e.g. Europe/Madrid)") from exc
        return v

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v.values()) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; expected one of {list(FIELDS)}")
        return v


class SourcesPolicy(BaseModel):
    aliases: dict[str, list[str]]
    sources: dict[str, NamedSource] = {}
    countries: dict[str, list[str]] = {}
    free_mail_domains: list[str] = []
    legal_suffixes: list[str] = []
    name_particles: list[str] = []
    lead_ratings: dict[str, list[str]] = {}

    @field_validator("aliases")
    @classmethod
    def _alias_fields(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; expected one of {list(FIELDS)}")
        return v


class MatchingPolicy(BaseModel):
    name_threshold: float = Field(88, ge=0, le=100)
    name_fit_threshold: float = Field(70, ge=0, le=100)
    phone_name_threshold: float = Field(85, ge=0, le=100)
    email_name_conflict: float = Field(45, ge=0, le=100)
    company_min_length: int = Field(5, ge=1)
    company_distinctive_share: float = Field(0.002, gt=0, le=1)
    company_containment: float = Field(0.85, ge=0, le=1)
    company_overlap: float = Field(0.4, ge=0, le=1)
    free_mail_min_companies: int = Field(5, ge=2)
    role_mailboxes: list[str] = []
    max_block_size: int = Field(5000, ge=2)
    rare_name_max_namesakes: float = Field(0.01, ge=0)
    rare_name_min_names: int = Field(20_000, ge=2)


@dataclass(frozen=True)
class IngestPolicies:
    sources: SourcesPolicy
    matching: MatchingPolicy


@lru_cache
def get_ingest_policies() -> IngestPolicies:
    cfg = get_settings().config_dir
    return IngestPolicies(
        sources=load_policy(cfg / "sources.yaml", SourcesPolicy),
        matching=load_policy(cfg / "matching.yaml", MatchingPolicy),
    )
