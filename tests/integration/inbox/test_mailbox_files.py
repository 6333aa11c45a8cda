"""Reading .eml folders and Maildirs from disk, with provenance and the size cap."""

from __future__ import annotations

import hashlib
import mailbox
from pathlib import Path

from connectors.mailbox import EmlDirReader, MaildirReader


def _msg(n: int) -> bytes:
    return f"From: a{n}@example.test\r\nSubject: s{n}\r\n\r\nbody {n}\r\n".encode()


def test_eml_dir_yields_every_file_sorted_with_relative_source(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.eml").write_bytes(_msg(2))
    (tmp_path / "a.eml").write_bytes(_msg(1))
    (tmp_path / "sub" / "c.eml").write_bytes(_msg(3))
    (tmp_path / "notes.txt").write_text("not mail")
    records = list(EmlDirReader(tmp_path).messages())
    assert [r.source for r in records] == ["eml:a.eml", "eml:b.eml", "eml:sub/c.eml"]
    assert records[0].raw == _msg(1) and records[0].size == len(_msg(1))


def test_eml_over_the_cap_is_flagged_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "big.eml").write_bytes(b"From: x@y\r\n\r\n" + b"x" * 5000)
    (tmp_path / "small.eml").write_bytes(_msg(1))
    big, small = list(EmlDirReader(tmp_path, max_bytes=1000).messages())
    assert big.oversize and big.raw is None and big.size > 5000
    assert not small.oversize and small.raw == _msg(1)


def test_maildir_yields_new_and_cur_messages_byte_for_byte(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    keys = [box.add(_msg(n)) for n in range(3)]
    seen = mailbox.MaildirMessage(_msg(9))
    seen.set_subdir("cur")
    keys.append(box.add(seen))
    records = list(MaildirReader(tmp_path / "Maildir").messages())
    assert sorted(r.source for r in records) == sorted(f"maildir:{k}" for k in keys)
    hashes = {hashlib.sha256(r.raw or b"").hexdigest() for r in records}
    on_disk = [p for sub in ("new", "cur") for p in (tmp_path / "Maildir" / sub).iterdir()]
    assert len(on_disk) == 4
    assert hashes == {hashlib.sha256(p.read_bytes()).hexdigest() for p in on_disk}


def test_maildir_order_is_stable_between_runs(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "md", create=True)
    for n in range(20):
        box.add(_msg(n))
    first = [r.source for r in MaildirReader(tmp_path / "md").messages()]
    second = [r.source for r in MaildirReader(tmp_path / "md").messages()]
    assert first == second == sorted(first)


def test_maildir_over_the_cap_is_flagged(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "md", create=True)
    box.add(b"From: x@y\r\n\r\n" + b"x" * 5000)
    (record,) = list(MaildirReader(tmp_path / "md", max_bytes=1000).messages())
    assert record.oversize and record.raw is None
