"""Stage exhibition files: read, map and normalise each one into a Parquet file on disk.

No Prefect here: files are independent, so a large batch is staged in worker processes,
one file each, and a worker imports only what staging needs.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pydantic import BaseModel

from config.policies import get_ingest_policies
from config.settings import get_settings
from connectors.exhibition_files import FileRejected, read_table
from tasks.column_mapping import UnmappableFile, choose_source, looks_like_header, map_columns
from tasks.normalize import normalize_table

# Below this many input bytes a worker process costs more (about a second to start and
# import pandas) than it saves; a 10,000-row export is about 1.5 MB.
PARALLEL_MIN_BYTES = 8_000_000


class StagedFile(BaseModel):
    order: int
    name: str
    path: str
    sha256: str
    size_bytes: int
    event: str | None
    staged_path: str | None = None
    status: str = "ingested"
    error: str | None = None
    rows_in: int = 0
    detail: dict[str, Any] = {}


def stage_one(
    entry: StagedFile, source: str | None, staging_dir: str, timezone: str | None = None
) -> StagedFile:
    """Read, map and normalise one file; a file we cannot read is rejected with its reason."""
    settings, policies = get_settings(), get_ingest_policies()
    path = Path(entry.path)
    try:
        chosen = choose_source(path.name, policies.sources, source)
        table = read_table(path, settings, lambda cells: looks_like_header(cells, policies.sources))
        mapping = map_columns(table.header, policies.sources, chosen)
    except (FileRejected, UnmappableFile) as exc:
        return entry.model_copy(update={"status": "rejected", "error": f"{path.name}: {exc}"})
    frame = normalize_table(
        table,
        mapping,
        policies.sources,
        default_region=settings.default_region,
        timezone=(chosen and policies.sources.sources[chosen].timezone)
        or timezone
        or settings.timezone,
        max_field_chars=settings.max_field_chars,
    )
    out = Path(staging_dir) / f"{entry.sha256}.parquet"
    write_staged(frame, out)
    detail = {
        **table.meta,
        "source": chosen,
        "unmapped_headers": mapping.unmapped,
        "columns": {table.header[i]: f for i, f in mapping.fields.items()},
    }
    return entry.model_copy(
        update={"staged_path": str(out), "rows_in": len(frame), "detail": detail}
    )


def stage_all(
    entries: Sequence[StagedFile],
    source: str | None,
    staging_dir: str,
    timezone: str | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> list[StagedFile]:
    """``stage_one`` for every entry, in order; in worker processes when the batch is large
    and settings allow more than one (``staging_workers``).

    Workers are spawned, not forked: the parent runs Prefect's threads, and a fork copies
    whatever locks they hold. Settings reach the workers through the environment. A spawned
    worker imports the main module again (guarded by ``if __name__ == "__main__"`` in every
    entry point we ship) and this module: about a CPU second each, paid back from about
    10,000 rows up.
    """
    stage = partial(stage_one, source=source, staging_dir=staging_dir, timezone=timezone)
    workers = min(len(entries), os.cpu_count() or 1, get_settings().staging_workers)
    if workers < 2 or sum(e.size_bytes for e in entries) < parallel_min_bytes:
        return [stage(e) for e in entries]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(stage, entries))


def write_staged(frame: pd.DataFrame, path: Path) -> None:
    """Keep a staged frame on disk until the batch is stored (files and inbox alike).

    Parquet, not pickle: read back, its text columns are Arrow strings, a third of the
    memory of the Python strings a pickle brings back for the whole batch at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_staged(
    path: str | Path, without: Sequence[str] = (), only: Sequence[str] | None = None
) -> pd.DataFrame:
    """A staged frame, or some of its columns (``only``, or all but ``without``)."""
    if only is None and without:
        names = pq.read_schema(path).names
        only = [c for c in names if c not in without]
    return pd.read_parquet(path, columns=list(only) if only is not None else None)
