"""Stage exhibition files: read, map and normalise each one into an Arrow file on disk.

No Prefect here: files are independent, so a large batch is staged in worker processes,
each taking one file at a time, and a worker imports only what staging needs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from pydantic import BaseModel

from config.policies import IngestPolicies, get_ingest_policies
from config.settings import Settings, get_settings
from connectors.exhibition_files import (
    CsvPiece,
    FileRejected,
    RawTable,
    plan_csv_pieces,
    read_table_slices,
)
from tasks.common.masking import mask_personal_data
from tasks.ingest.mapping import UnmappableFile, choose_source, looks_like_header, map_columns
from tasks.ingest.normalize import normalize_table

# Below this many input bytes a worker process costs more (about a second to start and
# import pandas) than it saves; a 10,000-row export is about 1.5 MB.
PARALLEL_MIN_BYTES = 8_000_000
# A CSV of at least this many bytes is staged in pieces, one per worker.
SPLIT_MIN_BYTES = PARALLEL_MIN_BYTES
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
# Rows read and normalised at a time, so a staging process's memory does not grow with
# the file.
SLICE_ROWS = 20_000


logger = logging.getLogger(__name__)


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
    entry: StagedFile,
    source: str | None,
    staging_dir: str,
    timezone: str | None = None,
    piece: CsvPiece | None = None,
) -> StagedFile:
    """Read, map and normalise one file (or one ``piece`` of a large CSV).

    A file we cannot read or map is rejected with its reason; so is one that fails for a
    reason nobody foresaw (a bug): it costs that file, not the batch's other files.
    """
    settings, policies = get_settings(), get_ingest_policies()
    # A piece's name holds the entry's order too: the same content given twice in one
    # command is two entries whose pieces must not meet.
    out = Path(staging_dir) / (
        f"{entry.sha256}.arrow"
        if piece is None
        else f"{entry.sha256}-{entry.order}.{piece.index}.arrow"
    )
    try:
        return _stage(entry, source, out, timezone, piece, settings, policies)
    except (FileRejected, UnmappableFile) as exc:
        error = f"{entry.name}: {exc}"
    except Exception as exc:  # the bug we did not foresee: see the docstring
        logger.exception("staging %s failed", entry.name)
        error = f"{entry.name}: could not be staged: {_where(exc)}"
    out.unlink(missing_ok=True)
    return entry.model_copy(update={"status": "rejected", "error": error})


# Where our packages live: the innermost frame in one is where an error met our code.
_OURS = tuple(
    str(Path(__file__).resolve().parents[2] / name) + os.sep
    for name in ("config", "connectors", "tasks", "flows")
)


def _where(exc: BaseException) -> str:
    """An unexpected error in a line: its type, our innermost frame, its message (cut, and
    masked: an exception may quote the cell it choked on, and summaries are shared)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_OURS)]
    at = ours[-1] if ours else None
    place = f" in {Path(at.filename).name}:{at.lineno} ({at.name})" if at else ""
    return f"{type(exc).__name__}{place}: {mask_personal_data(str(exc)[:300])}"


def _stage(
    entry: StagedFile,
    source: str | None,
    out: Path,
    timezone: str | None,
    piece: CsvPiece | None,
    settings: Settings,
    policies: IngestPolicies,
) -> StagedFile:
    path = Path(entry.path)
    chosen = choose_source(path.name, policies.sources, source)
    slices = read_table_slices(
        path,
        settings,
        lambda cells: looks_like_header(cells, policies.sources),
        SLICE_ROWS,
        piece,
    )
    table = next(slices)
    mapping = map_columns(table.header, policies.sources, chosen)
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
    split_min_bytes: int = SPLIT_MIN_BYTES,
) -> list[StagedFile]:
    """``stage_one`` for every entry, in order; in worker processes when the batch is large
    and settings allow more than one (``staging_workers``), each CSV of at least
    ``split_min_bytes`` split into a piece per worker (``plan_csv_pieces``) and joined
    again, so one large export uses every worker too.

    Each worker is a ``python -m tasks.ingest.staging_worker`` (see there why not a
    multiprocessing pool), fed by a thread that waits for it; it stages jobs one after
    another until none is left, so a batch pays one start (about a CPU second to import
    pandas) per worker, not per file. The pieces are planned while the workers start.
    """
    workers = min(os.cpu_count() or 1, get_settings().staging_workers)
    splittable = {e.order for e in entries if _splittable(e, split_min_bytes)}
    workers = min(workers, len(entries) + len(splittable) * (workers - 1))
    if workers < 2 or sum(e.size_bytes for e in entries) < parallel_min_bytes:
        return [stage_one(e, source, staging_dir, timezone) for e in entries]
    todo: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
    job = {"source": source, "staging_dir": staging_dir, "timezone": timezone}
    with ThreadPoolExecutor(workers, thread_name_prefix="staging") as pool:
        running = [pool.submit(_run_worker, todo, job, workers) for _ in range(workers)]
        jobs: list[_Job] = []
        try:
            for entry in entries:
                pieces = _pieces(entry, workers) if entry.order in splittable else []
                jobs += [(entry, p) for p in pieces] or [(entry, None)]
        finally:  # a worker ends when it meets a None: after the jobs, or at once
            # Largest first, so a small job does not start last and finish alone.
            for item in [*sorted(jobs, key=_job_bytes, reverse=True), *[None] * workers]:
                todo.put(item)
        done = [result for f in running for result in f.result()]
    by_file: dict[int, list[tuple[int, StagedFile]]] = {}
    for (entry, piece), result in done:
        by_file.setdefault(entry.order, []).append((piece.index if piece else -1, result))
    out = []
    for e in entries:
        results = sorted(by_file[e.order], key=lambda r: r[0])
        whole = results[0][0] == -1
        out.append(results[0][1] if whole else _joined(e, [r for _, r in results], staging_dir))
    return out


