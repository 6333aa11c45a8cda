"""Readers that yield raw inbound messages with their provenance: .eml folders, Maildir, IMAP.

Readers never parse or judge a message; they hand over bytes and where they came from,
so the same parsing and classification run on every source. IMAP is fetched by UID above a
checkpoint the caller stores: the reader yields batches in UID order, each carrying the
checkpoint that is safe to commit once the batch is persisted (in the same transaction).
A crash before that commit refetches the batch; rows keyed by (mailbox, uidvalidity, uid)
make the refetch harmless, so nothing is skipped and nothing is stored twice.
"""

from __future__ import annotations

import imaplib
import mailbox
import re
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

from config.settings import ImapSettings


@dataclass(frozen=True)
class RawMessage:
    """One message as received. ``raw`` is None when it was too big to download."""

    source: str
    raw: bytes | None
    size: int
    oversize: bool = False
    mailbox: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


class MessageSource(Protocol):
    def messages(self) -> Iterator[RawMessage]: ...


def _read_capped(path: Path, max_bytes: int, source: str) -> RawMessage:
    size = path.stat().st_size
    if size > max_bytes:
        return RawMessage(source, None, size, oversize=True)
    return RawMessage(source, path.read_bytes(), size)


class EmlDirReader:
    """Every ``*.eml`` file under a folder, sorted by name so reruns see the same order."""

    def __init__(self, directory: Path, max_bytes: int = 25 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def messages(self) -> Iterator[RawMessage]:
        for path in sorted(self.directory.rglob("*.eml")):
            if path.is_file():
                rel = path.relative_to(self.directory).as_posix()
                yield _read_capped(path, self.max_bytes, f"eml:{rel}")


class MaildirReader:
    """Messages of a Maildir (``new`` and ``cur``), keyed by their stable Maildir key.

    The key is the file name before the ``:2,flags`` suffix (as ``mailbox.Maildir`` keys
    it), so a message keeps its provenance when a client moves it from new/ to cur/ or
    changes its flags. Files are read as bytes, exactly as delivered, so the hash kept for a
    quarantined message matches the file on disk.
    """

    def __init__(self, directory: Path, max_bytes: int = 25 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def messages(self) -> Iterator[RawMessage]:
        mailbox.Maildir(self.directory, create=False)  # raises if this is not a Maildir
        entries: list[tuple[str, Path]] = []
        for sub in ("new", "cur"):
            for path in (self.directory / sub).iterdir():
                if not path.name.startswith("."):
                    entries.append((path.name.split(":", 1)[0], path))
        for key, path in sorted(entries):
            try:
                record = _read_capped(path, self.max_bytes, f"maildir:{key}")
            except FileNotFoundError:  # another client moved it between listing and reading
                continue
            yield record


@dataclass(frozen=True)
class ImapCheckpoint:
    """Where a mailbox was read up to. Store it per (host, user, mailbox)."""

    mailbox: str
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class ImapBatch:
    """Messages in UID order and the checkpoint to commit after persisting them.

    ``uidvalidity_reset`` is set on the first batch when the server's UIDVALIDITY no longer
    matches the stored one: old UIDs mean nothing now, so the mailbox is read from UID 0
    and the caller should say so in the run summary (messages may repeat by Message-ID).
    """

    messages: tuple[RawMessage, ...]
    checkpoint: ImapCheckpoint
    uidvalidity_reset: bool = False
    previous_uidvalidity: int | None = None


class ImapError(RuntimeError):
    """The server refused a command we cannot do without."""


_FETCH_ITEM = re.compile(rb"UID (\d+)|RFC822\.SIZE (\d+)")


def _fetch_fields(header: bytes) -> tuple[int | None, int | None]:
    uid = size = None
    for match in _FETCH_ITEM.finditer(header):
        if match.group(1):
            uid = int(match.group(1))
        elif match.group(2):
            size = int(match.group(2))
    return uid, size


def _uid_set(uids: Sequence[int]) -> str:
    """Compress sorted UIDs into IMAP ranges (``1:4,7,9:10``) to keep command lines short."""
    parts: list[str] = []
    start = prev = uids[0]
    for uid in uids[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def _quote(mailbox_name: str) -> str:
    return '"' + mailbox_name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapReader:
    """One IMAP connection reading one mailbox by UID above a checkpoint.

    TLS is the default (``security="ssl"``, or ``"starttls"``); plaintext needs
    ``security="plain"`` in settings, which only loopback tests and trusted relays should use.
    """

    def __init__(
        self,
        settings: ImapSettings,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self._password = password
        self._ssl_context = ssl_context
        self._conn: imaplib.IMAP4 | None = None

    def __enter__(self) -> ImapReader:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        context = self._ssl_context or ssl.create_default_context()
        conn: imaplib.IMAP4
        if s.security == "ssl":
            conn = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout_seconds)
        else:
            conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout_seconds)
            if s.security == "starttls":
                conn.starttls(ssl_context=context)
        password = self._password
        if password is None and s.password is not None:
            password = s.password.get_secret_value()
        if s.username is None or password is None:
            conn.logout()
            raise ImapError("IMAP username and password are required")
        try:
            conn.login(s.username, password)
        except imaplib.IMAP4.error as exc:
            conn.logout()
            raise ImapError(f"login refused for {s.username}") from exc
        self._conn = conn

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            if self._conn.state == "SELECTED":
                self._conn.close()
            self._conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
        self._conn = None

    @property
    def conn(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise ImapError("not connected")
        return self._conn

    def _select(self, mailbox_name: str, readonly: bool) -> int:
        typ, _ = self.conn.select(_quote(mailbox_name), readonly=readonly)
        if typ != "OK":
            raise ImapError(f"cannot select {mailbox_name}")
        _, data = self.conn.response("UIDVALIDITY")
        if not data or data[0] is None:
            raise ImapError(f"{mailbox_name}: server sent no UIDVALIDITY")
        raw = data[-1]
        return int(raw.decode() if isinstance(raw, bytes) else str(raw))

    def _uids_above(self, last_uid: int) -> list[int]:
        typ, data = self.conn.uid("SEARCH", f"UID {last_uid + 1}:*")
        if typ != "OK":
            raise ImapError("UID SEARCH failed")
        found = [int(x) for x in b" ".join(d for d in data if d).split()]
        # "n:*" always matches the highest UID even when it is below n (RFC 3501 6.4.8),
        # so filter, or the last message would be fetched on every run.
        return sorted(uid for uid in found if uid > last_uid)

    def _sizes(self, uids: Sequence[int]) -> dict[int, int]:
        typ, data = self.conn.uid("FETCH", _uid_set(uids), "(UID RFC822.SIZE)")
        if typ != "OK":
            raise ImapError("UID FETCH RFC822.SIZE failed")
        sizes: dict[int, int] = {}
        for item in data:
            header = item[0] if isinstance(item, tuple) else item
            if isinstance(header, bytes):
                uid, size = _fetch_fields(header)
                if uid is not None and size is not None:
                    sizes[uid] = size
        return sizes

    def _bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        # BODY.PEEK leaves \Seen alone: the account manager still sees the mail as unread.
        typ, data = self.conn.uid("FETCH", _uid_set(uids), "(UID BODY.PEEK[])")
        if typ != "OK":
            raise ImapError("UID FETCH BODY.PEEK[] failed")
        bodies: dict[int, bytes] = {}
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                uid, _ = _fetch_fields(item[0])
                if uid is not None:
                    bodies[uid] = item[1]
        return bodies

    def batches(
        self, checkpoint: ImapCheckpoint | None = None, batch_size: int = 100
    ) -> Iterator[ImapBatch]:
        """Yield new messages in UID order, ``batch_size`` at a time.

        Always yields at least one batch when the UIDVALIDITY was reset, even if the
        mailbox is empty, so the caller can store the new checkpoint.
        """
        name = checkpoint.mailbox if checkpoint else self.settings.mailbox
        uidvalidity = self._select(name, readonly=self.settings.move_to is None)
        reset = checkpoint is not None and checkpoint.uidvalidity != uidvalidity
        last_uid = checkpoint.last_uid if checkpoint and not reset else 0
        previous = checkpoint.uidvalidity if reset and checkpoint else None
        current = ImapCheckpoint(name, uidvalidity, last_uid)
        uids = self._uids_above(last_uid)
        if not uids and reset:
            yield ImapBatch((), current, True, previous)
            return
        cap = self.settings.max_message_bytes
        for start in range(0, len(uids), batch_size):
            chunk = uids[start : start + batch_size]
            sizes = self._sizes(chunk)
            wanted = [uid for uid in chunk if sizes.get(uid, 0) <= cap and uid in sizes]
            bodies = self._bodies(wanted) if wanted else {}
            records: list[RawMessage] = []
            for uid in chunk:
                if uid not in sizes:  # expunged by another client since SEARCH
                    continue
                source = f"imap:{name}:{uidvalidity}:{uid}"
                body = bodies.get(uid)
                if sizes[uid] > cap:
                    records.append(
                        RawMessage(source, None, sizes[uid], True, name, uidvalidity, uid)
                    )
                elif body is not None:
                    records.append(
                        RawMessage(source, body, len(body), False, name, uidvalidity, uid)
                    )
            current = replace(current, last_uid=chunk[-1])
            first = start == 0
            yield ImapBatch(tuple(records), current, reset and first, previous if first else None)

    def acknowledge(self, checkpoint: ImapCheckpoint) -> int:
        """Move every message at or below the committed checkpoint to ``settings.move_to``.

        Idempotent: after a crash between commit and move, the next run moves the leftovers.
        Returns how many messages were moved (0 when no folder is configured).
        """
        folder = self.settings.move_to
        if folder is None:
            return 0
        uidvalidity = self._select(checkpoint.mailbox, readonly=False)
        if uidvalidity != checkpoint.uidvalidity or checkpoint.last_uid < 1:
            return 0
        typ, data = self.conn.uid("SEARCH", f"UID 1:{checkpoint.last_uid}")
        uids = sorted(
            u
            for u in (int(x) for x in b" ".join(d for d in data if d).split())
            if u <= checkpoint.last_uid
        )
        if typ != "OK" or not uids:
            return 0
        self.conn.create(_quote(folder))  # NO when it exists; that is fine
        uid_set = _uid_set(uids)
        # Ask again: servers add MOVE and UIDPLUS to the list only after login.
        _, caps = self.conn.capability()
        capabilities = {c.upper() for c in b" ".join(x for x in caps if x).decode().split()}
        if "MOVE" in capabilities:
            typ, _ = self.conn.uid("MOVE", uid_set, _quote(folder))
        else:
            typ, _ = self.conn.uid("COPY", uid_set, _quote(folder))
            if typ == "OK":
                self.conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
                if "UIDPLUS" in capabilities:
                    self.conn.uid("EXPUNGE", uid_set)
                else:
                    self.conn.expunge()
        if typ != "OK":
            raise ImapError(f"could not move messages to {folder}")
        return len(uids)
