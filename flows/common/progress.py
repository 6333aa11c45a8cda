"""A progress artifact for long runs, so ops watching the UI see how far a run has got
(and where it stopped) without reading its logs."""

from __future__ import annotations

from uuid import UUID

from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact


class RunProgress:
    """Advances one progress artifact from 0 to 100 % over ``total`` steps.

    The description names the step just finished, so a run that dies mid-way shows the
    last stage it completed. Async, for the daily pipeline (an async flow).
    """

    def __init__(self, total: int, key: str, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.key = key
        self.description = description
        self.artifact_id: UUID | None = None

    async def start(self) -> None:
        self.artifact_id = await acreate_progress_artifact(
            0.0, key=self.key, description=f"{self.description}: starting"
        )

    async def advance(self, finished: str) -> None:
        assert self.artifact_id is not None, "start() creates the artifact first"
        self.done = min(self.done + 1, self.total)
        await aupdate_progress_artifact(
            self.artifact_id,
            100.0 * self.done / self.total,
            description=f"{self.description}: {finished} ({self.done}/{self.total})",
        )
