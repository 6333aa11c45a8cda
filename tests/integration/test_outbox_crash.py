"""At most once under fire: dispatchers killed with SIGKILL mid-campaign, and four at once.

The dispatcher is the real CLI in a subprocess; the aiosmtpd peer in this process counts
deliveries by Message-ID. The full-size version is ``benchmarks.bench_dispatch crash``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.bench_dispatch import run_concurrent, run_crash
from tests.peers.smtp import SmtpPeer

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_killed_dispatchers_never_deliver_twice_and_lose_nothing(
    database: str, tmp_path: Path, smtp_peer: SmtpPeer
) -> None:
    kills = 3
    result = run_crash(tmp_path, smtp_peer, messages=200, kills=kills, seed=11)

    assert result["duplicates"] == 0, result
    assert result["sent_but_not_delivered"] == 0, result
    assert result["not_final"] == 0, result
    assert result["rows"] == 200
    assert result["unknown"] <= result["kills"], result
    assert result["ok"], result


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_four_dispatchers_at_once_on_postgresql_deliver_each_message_once(
    database: str, tmp_path: Path, smtp_peer: SmtpPeer
) -> None:
    url = os.environ["ACCOUNTFLOW_DATABASE_URL"]
    result = run_concurrent(tmp_path, smtp_peer, messages=200, dispatchers=4, database_url=url)

    assert result["duplicates"] == 0, result
    assert result["delivered"] == 200, result
    assert result["statuses"] == {"sent": 200}, result