# A job: a file, or one piece of it.
_Job = tuple[StagedFile, CsvPiece | None]


def _splittable(entry: StagedFile, split_min_bytes: int) -> bool:
    return entry.size_bytes >= split_min_bytes and Path(entry.name).suffix.lower() in CSV_SUFFIXES


def _pieces(entry: StagedFile, workers: int) -> list[CsvPiece]:
    """The file's pieces; none (staged whole) when planning fails, so that ``stage_one``
    meets the problem and rejects the file with its reason."""
    policy = get_ingest_policies().sources
    try:
        return plan_csv_pieces(Path(entry.path), lambda c: looks_like_header(c, policy), workers)
    except Exception:  # see the docstring
        logger.exception("planning pieces of %s failed; staging it whole", entry.name)
        return []


def _job_bytes(job: _Job) -> int:
    entry, piece = job
    if piece is None:
        return entry.size_bytes
    return (entry.size_bytes if piece.end is None else piece.end) - piece.start


def _joined(entry: StagedFile, parts: list[StagedFile], staging_dir: str) -> StagedFile:
    """One staged file from its pieces' staged files, in order: the rows, row numbers and
    detail the file staged whole would have; rejected if any piece was."""
    paths = [Path(p.staged_path) for p in parts if p.staged_path]
    rejected = next((p for p in parts if p.status == "rejected"), None)
    if rejected is not None:
        for path in paths:
            path.unlink(missing_ok=True)
        return rejected
    out = Path(staging_dir) / f"{entry.sha256}.arrow"
    _concat_staged(paths, out)
    for path in paths:
        path.unlink()
    return parts[0].model_copy(
        update={"staged_path": str(out), "rows_in": sum(p.rows_in for p in parts)}
    )


class StagingWorkerError(RuntimeError):
    """A staging worker died or answered nonsense; its stderr says why."""


RESULT_PREFIX = "staged: "


def _run_worker(
    todo: queue.SimpleQueue[_Job | None], job: dict[str, Any], workers: int
) -> list[tuple[_Job, StagedFile]]:
    """One worker process staging jobs from ``todo`` until it meets a None.

    A job goes in as a JSON line on the worker's stdin; its staged entry comes back as a
    line starting with ``RESULT_PREFIX`` (anything else a library prints is passed over).
    If the worker dies, the jobs nobody has started are dropped from ``todo`` (the other
    workers stop after their current one) and the error names the file it was staging.
    """
    out: list[tuple[_Job, StagedFile]] = []
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
        while (item := todo.get()) is not None:
            entry, piece = item
            request = {
                **job,
                "entry": entry.model_dump(mode="json"),
                "piece": dataclasses.asdict(piece) if piece else None,
            }
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            answer = next((x for x in proc.stdout if x.startswith(RESULT_PREFIX)), None)
            if answer is None:
                while not todo.empty():
                    todo.get_nowait()
                for _ in range(workers):
                    todo.put(None)
                proc.stdin.close()
                errors.seek(0)
                raise StagingWorkerError(
                    f"staging worker for {entry.name} exited with {proc.wait()}: "
                    f"{errors.read().strip()[-2000:]}"
                )
            out.append((item, StagedFile.model_validate_json(answer[len(RESULT_PREFIX) :])))
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


def _concat_staged(paths: Sequence[Path], out: Path) -> None:
    """One staged file holding the rows of ``paths`` in order, batch by batch, so the
    file's rows are never all in memory; a column all empty in one piece (Arrow's null
    type) takes the type the others give it."""
    readers = [pa.ipc.open_file(pa.memory_map(str(p))) for p in paths]
    schema = pa.unify_schemas([r.schema for r in readers]).with_metadata(readers[0].schema.metadata)
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as w:
        for reader in readers:
            for i in range(reader.num_record_batches):
                w.write_batch(reader.get_batch(i).cast(schema))


def read_staged(
    path: str | Path, without: Sequence[str] = (), only: Sequence[str] | None = None
) -> pd.DataFrame:
    """A staged frame, or some of its columns (``only``, or all but ``without``)."""
    if only is None and without:
        with pa.ipc.open_file(path) as staged:
            names = staged.schema.names
        only = [c for c in names if c not in without]
    return pd.read_feather(path, columns=list(only) if only is not None else None)
