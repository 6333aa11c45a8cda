"""dispatch-campaign under load and under fire.

``throughput N``: N personalised emails through the flow (plan, claim, render, send over
one SMTP connection per batch, record) to a local aiosmtpd in a child process, side by
side with a bare smtplib loop sending the same messages pre-rendered (benchmarks.bench_smtp).

``crash --messages M --kills K``: a dispatcher subprocess (the real CLI) is killed with
SIGKILL K times at random points while sending M messages, and rerun each time; then one
clean run. Verdict: no Message-ID delivered twice, every row ends sent / failed / unknown,
sent rows all arrived, and unknowns are no more than the kills.

``concurrent --messages M --dispatchers D``: D dispatchers at once on PostgreSQL
(``ACCOUNTFLOW_DATABASE_URL``); verdict: no duplicates, nothing left behind.

Run: ``.venv/bin/python -m benchmarks.bench_dispatch throughput 10000`` or
``... crash --messages 2000 --kills 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AS_OF = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # a Monday, 10:00 in São Paulo


def _reset() -> None:
    from config.settings import get_outreach_settings, get_settings
    from connectors.database.engine import reset_engine

    reset_engine()
    get_settings.cache_clear()
    get_outreach_settings.cache_clear()


def configure(
    workdir: Path,
    *,
    smtp: tuple[str, int],
    database_url: str | None = None,
    batch_size: int = 25,
    campaign_edits: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Point this process (and the returned env, for children) at a scratch setup."""
    from tests.integration.outreach.support import write_campaign

    env = {
        "ACCOUNTFLOW_DATA_DIR": str(workdir / "data"),
        "ACCOUNTFLOW_OUTREACH_CAMPAIGNS_DIR": str(workdir / "campaigns"),
        "ACCOUNTFLOW_OUTREACH_BATCH_SIZE": str(batch_size),
        "ACCOUNTFLOW_OUTREACH_THROTTLE_WAIT_SECONDS": "60",
        "ACCOUNTFLOW_SMTP__HOST": smtp[0],
        "ACCOUNTFLOW_SMTP__PORT": str(smtp[1]),
        "ACCOUNTFLOW_SMTP__TIMEOUT_SECONDS": "5",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    if database_url:
        env["ACCOUNTFLOW_DATABASE_URL"] = database_url
    os.environ.update(env)
    if not database_url:
        os.environ.pop("ACCOUNTFLOW_DATABASE_URL", None)
    _reset()
    write_campaign(workdir / "campaigns", "bench", **(campaign_edits or {}))
    from connectors.database.migrate import upgrade

    upgrade()
    return env


def _child_env(env: dict[str, str]) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    child = {**os.environ, **env}
    api = PREFECT_API_URL.value()
    if api:
        child["PREFECT_API_URL"] = api
    return child


def _dispatcher(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "campaign", "run", "bench",
         "--as-of", AS_OF.isoformat(), "--json"],
        env=_child_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def outbox_states() -> dict[str, Any]:
    from sqlalchemy import select

    from connectors.database.engine import session_scope
    from connectors.database.outreach_models import OutboxItem

    with session_scope() as s:
        found = s.execute(select(OutboxItem.status, OutboxItem.message_id)).all()
    return {"statuses": Counter(st for st, _ in found), "rows": found}


def verdict(received: list[str], kills: int, messages: int) -> dict[str, Any]:
    """Count duplicates and losses from the peer's Message-IDs and the outbox."""
    state = outbox_states()
    copies = Counter(received)
    sent_ids = {mid for st, mid in state["rows"] if st == "sent"}
    statuses = dict(state["statuses"])
    final = {"sent", "failed_permanent", "unknown"}
    return {
        "messages": messages,
        "kills": kills,
        "rows": len(state["rows"]),
        "statuses": statuses,
        "delivered": len(copies),
        "duplicates": sum(n - 1 for n in copies.values() if n > 1),
        "sent_but_not_delivered": len(sent_ids - set(copies)),
        "not_final": sum(n for st, n in statuses.items() if st not in final),
        "unknown": statuses.get("unknown", 0),
        "ok": (
            len(state["rows"]) == messages
            and all(n == 1 for n in copies.values())
            and not sent_ids - set(copies)
            and all(st in final for st in statuses)
            and statuses.get("unknown", 0) <= kills
        ),
    }


def run_crash(workdir: Path, peer: Any, *, messages: int, kills: int, seed: int = 7,
              database_url: str | None = None, batch_size: int = 25) -> dict[str, Any]:  # fmt: skip
    """Kill the dispatcher ``kills`` times at random delivery counts, then finish cleanly."""
    from tests.integration.outreach.support import seed_contacts

    env = configure(workdir, smtp=(peer.host, peer.port), database_url=database_url,
                    batch_size=batch_size)  # fmt: skip
    seed_contacts(messages)
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, messages), kills))
    done = 0
    for point in points:
        child = _dispatcher(env)
        deadline = time.monotonic() + 120
        while len(peer.received) < point and child.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.0005)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            done += 1
        child.wait()
    final = _dispatcher(env)
    _, err = final.communicate(timeout=300)
    if final.returncode != 0:
        raise RuntimeError(f"final dispatcher failed: {err.decode()[-2000:]}")
    received = [str(m.message["Message-ID"]) for m in peer.received]
    return verdict(received, done, messages)


