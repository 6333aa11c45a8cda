"""A staging worker process: ``python -m tasks.staging_worker`` stages one file.

The job (the entry and the staging arguments) arrives as JSON on stdin; the staged entry
goes back as JSON, the last line on stdout. A worker of its own rather than a
multiprocessing pool: a spawned pool worker imports the program that started it again,
and under the ``accountflow`` CLI that is Prefect, about 0.27 GB a worker; this one
imports staging alone. Settings reach it through the environment it inherits.
"""

from __future__ import annotations

import json
import sys

from tasks.staging import StagedFile, stage_one


def main() -> None:
    job = json.load(sys.stdin)
    entry = StagedFile.model_validate(job["entry"])
    staged = stage_one(entry, job["source"], job["staging_dir"], job["timezone"])
    sys.stdout.write(staged.model_dump_json() + "\n")


if __name__ == "__main__":
    main()
