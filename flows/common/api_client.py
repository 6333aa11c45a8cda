"""One sync Prefect API client for a whole flow run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.context import SyncClientContext


@contextmanager
def one_sync_client() -> Iterator[None]:
    """Hold one sync API client for the sync tasks of an async flow.

    Our flows are async with sync bodies (see ``flows.daily``). Prefect gives an async flow
    an async client only, so each sync task call would open a sync client of its own:
    about 45 ms a task on this machine, most of it loading the CA bundle, which was the
    whole per-task overhead. Reuses the client of an enclosing run (a stage of the daily
    pipeline uses the pipeline's).
    """
    with SyncClientContext.get_or_create():
        yield
