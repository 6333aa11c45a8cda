"""Governance policy: per-field freshness rules for the client database."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FreshField = Literal["email", "phone", "job_title", "city", "state", "country"]


class GovernancePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    freshness: dict[FreshField, int] = Field(
        default={"job_title": 365, "phone": 365, "email": 730},
        description="Days a field stays fresh after it was last confirmed.",
    )
    # Source rows keep their raw cells this long; then the cells are dropped and the row,
    # its disposition and the counts stay.
    raw_retention_days: int = Field(default=730, ge=1)
