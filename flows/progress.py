"""A progress artifact for long runs, so ops watching the UI see how far a run has got
(and where it stopped) without reading its logs."""

from __future__ import annotations

import asyncio
from uuid import UUID

from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact


class RunProgress:
    """Advances one progress artifact from 0 to 100 % over ``total`` steps.

    The description names the step just finished, so a run that dies mid-way shows the
    last stage it completed. Async, for the daily pipeline (an async flow): each update is
    sent in the background, in order, while the next stage starts (an update is an API
    round trip, which would otherwise hold up every stage); ``flush`` waits for them.
    """

    def __init__(self, total: int, key: str, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.key = key
        self.description = description
        self._sent: asyncio.Future[UUID | None] | None = None

    def start(self) -> None:
        self._chain(None, f"{self.description}: starting")

    def advance(self, finished: str) -> None:
        self.done = min(self.done + 1, self.total)
        self._chain(
            100.0 * self.done / self.total,
            f"{self.description}: {finished} ({self.done}/{self.total})",
        )

    async def flush(self) -> None:
        """Wait until every update has reached the API (raising if one failed)."""
        if self._sent is not None:
            await self._sent

    def _chain(self, progress: float | None, description: str) -> None:
        previous = self._sent

        async def send() -> UUID | None:
            artifact_id = await previous if previous is not None else None
            if artifact_id is None:
                return await acreate_progress_artifact(
                    progress or 0.0, key=self.key, description=description
                )
            await aupdate_progress_artifact(artifact_id, progress or 0.0, description=description)
            return artifact_id

        self._sent = asyncio.ensure_future(send())