def run_concurrent(workdir: Path, peer: Any, *, messages: int, dispatchers: int,
                   database_url: str, batch_size: int = 25) -> dict[str, Any]:  # fmt: skip
    from tests.integration.outreach.support import seed_contacts

    env = configure(workdir, smtp=(peer.host, peer.port), database_url=database_url,
                    batch_size=batch_size)  # fmt: skip
    seed_contacts(messages)
    children = [_dispatcher(env) for _ in range(dispatchers)]
    for child in children:
        _, err = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"dispatcher failed: {err.decode()[-2000:]}")
    received = [str(m.message["Message-ID"]) for m in peer.received]
    return verdict(received, 0, messages)


@contextmanager
def _prefect() -> Iterator[None]:
    """A Prefect API: the configured server, else a temporary one for this run."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def run_throughput(n: int, batch_size: int | None = None, rounds: int = 1) -> dict[str, Any]:
    """N emails through dispatch-campaign, then the same messages through bare smtplib.

    The flow claims batches of the configured size (the settings' default unless given).
    With ``rounds`` > 1 the pair runs again on N new contacts each time, against the same
    server; the ratio is the median of the rounds' ratios: this machine's speed drifts by
    a quarter within minutes, and a pair run back to back shares the drift.
    """
    from benchmarks.bench_smtp import _bare_batch, aiosmtpd_process
    from config.settings import OutreachSettings, get_settings
    from connectors.database import outreach_store as store
    from connectors.database.engine import session_scope
    from flows.outreach import dispatch_campaign
    from tasks.outreach.dispatch import get_campaign, render_row
    from tasks.outreach.rendering import LinkSigning, TemplateStore
    from tests.integration.outreach.support import seed_contacts

    workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    flow: list[tuple[int, float, float]] = []  # sent, seconds, CPU seconds
    bare: list[tuple[int, float, float]] = []
    with aiosmtpd_process() as (host, port, _pid), _prefect():
        batch_size = batch_size or OutreachSettings.model_fields["batch_size"].default
        configure(workdir, smtp=(host, port), batch_size=batch_size,
                  campaign_edits={"steps": [{"name": "intro", "channel": "email",
                                             "delay_business_days": 0,
                                             "template": "welcome-intro"}]})  # fmt: skip
        for k in range(rounds):
            first = 1 + k * n
            seed_contacts(n, start=first)
            started, cpu = time.perf_counter(), time.process_time()
            summary = asyncio.run(dispatch_campaign("bench", as_of=AS_OF))
            flow.append((summary.sent, time.perf_counter() - started, time.process_time() - cpu))
            campaign = get_campaign("bench")
            links = LinkSigning.from_settings(get_settings())
            templates = TemplateStore()
            with session_scope() as s:
                # The same rows, rendered the same way, for the bare loop to send.
                query = store.claim_columns().where(store.outbox.c.contact_id >= first)
                rows = [dict(r._mapping) for r in s.connection().execute(query)]
            emails = [render_row(r, campaign, links, templates) for r in rows]
            cpu = time.process_time()
            with smtplib.SMTP(host, port, timeout=30) as smtp:
                bare_seconds, bare_sent = 0.0, 0
                for start in range(0, len(emails), 500):
                    seconds, sent = _bare_batch(smtp, emails[start : start + 500])  # type: ignore[arg-type]
                    bare_seconds += seconds
                    bare_sent += sent
            bare.append((bare_sent, bare_seconds, time.process_time() - cpu))
    flow_rates = [sent / seconds for sent, seconds, _ in flow]
    bare_rates = [sent / seconds for sent, seconds, _ in bare]
    ratios = [f / b for f, b in zip(flow_rates, bare_rates, strict=True)]
    ratio = statistics.median(ratios)
    flow_rate = statistics.median(flow_rates)
    return {
        "n": n,
        "rounds": rounds,
        "batch_size": batch_size,
        "flow_sent": [sent for sent, _, _ in flow],
        "flow_msgs_per_s": [round(r, 1) for r in flow_rates],
        "bare_msgs_per_s": [round(r, 1) for r in bare_rates],
        "ratios": [round(r, 3) for r in ratios],
        "median_flow_msgs_per_s": round(flow_rate, 1),
        "median_ratio": round(ratio, 3),
        # CPU of this process per message (the Prefect API and aiosmtpd run elsewhere):
        # on a shared machine these move less than the wall-clock rates.
        "flow_cpu_ms_per_msg": round(1000 * sum(c for *_, c in flow) / max(1, n * rounds), 3),
        "bare_cpu_ms_per_msg": round(1000 * sum(c for *_, c in bare) / max(1, n * rounds), 3),
        "load_average_1m": os.getloadavg()[0],
        "meets_target": all(sent == n for sent, _, _ in flow) and flow_rate >= 500 and ratio >= 0.7,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("n", type=int, nargs="?", default=10_000)
    tp.add_argument("--batch-size", type=int, help="rows per dispatch batch (default: settings)")
    tp.add_argument("--rounds", type=int, default=1, help="flow + bare pairs, each on new contacts")
    cr = sub.add_parser("crash")
    cr.add_argument("--messages", type=int, default=2_000)
    cr.add_argument("--kills", type=int, default=20)
    cr.add_argument("--seed", type=int, default=7)
    cc = sub.add_parser("concurrent")
    cc.add_argument("--messages", type=int, default=2_000)
    cc.add_argument("--dispatchers", type=int, default=4)
    args = parser.parse_args()
    if args.mode == "throughput":
        result = run_throughput(args.n, args.batch_size, args.rounds)
    else:
        from tests.peers.smtp import SmtpPeer

        peer = SmtpPeer()
        peer.start()
        workdir = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
        try:
            with _prefect():
                if args.mode == "crash":
                    result = run_crash(workdir, peer, messages=args.messages, kills=args.kills,
                                       seed=args.seed)  # fmt: skip
                else:
                    url = os.environ.get("ACCOUNTFLOW_DATABASE_URL")
                    if not url:
                        parser.error("concurrent needs ACCOUNTFLOW_DATABASE_URL (PostgreSQL)")
                    result = run_concurrent(
                        workdir,
                        peer,
                        messages=args.messages,
                        dispatchers=args.dispatchers,
                        database_url=url,
                    )
        finally:
            peer.stop()
    print(json.dumps(result, indent=2, default=str))
    if not result.get("ok", result.get("meets_target")):
        sys.exit(1)


if __name__ == "__main__":
    main()
