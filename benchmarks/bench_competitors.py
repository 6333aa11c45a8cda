"""The competitor watch: fetching at scale, and how well changes are classified.

``fetch``: 50 hosts (HTTP servers on 127.0.0.1 ... 127.0.0.50, in a separate process so
they do not share the watch's interpreter), 10 policy pages each, behind robots.txt. Three
runs of the watch's unit of work (``tasks.competitors.pipeline.watch``, no Prefect) into
SQLite in a temp dir: a cold run (every page new), an unchanged run (every page should cost
one conditional request answered 304) and a run where one page per host changed. One
per-host limiter is shared by the three runs, as it would be in one process, and the
servers' own request log is checked against it: the most requests any host saw in any
60-second window. Target: 500 pages in 60 s or less per run with the limit held.

``classify``: precision and recall of "material change" on the labelled pairs of
``benchmarks/competitor_pairs.py``, the training templates and the held-out ones apart.
Target: 0.95 or better on the held-out part.

``--per-minute 6 --runs 1`` makes the limit bind (11 requests per host, 6 allowed a
minute): the run must take a minute and no host may see a seventh request within one.

Run: ``python -m benchmarks.bench_competitors fetch [--hosts 50] [--pages 10]
[--per-minute 40] [--runs 3]`` and ``python -m benchmarks.bench_competitors classify``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

FILLER = (
    "Estas condições aplicam-se a todas as vendas realizadas pelos nossos canais, salvo "
    "acordo escrito em contrário entre as partes. "
) * 6


def page_html(host: int, page: int, version: int) -> bytes:
    """A policy page of about 6 KB whose values move with ``version``."""
    clauses = [
        f"Pagamento em até {30 + 15 * version} dias após a emissão da nota fiscal.",
        f"Entrega em {5 + version} dias úteis para as capitais.",
        f"Devolução aceita em até {7 + 7 * version} dias após o recebimento.",
        f"Todos os produtos têm garantia de {12 + 6 * version} meses.",
        f"Desconto de {3 + version}% para pedidos acima de R$ 2.000,00.",
        "Atendimento de segunda a sexta, das 8h às 18h.",
    ]
    body = "".join(f"<p>{c}</p><p>{FILLER}</p>" for c in clauses)
    nav = "".join(
        f'<li><a href="/p{i}.html?utm_source=menu">Página {i}</a></li>' for i in range(10)
    )
    return (
        '<!DOCTYPE html><html lang="pt"><head><meta charset="utf-8">'
        f"<title>Termos {host}-{page}</title></head><body><nav><ul>{nav}</ul></nav>"
        f"<main><h1>Termos e condições {host}-{page}</h1>{body}</main>"
        "<footer>Atualizado em 3 de dezembro de 2026</footer></body></html>"
    ).encode()


def _serve(hosts: int, pages: int, conn: Connection) -> None:
    """The 50 sites; answers control messages on ``conn`` (bump, log, stop)."""
    versions: dict[tuple[int, int], int] = defaultdict(int)
    log: list[tuple[int, str, float, int]] = []
    lock = threading.Lock()
    servers = []

    def handler_for(host: int) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                with lock:
                    log.append((host, self.path, time.time(), status))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/robots.txt":
                    body = b"User-agent: *\nDisallow: /private/\n"
                    self._send(200, body, {"Content-Type": "text/plain"})
                    return
                page = int(self.path.removeprefix("/p").removesuffix(".html"))
                version = versions[(host, page)]
                etag = f'"v{version}"'
                headers = {
                    "ETag": etag,
                    "Last-Modified": formatdate(1_780_000_000 + version * 86400, usegmt=True),
                    "Content-Type": "text/html; charset=utf-8",
                }
                if self.headers.get("If-None-Match") == etag:
                    self._send(304, b"", headers)
                    return
                self._send(200, page_html(host, page, version), headers)

        return Handler

    for h in range(hosts):
        server = ThreadingHTTPServer((f"127.0.0.{h + 1}", 0), handler_for(h))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    conn.send([s.server_address[1] for s in servers])
    while True:
        command, arg = conn.recv()
        if command == "bump":
            for key in arg:
                versions[tuple(key)] += 1  # type: ignore[index]
            conn.send(None)
        elif command == "log":
            with lock:
                conn.send(list(log))
                log.clear()
        else:
            for server in servers:
                server.shutdown()
            conn.send(None)
            return


def _max_in_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    return max(
        (i - bisect_left(times, t - window + 1e-9) + 1 for i, t in enumerate(times)), default=0
    )


def bench_fetch(
    hosts: int, pages: int, per_minute: int, workers: int, run_count: int = 3
) -> dict[str, Any]:
    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=(hosts, pages, child), daemon=True)
    server.start()
    ports: list[int] = parent.recv()
    folder = Path(tempfile.mkdtemp(prefix="bench-competitors-"))
    policy = {
        "fetch": {
            "user_agent": "accountflow-competitor-watch/bench (+mailto:ops@example.com)",
            "requests_per_host_per_minute": per_minute,
            "workers": workers,
            "retries": 1,
        },
        "ours": {"payment_terms": "Payment within 30 days."},
        "competitors": [
            {
                "id": f"c{h:02d}",
                "name": f"Competitor {h}",
                "pages": [
                    {"url": f"http://127.0.0.{h + 1}:{ports[h]}/p{p}.html"} for p in range(pages)
                ],
            }
            for h in range(hosts)
        ],
    }
    (folder / "competitors.yaml").write_text(yaml.safe_dump(policy))
    os.environ["ACCOUNTFLOW_DATA_DIR"] = str(folder / "data")
    os.environ["ACCOUNTFLOW_COMPETITORS_FILE"] = str(folder / "competitors.yaml")

    from config.competitors_policy import clear_caches, get_competitors_policy
    from connectors.database.migrate import upgrade
    from connectors.web_pages import HostRateLimiter
    from tasks.competitors.pipeline import build_fetcher, watch

    clear_caches()
    upgrade()
    loaded = get_competitors_policy()
    limiter = HostRateLimiter(per_minute, 60.0)
    as_of = datetime(2026, 12, 7, 5, tzinfo=UTC)
    runs = []
    all_log: list[tuple[int, str, float, int]] = []
    names = ("cold", "unchanged", "one page per host changed")[:run_count]
    for day, name in enumerate(names):
        if day == 2:
            parent.send(("bump", [(h, 3) for h in range(hosts)]))
            parent.recv()
        started = time.perf_counter()
        summary = watch(loaded, as_of + timedelta(days=day), build_fetcher(loaded.fetch, limiter))
        seconds = time.perf_counter() - started
        parent.send(("log", None))
        log = parent.recv()
        all_log += log
        per_page = Counter((h, p) for h, p, _, _ in log if p != "/robots.txt")
        statuses = Counter(s for _, p, _, s in log if p != "/robots.txt")
        runs.append(
            {
                "run": name,
                "seconds": round(seconds, 2),
                "pages_per_s": round(summary.pages / seconds, 1),
                "pages": summary.pages,
                "fetched": summary.fetched,
                "not_modified": summary.not_modified,
                "failed": summary.failed + summary.blocked + summary.unreadable,
                "new_snapshots": summary.new_snapshots,
                "changes": summary.changes,
                "material_changes": summary.material_changes,
                "requests_at_servers": len(log),
                "page_requests_per_page": sorted(set(per_page.values())),
                "statuses": dict(statuses),
            }
        )
    parent.send(("stop", None))
    parent.recv()
    server.join(5)
    by_host: dict[int, list[float]] = defaultdict(list)
    for h, _, t, _ in all_log:
        by_host[h].append(t)
    return {
        "hosts": hosts,
        "pages_per_host": pages,
        "workers": workers,
        "limit_per_host_per_minute": per_minute,
        "max_requests_any_host_any_60s": max(_max_in_window(t) for t in by_host.values()),
        "runs": runs,
    }


def bench_classify() -> dict[str, Any]:
    from benchmarks.competitor_pairs import pairs
    from tasks.competitors.diffing import assess
    from tasks.competitors.extraction import html_text

    out: dict[str, Any] = {}
    labelled = pairs()
    started = time.perf_counter()
    for split in ("train", "heldout"):
        tp = fp = fn = tn = 0
        misses = []
        for p in (x for x in labelled if x.split == split):
            found = assess(html_text(p.before), html_text(p.after)).material
            tp += found and p.material
            fp += found and not p.material
            fn += (not found) and p.material
            tn += (not found) and not p.material
            if found != p.material:
                misses.append(f"{p.template}: {p.mutation} (labelled {int(p.material)})")
        out[split] = {
            "pairs": tp + fp + fn + tn,
            "material": tp + fn,
            "precision": round(tp / max(tp + fp, 1), 4),
            "recall": round(tp / max(tp + fn, 1), 4),
            "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "templates": sorted({x.template for x in labelled if x.split == split}),
            "misclassified": misses,
        }
    out["ms_per_pair"] = round((time.perf_counter() - started) / len(labelled) * 1000, 2)
    out["languages"] = dict(Counter(p.lang for p in labelled))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    fetch = sub.add_parser("fetch")
    fetch.add_argument("--hosts", type=int, default=50)
    fetch.add_argument("--pages", type=int, default=10)
    fetch.add_argument("--per-minute", type=int, default=40)
    fetch.add_argument("--workers", type=int, default=16)
    fetch.add_argument("--runs", type=int, default=3, choices=(1, 2, 3))
    sub.add_parser("classify")
    args = parser.parse_args()
    if args.what == "fetch":
        result = bench_fetch(args.hosts, args.pages, args.per_minute, args.workers, args.runs)
    else:
        result = bench_classify()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
