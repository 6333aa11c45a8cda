"""The incoming folder: export files dropped for ingestion, and where they go once ingested.

A file is taken once: after its ingestion it moves to ``processed/<date>/``. A crash
between the ingestion and the move leaves it in place, and the next run ingests it again,
which changes nothing (an export is recognised by its content's hash).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

EXPORT_SUFFIXES = (".csv", ".xlsx")
PROCESSED = "processed"
# A file modified this recently may still be being copied in: left for the next run.
SETTLE_SECONDS = 5.0


def pending_exports(folder: Path, now: float | None = None) -> list[Path]:
    """Export files waiting in ``folder`` (not in its processed/), oldest first, except
    those still being written."""
    if not folder.is_dir():
        return []
    clock = time.time() if now is None else now
    found = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in EXPORT_SUFFIXES
        and not p.name.startswith(".")
        and clock - p.stat().st_mtime >= SETTLE_SECONDS
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def processed_path(folder: Path, name: str, when: datetime) -> Path:
    """Where an ingested file goes; a name taken that day gets a numbered suffix."""
    day = folder / PROCESSED / f"{when:%Y-%m-%d}"
    target = day / name
    n = 1
    while target.exists():
        stem, dot, suffix = name.rpartition(".")
        target = day / (f"{stem}.{n}{dot}{suffix}" if dot else f"{name}.{n}")
        n += 1
    return target


@task(name="archive-incoming", cache_policy=NO_CACHE)
def archive_incoming(files: list[str], folder: str) -> list[str]:
    """Move ingested files to processed/<date>/ so no later run takes them again."""
    moved = []
    now = datetime.now(UTC)
    for name in files:
        source = Path(name)
        target = processed_path(Path(folder), source.name, now)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        moved.append(str(target))
    return moved
