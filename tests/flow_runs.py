"""Our flows are async flows with sync bodies (see ``flows.daily``); the tests that call
them are sync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from prefect import Flow

P = ParamSpec("P")
R = TypeVar("R")


def run_to_end(flow: Flow[P, Coroutine[Any, Any, R]]) -> Callable[P, R]:
    """``flow`` as a plain function that runs it to completion in a new event loop."""

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(flow(*args, **kwargs))

    return call
