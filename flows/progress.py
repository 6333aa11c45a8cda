"""A progress artifact for long runs, so ops watching the UI see how far a run has got
(and where it stopped) without reading its logs."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact


class RunProgress:
    """Advances one progress artifact from 0 to 100 % over ``total`` steps.

    The description names the step just finished, so a run that dies mid-way shows the
    last stage it completed.
    """

    def __init__(self, total: int, key: str, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.description = description
        # Called from sync code, so the UUID itself (the coroutine is for async callers).
        self.artifact_id = cast(
            UUID, create_progress_artifact(0.0, key=key, description=f"{description}: starting")
        )

    def advance(self, finished: str) -> None:
        self.done = min(self.done + 1, self.total)
        update_progress_artifact(
            self.artifact_id,
            100.0 * self.done / self.total,
            description=f"{self.description}: {finished} ({self.done}/{self.total})",
        )
