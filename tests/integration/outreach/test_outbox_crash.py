"""At most once under fire: dispatchers killed with SIGKILL mid-campaign, and four at once.

The dispatcher is the real CLI in a subprocess; the aiosmtpd peer in this process counts
deliveries by Message-ID. The full-size version is ``benchmarks.bench_dispatch crash``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.bench_dispatch import AS_OF, run_concurrent, run_crash
from connectors.database import outreach_store as store
from connectors.database.engine import session_scope
from connectors.send_journal import SendJournal, read_journal
from tests.integration.outreach.support import seed_contacts, use_campaigns, write_campaign
from tests.peers.smtp import SmtpPeer

pytestmark = pytest.mark.usefixtures("prefect_harness", "restored_environ")


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


def _dead_dispatcher_mid_batch(
    data_dir: Path, campaigns: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[int], SendJournal]:
    """Three rows marked ``sending`` by a dispatcher that is gone: its journal says the
    first was sent and the second started; the third was never started."""
    from tasks.outreach.dispatch import get_campaign, plan_campaign

    use_campaigns(monkeypatch, campaigns)
    name = write_campaign(campaigns, "journal")
    seed_contacts(3)
    plan_campaign.fn(get_campaign(name), AS_OF)
    token = "elsewhere:4242:deadbeef0000"
    with session_scope() as s:
        ids = sorted(r["id"] for r in store.due_rows(s, name, AS_OF))
        store.mark_rows(s, [{"b_id": i, "status": "claimed", "claimed_by": token} for i in ids])
        assert store.begin_sends(s.connection(), token, ids, AS_OF) == set(ids)
    journal = SendJournal(store.DispatcherLease(token, data_dir).journal_path())
    journal.open()
    journal.started(ids[0])
    sent_at = AS_OF.replace(tzinfo=None)
    journal.finished(
        {"b_id": ids[0], "status": "sent", "sent_at": sent_at, "next_attempt_at": None,
         "provider_id": "250 queued as A1", "last_code": 250, "last_detail": "",
         "envelope_from": "bounces+o1-x@example.org", "updated_at": sent_at}
    )  # fmt: skip
    journal.started(ids[1])
    journal.close()
    return token, ids, journal


def _recover(data_dir: Path) -> tuple[store.Recovery, dict[int, dict[str, object]]]:
    with session_scope() as s:
        recovery = store.mark_abandoned(s, store.DispatcherLease("me:1:alive", data_dir), AS_OF)
    with session_scope() as s:
        after = {}
        for i in range(1, 4):
            row = store.outbox_row(s, i)
            assert row is not None
            after[i] = row
    return recovery, after


def test_a_dead_dispatchers_journal_settles_each_row_it_was_sending(
    database: str, app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids, journal = _dead_dispatcher_mid_batch(app_env, tmp_path / "campaigns", monkeypatch)

    recovery, after = _recover(app_env)

    assert (recovery.recorded, recovery.unknown, recovery.requeued) == (1, 1, 1)
    first, second, third = (after[i] for i in ids)
    assert (first["status"], first["provider_id"]) == ("sent", "250 queued as A1")
    assert second["status"] == "unknown"  # may be out: a person decides
    assert (third["status"], third["attempts"], third["claimed_by"]) == ("planned", 0, None)
    assert recovery.journals == (journal.path,)


def test_after_a_reboot_a_journal_proves_no_send_never_started(
    database: str, app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ids, journal = _dead_dispatcher_mid_batch(app_env, tmp_path / "campaigns", monkeypatch)
    lines = journal.path.read_text().splitlines()
    header = json.loads(lines[0])
    journal.path.write_text(
        "\n".join([json.dumps({**header, "boot": "another-boot"}), *lines[1:]]) + "\n"
    )

    recovery, after = _recover(app_env)

    # What was recorded still stands; the unwritten tail of the page cache may be lost,
    # so the row with no record is unknown rather than queued again.
    assert (recovery.recorded, recovery.unknown, recovery.requeued) == (1, 2, 0)
    assert [after[i]["status"] for i in ids] == ["sent", "unknown", "unknown"]


def test_a_torn_journal_line_proves_nothing_about_unrecorded_rows(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "d.journal")
    journal.open()
    journal.started(7)
    journal.close()
    with journal.path.open("ab") as handle:
        handle.write(b'{"s":')  # what an OS crash can leave of the last append

    reading = read_journal(journal.path)

    assert reading.started == {7}
    assert not reading.complete
