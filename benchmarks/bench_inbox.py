"""Inbox throughput: read + parse + classify ``n`` messages from a Maildir.

The issue's target is 500 messages/s including storage; this measures the part before
storage so the budget left for the database is visible. Peak memory is the traced Python
heap during a second, untimed pass (tracemalloc slows the code it watches).
Run: ``.venv/bin/python -m benchmarks.bench_inbox 10000``.
"""

from __future__ import annotations

import json
import mailbox
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from itertools import islice
from pathlib import Path

from connectors.mailbox import MaildirReader
from tasks.mail_classification import MailClassifier
from tasks.mail_parsing import oversize_record, parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mail"


def _samples() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.rglob("*.eml"))]


def _pass(directory: Path, classifier: MailClassifier, limit: int | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in islice(MaildirReader(directory).messages(), limit):
        parsed = (
            parse_message(record.raw) if record.raw is not None else oversize_record(record.size)
        )
        counts[classifier.classify(parsed).label.value] += 1
    return counts


def run(n: int) -> dict[str, object]:
    """Generate ``n`` messages (cycling the labelled fixtures) and time the inbox core."""
    samples = _samples()
    classifier = MailClassifier.default()
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp:
        mailbox.Maildir(Path(tmp) / "Maildir", create=True)
        new = Path(tmp) / "Maildir" / "new"
        for i in range(n):  # direct writes: mailbox.Maildir.add is slow and not under test
            (new / f"{i:08d}.bench:2,").write_bytes(samples[i % len(samples)])
        start, cpu_start = time.perf_counter(), time.process_time()
        counts = _pass(Path(tmp) / "Maildir", classifier)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start  # wall time is noisy on a shared machine
        tracemalloc.start()
        # The pipeline streams, so the peak is reached early; 2,000 keeps the pass short.
        _pass(Path(tmp) / "Maildir", classifier, limit=2_000)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "messages": n,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(n / elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "messages_per_cpu_second": round(n / cpu, 1),
        "peak_traced_mb": round(peak / 1e6, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "classes": dict(sorted(counts.items())),
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000), indent=2))
