"""Stage exhibition files: read, map and normalise each one into an Arrow file on disk.

No Prefect here: files are independent, so a large batch is staged in worker processes,
each taking one file at a time, and a worker imports only what staging needs.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from pydantic import BaseModel

from config.policies import get_ingest_policies
from config.settings import get_settings
from connectors.exhibition_files import FileRejected, RawTable, read_table_slices
from tasks.ingest.mapping import UnmappableFile, choose_source, looks_like_header, map_columns
from tasks.ingest.normalize import normalize_table

# Below this many input bytes a worker process costs more (about a second to start and
# import pandas) than it saves; a 10,000-row export is about 1.5 MB.
PARALLEL_MIN_BYTES = 8_000_000
# Rows read and normalised at a time, so a staging process's memory does not grow with
# the file.
SLICE_ROWS = 20_000


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
        slices = read_table_slices(
            path, settings, lambda cells: looks_like_header(cells, policies.sources), SLICE_ROWS
        )
        table = next(slices)
        mapping = map_columns(table.header, policies.sources, chosen)
    except (FileRejected, UnmappableFile) as exc:
        return entry.model_copy(update={"status": "rejected", "error": f"{path.name}: {exc}"})
    normalize = partial(
        normalize_table,
        mapping=mapping,
        policy=policies.sources,
        default_region=settings.default_region,
        timezone=(chosen and policies.sources.sources[chosen].timezone)
        or timezone
        or settings.timezone,
        max_field_chars=settings.max_field_chars,
    )
    header, meta = table.header, table.meta
    # Slice by slice, each slice's raw cells released before the next is read: a slice's
    # intermediate columns, not the file's, set the peak. Normalisation goes row by row,
    # so the slices give the same rows, in the same order, as the file at once.
    parts = []
    part: RawTable | None = table
    del table
    with closing(slices):
        while part is not None:
            parts.append(normalize(part))
            part = None  # its raw cells go before the next slice is read
            part = next(slices, None)
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    del parts
    out = Path(staging_dir) / f"{entry.sha256}.arrow"
    write_staged(frame, out)
    detail = {
        **meta,
        "source": chosen,
        "unmapped_headers": mapping.unmapped,
        "columns": {header[i]: f for i, f in mapping.fields.items()},
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

    Each worker is a ``python -m tasks.ingest.staging_worker`` (see there why not a
    multiprocessing pool), fed by a thread that waits for it; it stages files one after
    another until none is left, so a batch pays one start (about a CPU second to import
    pandas) per worker, not per file.
    """
    workers = min(len(entries), os.cpu_count() or 1, get_settings().staging_workers)
    if workers < 2 or sum(e.size_bytes for e in entries) < parallel_min_bytes:
        return [stage_one(e, source, staging_dir, timezone) for e in entries]
    todo: queue.SimpleQueue[StagedFile] = queue.SimpleQueue()
    # Largest first, so a small file does not start last and finish alone.
    for entry in sorted(entries, key=lambda e: -e.size_bytes):
        todo.put(entry)
    job = {"source": source, "staging_dir": staging_dir, "timezone": timezone}
    with ThreadPoolExecutor(workers, thread_name_prefix="staging") as pool:
        done = list(pool.map(lambda _: _run_worker(todo, job), range(workers)))
    staged = {e.order: e for batch in done for e in batch}
    return [staged[e.order] for e in entries]


class StagingWorkerError(RuntimeError):
    """A staging worker died or answered nonsense; its stderr says why."""


RESULT_PREFIX = "staged: "


def _run_worker(todo: queue.SimpleQueue[StagedFile], job: dict[str, Any]) -> list[StagedFile]:
    """One worker process staging files from ``todo`` until it is empty.

    A job goes in as a JSON line on the worker's stdin; its staged entry comes back as a
    line starting with ``RESULT_PREFIX`` (anything else a library prints is passed over).
    If the worker dies, the files nobody has started are dropped from ``todo`` and the
    error names the file it was staging.
    """
    out: list[StagedFile] = []
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            [sys.executable, "-m", "tasks.ingest.staging_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=_worker_environment(),
        ) as proc,
    ):
        assert proc.stdin is not None and proc.stdout is not None
        while True:
            try:
                entry = todo.get_nowait()
            except queue.Empty:
                break
            proc.stdin.write(json.dumps({**job, "entry": entry.model_dump(mode="json")}) + "\n")
            proc.stdin.flush()
            answer = next((x for x in proc.stdout if x.startswith(RESULT_PREFIX)), None)
            if answer is None:
                while not todo.empty():  # the other workers stop after their current file
                    todo.get_nowait()
                proc.stdin.close()
                errors.seek(0)
                raise StagingWorkerError(
                    f"staging worker for {entry.name} exited with {proc.wait()}: "
                    f"{errors.read().strip()[-2000:]}"
                )
            out.append(StagedFile.model_validate_json(answer[len(RESULT_PREFIX) :]))
        proc.stdin.close()
    return out


def _worker_environment() -> dict[str, str]:
    """This process's environment, plus the allocator the workers should use.

    Arrow's default allocator (mimalloc) keeps what a slice's columns freed; jemalloc
    hands it back, which keeps a worker ~40 MB smaller. Arrow reads the choice when it is
    imported, so it travels in the environment (unless set already).
    """
    return {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc", **os.environ}


def write_staged(frame: pd.DataFrame, path: Path) -> None:
    """Keep a staged frame on disk until the batch is stored (files and inbox alike).

    Arrow's own file format, LZ4-compressed: read back, text columns are Arrow strings (a
    third of the memory of the Python strings a pickle brings back), and it writes and
    reads several times faster than Parquet for a little more disk.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.reset_index(drop=True).to_feather(path, compression="lz4")


def read_staged(
    path: str | Path, without: Sequence[str] = (), only: Sequence[str] | None = None
) -> pd.DataFrame:
    """A staged frame, or some of its columns (``only``, or all but ``without``)."""
    if only is None and without:
        with pa.ipc.open_file(path) as staged:
            names = staged.schema.names
        only = [c for c in names if c not in without]
    return pd.read_feather(path, columns=list(only) if only is not None else None)
