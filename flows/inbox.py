"""Flow: the inbox (IMAP, a folder of .eml files or a Maildir) into the client database."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow

from config.settings import get_settings
from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.accounts.pipeline import sync_talk_replies_task
from tasks.inbox.pipeline import (
    InboxSummary,
    finish_inbox_run,
    ingest_folder,
    ingest_imap,
    open_inbox_run,
    publish_inbox_summary,
)

IMAP_BATCH = 200
FOLDER_BATCH = 2_000


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    kind = "imap" if params.get("imap") else "eml" if params.get("eml_dir") else "maildir"
    return f"ingest-inbox-{kind}-{as_of_stamp()}"


def source_of(imap: bool, eml_dir: str | None, maildir: str | None) -> tuple[str, str | None]:
    """Exactly one source: ("imap", None), ("eml", dir) or ("maildir", dir)."""
    chosen = [(k, v) for k, v in (("eml", eml_dir), ("maildir", maildir)) if v] + (
        [("imap", None)] if imap else []
    )
    if len(chosen) != 1:
        raise ValueError("choose exactly one inbox source: imap, eml_dir or maildir")
    return chosen[0]


@flow(name="ingest-inbox", flow_run_name=_run_name, log_prints=False)
async def ingest_inbox(
    imap: bool = False,
    eml_dir: str | None = None,
    maildir: str | None = None,
    batch_size: int | None = None,
) -> InboxSummary:
    """Read, classify and store every new message; rerunning stores nothing twice.

    ``batch_size`` is messages per transaction: by default 200 for IMAP (one FETCH holds a
    whole batch in memory, up to the size cap each) and 2,000 for folders (read one file at
    a time; bigger batches spread the entity resolution's fixed cost).
    """
    with one_sync_client():
        started = time.perf_counter()
        kind, directory = source_of(imap, eml_dir, maildir)
        size = batch_size or (IMAP_BATCH if kind == "imap" else FOLDER_BATCH)
        batch_id = open_inbox_run(kind, directory)
        if kind == "imap":
            counts = ingest_imap(batch_id, size)
            imap_settings = get_settings().imap
            location = f"imap://{imap_settings.host}/{imap_settings.mailbox}"
        else:
            assert directory is not None
            counts = ingest_folder(batch_id, kind, directory, size)
            location = str(Path(directory).resolve())
        summary = finish_inbox_run(batch_id, kind, location, counts, started)
        # RSVPs to talk proposals move their talks now, not at the next manual `talks sync`
        # (a task, not a subflow: a synchronous subflow costs a second per inbox run).
        sync_talk_replies_task()
        publish_inbox_summary(summary)
        return summary


def sample_inbox() -> str:
    """The bundled sample inbox (.eml files) the demo ingests."""
    return str(get_settings().config_dir / "samples" / "inbox")
