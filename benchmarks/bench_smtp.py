"""Outreach email throughput: render + SmtpSender vs a bare smtplib loop, side by side.

Target (issue 5): 10,000 personalised emails at >= 500 msg/s, and >= 0.7 of the rate of a
bare ``smtplib`` loop sending the same pre-rendered messages over one connection.

The aiosmtpd server runs in a child process so that it does not share the GIL with the
client being measured; both runs talk to the same server, one after the other, each over
a single connection. Run: ``.venv/bin/python -m benchmarks.bench_smtp [n]``.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from pydantic import SecretStr

from config.campaign_policy import CAMPAIGNS_DIR, Campaign, load_campaign
from config.settings import SmtpSettings
from connectors.smtp_sender import OutgoingEmail, SendOutcome, SmtpSender
from tasks.outreach.rendering import (
    Contact,
    LinkSigning,
    OutboxItem,
    TemplateStore,
    idempotency_key,
    render_email,
)

BATCH = 500  # what one dispatch task would claim and send at a time
LINKS = LinkSigning(SecretStr("benchmark-secret-0123456789"), "https://acme.example.com")
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
LANGUAGES = ("pt", "es", "en")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def aiosmtpd_process() -> Iterator[tuple[str, int, int]]:
    """A Sink aiosmtpd server in a child process, on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("aiosmtpd did not start") from None
                time.sleep(0.05)
        yield "127.0.0.1", port, server.pid
    finally:
        server.terminate()
        server.wait(10)


def _contacts(n: int, offset: int = 0) -> list[Contact]:
    return [
        Contact(
            contact_id=offset + i,
            full_name=f"Contato Número {offset + i}",
            email=f"c{offset + i}@client{i % 97}.example.org",
            company=f"Empresa & Filhos {i % 13}",
            language=LANGUAGES[i % 3],
        )
        for i in range(n)
    ]


def _render(campaign: Campaign, templates: TemplateStore, contact: Contact) -> OutgoingEmail:
    step = campaign.steps[0]
    key = idempotency_key(campaign.name, contact.contact_id, step.name)
    item = OutboxItem(contact.contact_id, campaign.name, step.name, key)
    return render_email(campaign, step, contact, item, date=NOW, links=LINKS, templates=templates)


def _ours_batch(
    sender: SmtpSender, campaign: Campaign, templates: TemplateStore, contacts: list[Contact]
) -> tuple[float, int]:
    """Render and send one batch through SmtpSender; returns (seconds, messages sent)."""
    started = time.perf_counter()
    batch = [_render(campaign, templates, contact) for contact in contacts]
    sent = sum(result.outcome is SendOutcome.SENT for result in sender.send(batch))
    return time.perf_counter() - started, sent


def _timed(call: Callable[[], tuple[float, int]]) -> tuple[float, int, float]:
    cpu = time.process_time()
    seconds, sent = call()
    return seconds, sent, time.process_time() - cpu


def _bare_batch(smtp: smtplib.SMTP, emails: list[OutgoingEmail]) -> tuple[float, int]:
    """The floor: smtplib.sendmail of pre-rendered bytes over the same open connection."""
    sent = 0
    started = time.perf_counter()
    for email in emails:
        refused = smtp.sendmail(email.envelope_from, list(email.recipients), email.raw)
        sent += not refused
    return time.perf_counter() - started, sent


def run(n: int) -> dict[str, float | int | bool]:
    """Measure both paths for ``n`` messages and report rates, ratio and the verdict.

    The two paths alternate batch by batch (and which goes first alternates too), so
    load from anything else on the machine lands on both alike instead of skewing the
    ratio. Each path keeps its single connection open for the whole run.
    """
    campaign = load_campaign(CAMPAIGNS_DIR / "welcome-fair.yaml")
    templates = TemplateStore()
    contacts = _contacts(n)
    totals = {"ours": [0.0, 0, 0.0], "bare": [0.0, 0, 0.0]}
    with aiosmtpd_process() as (host, port, server_pid):
        settings = SmtpSettings(host=host, port=port, timeout_seconds=30)
        with SmtpSender(settings) as sender, smtplib.SMTP(host, port, timeout=30) as smtp:
            warmup = _contacts(min(200, n), offset=10_000_000)
            _ours_batch(sender, campaign, templates, warmup)
            _bare_batch(smtp, [_render(campaign, templates, c) for c in warmup])
            server_cpu_started = _cpu_seconds(server_pid)
            for index, start in enumerate(range(0, n, BATCH)):
                chunk = contacts[start : start + BATCH]
                prerendered = [_render(campaign, templates, c) for c in chunk]
                order = ("ours", "bare") if index % 2 == 0 else ("bare", "ours")
                for path in order:
                    seconds, sent, cpu = _timed(
                        partial(_ours_batch, sender, campaign, templates, chunk)
                        if path == "ours"
                        else partial(_bare_batch, smtp, prerendered)
                    )
                    totals[path][0] += seconds
                    totals[path][1] += sent
                    totals[path][2] += cpu
            server_cpu = _cpu_seconds(server_pid) - server_cpu_started
            connections = sender.connections_opened
    ours_seconds, ours_sent, ours_cpu = totals["ours"]
    bare_seconds, bare_sent, bare_cpu = totals["bare"]
    ours_rate = ours_sent / ours_seconds
    bare_rate = bare_sent / bare_seconds
    ratio = ours_rate / bare_rate
    server_ms = 1000 * server_cpu / (2 * n)
    ours_ms, bare_ms = 1000 * ours_cpu / n, 1000 * bare_cpu / n
    return {
        "n": n,
        "ours_sent": int(ours_sent),
        "ours_seconds": round(ours_seconds, 3),
        "ours_msgs_per_s": round(ours_rate, 1),
        "ours_connections": connections,
        "bare_sent": int(bare_sent),
        "bare_seconds": round(bare_seconds, 3),
        "bare_msgs_per_s": round(bare_rate, 1),
        "ratio": round(ratio, 3),
        # CPU per message, to read the rates on a shared machine: the server's cost is
        # the same for both paths; the difference between the client costs is ours.
        "server_cpu_ms_per_msg": round(server_ms, 3),
        "ours_client_cpu_ms_per_msg": round(ours_ms, 3),
        "bare_client_cpu_ms_per_msg": round(bare_ms, 3),
        "load_average_1m": os.getloadavg()[0],
        "meets_target": ours_sent == n and ours_rate >= 500 and ratio >= 0.7,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000), indent=2))
