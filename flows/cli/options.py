"""Options and command groups that several capabilities' commands share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from tasks.common.clock import as_utc

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ACCOUNTFLOW_TOKEN",
        help="Your member token (`accountflow team token`); acts as that member.",
        show_default=False,
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="This instant instead of now (ISO 8601; UTC when no offset)."),
]


def parse_instant(value: str | None, option: str = "--as-of") -> datetime | None:
    """An ISO 8601 date or instant from the command line, aware; naive means UTC.

    Every command reads time the same way, so a user can paste one value into any of them.
    """
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option}: not an ISO 8601 instant: {value!r}") from exc
    return as_utc(parsed)


def group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The command group ``name`` of ``app``, created on first use.

    Several capabilities add to one group (``report``, ``ingest``); whichever registers first
    creates it and the others add to it rather than shadow it.
    """
    for registered in app.registered_groups:
        if registered.name == name and registered.typer_instance is not None:
            return registered.typer_instance
    created = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(created, name=name)
    return created
