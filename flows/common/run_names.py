"""Run names that say what ran and for which day, as ops scan them in the UI's run list."""

from __future__ import annotations

from datetime import UTC, datetime


def as_of_stamp(fmt: str = "%Y-%m-%d", default: datetime | None = None) -> str:
    """The run's ``as_of`` parameter, else ``default``, else now (UTC), formatted.

    A scheduled run has no ``as_of`` (it means now), and a run started from the UI's form
    may carry it as ISO text, so both are handled here rather than by a name template.
    """
    from prefect.runtime import flow_run

    value = flow_run.parameters.get("as_of")
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{when or default or datetime.now(UTC):{fmt}}"
