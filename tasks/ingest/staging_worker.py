"""A staging worker process: ``python -m tasks.ingest.staging_worker`` stages files (or pieces of
one) one by one.

Each job (an entry and the staging arguments) arrives as a JSON line on stdin; its staged
entry goes back on stdout, as a line starting with ``RESULT_PREFIX``. The worker ends when
stdin closes. A worker of its own rather than a multiprocessing pool: a spawned pool
worker imports the program that started it again, and under the ``accountflow`` CLI that
is Prefect, about 0.27 GB a worker; this one imports staging alone. Settings reach it
through the environment it inherits.
"""

from __future__ import annotations

import json
import sys

from connectors.exhibition_files import CsvDialect, CsvPiece
from tasks.ingest.staging import RESULT_PREFIX, StagedFile, stage_one


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        entry = StagedFile.model_validate(job["entry"])
        found = job.get("piece")
        piece = found and CsvPiece(**{**found, "dialect": CsvDialect(**found["dialect"])})
        staged = stage_one(entry, job["source"], job["staging_dir"], job["timezone"], piece)
        sys.stdout.write(RESULT_PREFIX + staged.model_dump_json() + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
