"""What an erasure does to files under the data dir that name the person."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from tasks.governance.traces import artifact_names_person, scrub_files

ME = ["carlos@transportes-rapido.com.br", "+5521998765432"]


def test_a_spreadsheet_loses_the_persons_rows_and_keeps_the_others(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Nome", "Telefone"], ["Carlos", "(21) 99876-5432"], ["Ana", "(11) 91234-5678"]):
        sheet.append(row)
    path = tmp_path / "incoming" / "processed" / "expo.xlsx"
    path.parent.mkdir(parents=True)
    book.save(path)
    counts = scrub_files(tmp_path, ME, [])
    assert counts["sheet_rows_dropped"] == 1
    kept = [[c.value for c in r] for r in load_workbook(path).active.iter_rows()]  # type: ignore[union-attr]
    assert kept == [["Nome", "Telefone"], ["Ana", "(11) 91234-5678"]]


def test_the_database_secrets_and_files_naming_someone_else_are_left_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "accountflow.db").write_bytes(b"carlos@transportes-rapido.com.br")
    (tmp_path / "link-secrets.json").write_text('{"current": "carlos@transportes-rapido.com.br"}')
    other = tmp_path / "outbox-mail" / "7.eml"
    other.parent.mkdir()
    other.write_bytes(b"To: ana@horizonte.com.br\r\n\r\nOla")
    assert scrub_files(tmp_path, ME, [3]) == {
        "files_deleted": 0, "export_lines_dropped": 0, "files_masked": 0,
        "sheet_rows_dropped": 0,
    }  # fmt: skip
    assert (tmp_path / "accountflow.db").read_bytes().startswith(b"carlos")
    assert other.exists()


def test_the_local_prefect_servers_log_is_masked_and_its_database_left(tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    home.mkdir()
    (home / "prefect.db").write_bytes(b"x carlos@transportes-rapido.com.br")
    (home / "server-start.log").write_text("GET /x?to=Carlos@Transportes-Rapido.com.br 200\n")
    assert scrub_files(tmp_path, ME, [])["files_masked"] == 1
    assert (home / "server-start.log").read_text() == "GET /x?to=[erased] 200\n"
    assert b"carlos@" in (home / "prefect.db").read_bytes()


def test_a_message_naming_the_phone_in_any_format_is_deleted(tmp_path: Path) -> None:
    message = tmp_path / "previews" / "x.eml"
    message.parent.mkdir()
    message.write_bytes(b"Subject: hi\r\n\r\nCall me on +55 (21) 99876-5432")
    assert scrub_files(tmp_path, ME, [])["files_deleted"] == 1 and not message.exists()


def test_an_artifact_names_the_person_in_clear_or_by_one_of_their_outbox_rows() -> None:
    assert artifact_names_person([{"who": "CARLOS Pereira"}], ME, "Carlos Pereira", [])
    assert artifact_names_person([{"id": 5, "address": "c***@x"}], ME, None, [5])
    assert not artifact_names_person([{"id": 5, "n": 1}], ME, None, [5])  # not outbox rows
    assert not artifact_names_person([{"id": 6, "address": "c***@x"}], ME, None, [5])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.eml", "b.csv", "c.journal", "d.bin", "e.txt", "f.json"]),
            st.binary(max_size=200)
            | st.just(b"x;carlos@transportes-rapido.com.br;y\nz;21 99876 5432\nok\n"),
        ),
        max_size=6,
        unique_by=lambda f: f[0],
    )
)
def test_scrubbing_any_files_never_raises_and_leaves_no_identity(
    files: list[tuple[str, bytes]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, data in files:
            (root / name).write_bytes(data)
        scrub_files(root, ME, [1])
        for path in root.iterdir():
            if path.suffix != ".bin":
                assert b"carlos@transportes-rapido.com.br" not in path.read_bytes().lower()
