"""Normalising lead rows: names, emails, phones, companies, tax ids, dates, quarantine."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from stdnum.br import cnpj

from config.policies import get_ingest_policies
from connectors.exhibition_files import NUL_MARK, RawTable
from tasks.common.spreadsheet_safety import is_formula, neutralise
from tasks.ingest.mapping import UnmappableFile, map_columns
from tasks.ingest.normalize import (
    _WHITESPACE_RUN,
    _blank_to_na,
    _parse_phone,
    classify_tax_id,
    classify_tax_ids,
    display_name,
    json_objects,
    normalize_phones,
    normalize_table,
    parse_scan_times,
    valid_region,
    valid_regions,
)

HEADER = [
    "Nome",
    "Sobrenome",
    "E-mail",
    "Empresa",
    "Celular",
    "CNPJ",
    "País",
    "UF",
    "Observações",
    "Classificação",
    "Data da leitura",
]


def _row(**kw: str) -> list[str]:
    base = dict(
        nome="Maria",
        sobrenome="Souza",
        email="maria@acme.com.br",
        empresa="ACME Ltda",
        cel="(11) 98765-4321",
        cnpj="",
        pais="Brasil",
        uf="sp",
        obs="",
        rating="",
        data="",
    )
    base.update(kw)
    return list(base.values())


def normalize(
    rows: list[list[str]],
    header: list[str] = HEADER,
    max_chars: int = 1000,
    malformed: list | None = None,
) -> pd.DataFrame:
    policy = get_ingest_policies().sources
    table = RawTable(header=header, rows=list(enumerate(rows, start=1)), malformed=malformed or [])
    return normalize_table(
        table,
        map_columns(header, policy),
        policy,
        default_region="BR",
        timezone="America/Sao_Paulo",
        max_field_chars=max_chars,
    )


def test_shouted_names_are_title_cased_with_particles_and_accents_kept() -> None:
    out = normalize([_row(nome="MARIA DA CONCEIÇÃO", sobrenome="DOS SANTOS")]).iloc[0]
    assert out["first_name"] == "Maria da Conceição"
    assert out["last_name"] == "dos Santos"
    assert out["name_key"] == "conceicao maria santos"  # folded, particles dropped, sorted


def test_names_are_title_cased_as_one_regular_expression_over_every_name_would() -> None:
    """Only names holding a particle go through Python's re; every name must come out as
    the one expression applied to all of them gives it."""
    rng = random.Random(13)
    particles = get_ingest_policies().sources.name_particles
    words = ["maria", "DA", "Silva", "de", "los", "Ángeles", "y", "VON", "der", "e", "lima"]
    names = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))) for _ in range(3000)]
    names += [n.upper() for n in names[:500]] + [n.lower() for n in names[500:1000]]
    pattern = r"(?:(?<=\s)|^)(" + "|".join(re.escape(p.title()) for p in particles) + r")(?=\s)"

    def alone(name: str) -> str:
        if name not in (name.upper(), name.lower()):
            return name  # mixed case is kept as typed
        return re.sub(pattern, lambda m: m.group(1).lower(), name.title())

    got = display_name(pd.Series([*names, None], dtype="string"), particles)
    assert got.iloc[:-1].tolist() == [alone(n) for n in names] and pd.isna(got.iloc[-1])
    assert sum(alone(n) != n.title() for n in names) > 500  # particles were lowered


def test_only_cells_with_a_whitespace_run_are_rewritten_and_all_come_out_folded() -> None:
    """Every cell comes out trimmed, with each run of Unicode whitespace one space, and
    empty as NA, as one replacement over every cell gives them."""
    rng = random.Random(19)
    spaces = [" ", "  ", "\t", "\n", "\u00a0", "\u2007", "\u3000", "\x1c", " \r\n "]
    cells = [
        "".join(rng.choice(["ana", "b", "ç", *spaces]) for _ in range(rng.randint(0, 6)))
        for _ in range(3000)
    ]
    column = pd.Series([*cells, None], dtype="string")
    every = column.str.strip().str.replace(_WHITESPACE_RUN, " ", regex=True)
    assert _blank_to_na(column).equals(every.mask(every == ""))


def test_a_rows_raw_json_is_what_json_dumps_writes_for_its_cells() -> None:
    """Cells are escaped only where they hold what JSON escapes; the text must be that of
    json.dumps for every cell, quotes, backslashes, line breaks and control characters
    included, and a repeated header keeps its last cell."""
    rng = random.Random(17)
    alphabet = ["a", "é", " ", '"', "\\", "\n", "\r", "\t", "\x00", "\x08", "\x1f", "ç", "{"]
    cells = pd.DataFrame(
        [
            ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(4)]
            for _ in range(2000)
        ]
        + [["plain", "", "text", "only"]]
    ).astype("string")
    names = ["Nome", 'E-"mail"', "Nome", "Observações"]
    got = json_objects(cells, names).tolist()
    want = [
        "{"
        + ",".join(
            json.dumps(n, ensure_ascii=False) + ":" + json.dumps(c, ensure_ascii=False)
            for n, c in zip(names, row, strict=True)
        )
        + "}"
        for row in cells.itertuples(index=False)
    ]
    assert got == want
    assert json.loads(got[-1]) == {"Nome": "text", 'E-"mail"': "", "Observações": "only"}


def test_swapped_name_order_gives_the_same_name_key() -> None:
    out = normalize([_row(nome="João", sobrenome="Silva"), _row(nome="Silva", sobrenome="JOAO")])
    assert out["name_key"].nunique() == 1


def test_full_name_column_with_comma_is_split_surname_last() -> None:
    header = ["Nome completo", "E-mail", "Empresa"]
    out = normalize([["Silva, João", "j@x.com.br", "X"]], header=header).iloc[0]
    assert (out["first_name"], out["last_name"]) == ("João", "Silva")


def test_emails_are_trimmed_lowercased_and_free_mail_flagged() -> None:
    out = normalize([_row(email="  Maria.Souza@GMAIL.com "), _row(email="mailto:<a@b.com.br>")])
    assert out["email"].tolist() == ["maria.souza@gmail.com", "a@b.com.br"]
    assert out["is_free_mail"].tolist() == [True, False]
    assert "free_mail" in out.loc[0, "flags"]


def test_unusual_but_valid_email_passes_the_full_validator() -> None:
    out = normalize([_row(email="josé@exemplo.com.br")]).iloc[0]
    assert out["email"] == "josé@exemplo.com.br" and pd.isna(out["reason"])


def test_invalid_email_with_a_phone_is_accepted_and_flagged() -> None:
    out = normalize([_row(email="maria@@acme")]).iloc[0]
    assert pd.isna(out["email"]) and pd.isna(out["reason"]) and "invalid_email" in out["flags"]


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(11) 98765-4321", "Brasil", "+5511987654321"),
        ("5511987654321", "Brasil", "+5511987654321"),
        ("612 345 678", "España", "+34612345678"),
        ("+1 305 555 0123", "Brasil", "+13055550123"),
        ("305-555-0123", "USA", "+13055550123"),
        ("+39 06 1234 5678", "", "+390612345678"),
    ],
)
def test_phones_become_e164_with_the_region_from_the_rows_country(
    raw: str, country: str, expected: str
) -> None:
    assert normalize([_row(cel=raw, pais=country)]).iloc[0]["phone"] == expected


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("5511987654321", "BR"),  # E.164 without "+": the shortcut
        ("13055550123", "US"),  # the country code is also the trunk prefix
        ("34612345678", "ES"),
        ("3461234567", "ES"),  # too short once the code is stripped
        ("5502112345678", "BR"),  # a trunk "0" after the code
        ("559011987654321", "BR"),  # "90" + carrier code after the code
        ("34612345678", "BR"),  # another country's number without "+"
    ],
)
def test_phones_typed_without_plus_read_as_phonenumbers_parse_reads_them(
    raw: str, region: str
) -> None:
    try:
        number = phonenumbers.parse(raw, region)
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    expected = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if valid else None
    )
    assert _parse_phone(raw, region)[0] == expected


def test_phone_validity_and_region_agree_with_phonenumbers_on_thousands_of_numbers() -> None:
    """``valid_region`` re-implements ``is_valid_number`` + ``region_code_for_number`` for
    speed; on every region's example numbers and on random digits of every plausible
    length it must give the library's answer (country codes with several regions included:
    +1, +7, +44, +262, and a non-geographic one, +800)."""
    rng = random.Random(7)
    numbers: list[phonenumbers.PhoneNumber] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append(example)
    for cc in (1, 7, 44, 262, 55, 351, 34, 49, 800, 39):
        for _ in range(600):
            digits = str(rng.randint(1, 9)) + "".join(
                str(rng.randint(0, 9)) for _ in range(rng.randint(3, 13))
            )
            numbers.append(phonenumbers.PhoneNumber(country_code=cc, national_number=int(digits)))
    valid = 0
    expected_all = []
    for number in numbers:
        expected = (
            phonenumbers.region_code_for_number(number)
            if phonenumbers.is_valid_number(number)
            else None
        )
        nsn = phonenumbers.national_significant_number(number)
        assert valid_region(number.country_code, nsn) == expected, number
        valid += expected is not None
        expected_all.append(expected)
    assert valid > 300  # the comparison covered valid numbers, not only rejections
    # The same numbers as one column.
    codes = np.array([n.country_code for n in numbers], dtype=np.int64)
    nsns = np.array([phonenumbers.national_significant_number(n) for n in numbers], dtype=object)
    assert valid_regions(codes, nsns).tolist() == expected_all


def test_a_column_of_phones_reads_as_each_number_would_alone() -> None:
    """``normalize_phones`` reads plain numbers for the whole column at once; every value
    must come out as ``_parse_phone`` reads it alone: every region's examples written
    every way people type them, under several row regions, and odd input besides."""
    rng = random.Random(5)
    formats = [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ]
    raw: list[str] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                e164 = phonenumbers.format_number(example, formats[0])
                raw += [phonenumbers.format_number(example, f) for f in formats]
                raw += [e164[1:], "00" + e164[1:], e164[:-1], e164 + "7"]
    raw += [
        "(11) 98765-4321",
        "+55 (11) 9.8765/4321",
        "+55\u00a011\u00a098765\u20074321",  # no-break and figure spaces
        "+５５ １１ ９８７６５ ４３２１",  # fullwidth digits
        "+39 06 1234 5678",
        "+390612345678",
        "+1",
        "12345",
        "+99912345678",
        "tel: 11 98765 4321",
        "5511987654321",
        "559011987654321",
        "0800 123 4567",
        "",
        "   ",
    ]
    regions = ["BR", "US", "ES", "PT", "IT", "GB", "DE", "AR", "RU", "FR"]
    frame = pd.DataFrame({"raw": raw, "region": [rng.choice(regions) for _ in raw]})
    # Numbers with their own country code typed in front but no "+", each in its region.
    own_code = pd.DataFrame(
        [
            ("49301234567", "DE"),
            ("4930123456789", "DE"),
            ("5521234567", "BR"),
            ("5511987654321", "BR"),
            ("5502112345678", "BR"),
            ("559011987654321", "BR"),
            ("13055550123", "US"),
            ("34612345678", "ES"),
            ("351912345678", "PT"),
            ("3906123456", "IT"),  # a trunk "0" after the code: kept
            ("3989469359", "IT"),  # valid with the code and without: kept (not too long)
            ("4944144756236", "DE"),
            ("5530022808", "BR"),
        ],
        columns=["raw", "region"],
    )
    frame = pd.concat([frame, frame.assign(region="BR"), own_code], ignore_index=True)
    e164, own = normalize_phones(frame["raw"].astype("string"), frame["region"])
    alone = [_parse_phone(r, g) for r, g in zip(frame["raw"], frame["region"], strict=True)]
    got = list(zip(e164.tolist(), own.tolist(), strict=True))
    assert got == [(a, b) for a, b in alone]
    assert sum(a is not None for a, _ in alone) > 1000


def test_country_comes_from_the_phone_when_the_row_has_none() -> None:
    out = normalize([_row(cel="+34 612 345 678", pais="")]).iloc[0]
    assert out["country"] == "ES"


def test_company_legal_suffixes_are_stripped_for_matching_only() -> None:
    names = ["ACME Ltda.", "Acme S/A", "acme s.a.", "ACME", "Acme Indústria e Comércio EIRELI"]
    out = normalize([_row(empresa=n) for n in names])
    assert out["company"].tolist() == names
    assert out["company_key"].tolist()[:4] == ["acme"] * 4
    assert out["company_key"].iloc[4] == "acme industria e comercio"


def test_tax_ids_are_validated_and_classified_company_or_person() -> None:
    out = normalize(
        [
            _row(cnpj="11.222.333/0001-81"),
            _row(cnpj="111.444.777-35"),
            _row(cnpj="11.222.333/0001-00"),
        ]
    )
    assert out["company_tax_id"].tolist()[0] == "11222333000181"
    assert out["person_tax_id"].tolist()[1] == "11144477735"
    assert pd.isna(out["tax_id"].iloc[2]) and "invalid_tax_id" in out["flags"].iloc[2]


def test_the_column_at_once_tax_id_path_classifies_every_value_as_stdnum_does() -> None:
    """classify_tax_ids checks plain 14-digit values as CNPJs itself; every value, valid or
    not, in any shape, must come out as classify_tax_id (python-stdnum) says."""
    rng = random.Random(7)
    values: list[str | None] = [None, "", "00000000000000", "00.000.000/0000-00", "٣" * 14]
    for _ in range(3000):
        body = "".join(rng.choice("0123456789") for _ in range(12))
        valid = body + cnpj.calc_check_digits(body)
        wrong = valid[:-1] + str((int(valid[-1]) + 1) % 10)
        shown = f"{valid[:2]}.{valid[2:5]}.{valid[5:8]}/{valid[8:12]}-{valid[12:]}"
        values += [valid, wrong, shown, " " + valid + "x", valid + "1"]
    values += ["111.444.777-35", "123456789", "B12345674", "PT123456789", "ESX1234567L"]
    countries = [rng.choice([None, "BR", "PT", "ES", "DE"]) for _ in values]
    got = classify_tax_ids(pd.Series(values, dtype="string"), pd.Series(countries))
    expected = [
        classify_tax_id(v, c) if isinstance(v, str) else None
        for v, c in zip(values, countries, strict=True)
    ]
    assert got == expected
    assert sum(1 for g in got if g and g[1] == "cnpj") > 5000


def test_scan_times_in_local_time_become_utc() -> None:
    out = normalize(
        [_row(data="14/03/2026 10:22"), _row(data="2026-03-14T10:22:00"), _row(data="not a date")]
    )
    assert str(out["scan_time"].iloc[0]) == "2026-03-14 13:22:00"
    assert str(out["scan_time"].iloc[1]) == "2026-03-14 13:22:00"
    assert pd.isna(out["scan_time"].iloc[2]) and "bad_date" in out["flags"].iloc[2]


def test_every_date_format_is_read_in_one_file_mixed_with_the_others() -> None:
    """Each format is offered only values of its shape; none may be lost to that filter,
    whatever the spacing or padding (a value per format, in one column)."""
    values = [
        "2026-03-14T10:22:00",
        "14/03/2026 10:22:05",
        "14/03/2026 10:22",
        "14/03/2026",
        "14-03-2026 10:22",
        "14.03.2026 10:22",
        "03/14/2026 10:22 AM",
        "03/14/2026 10:22:00 AM",
        "2026/03/14 10:22",
        "4/3/2026 9:05",  # no zero padding
        "14/03/2026\u00a010:22",  # a no-break space, as Python's \\s takes it
    ]
    out = parse_scan_times(pd.Series(values, dtype="string"), "America/Sao_Paulo")
    assert out.notna().all(), out[out.isna()]
    assert out.iloc[:3].dt.strftime("%H:%M").tolist() == ["13:22"] * 3
    assert str(out.iloc[9]) == "2026-03-04 12:05:00"


def test_iso_times_with_mixed_offsets_are_each_read_as_their_instant() -> None:
    """One column of "+01:00", "Z", "+00:00" with fractions, and local times without an
    offset: pandas refuses such a column unless told to read it as UTC."""
    values = [
        "2026-10-06T09:00:01+01:00",
        "2026-10-06T09:00:01Z",
        "2026-10-06T09:00:00.123+00:00",
        "2026-10-06 09:00:01 -0300",
        "2026-10-06T09:00:01",  # local (Sao Paulo, UTC-3)
        "2026-10-06",
        "0001-01-01T00:00:00+00:00",  # a typing error, not a scan time
    ]
    out = parse_scan_times(pd.Series(values, dtype="string"), "America/Sao_Paulo")
    assert [str(v) for v in out] == [
        "2026-10-06 08:00:01",
        "2026-10-06 09:00:01",
        "2026-10-06 09:00:00.123000",
        "2026-10-06 12:00:01",
        "2026-10-06 12:00:01",
        "2026-10-06 03:00:00",
        "NaT",
    ]


def test_lead_ratings_in_three_languages_map_to_hot_warm_cold() -> None:
    out = normalize([_row(rating=r) for r in ["Quente", "Tibio", "cold", "★★★", "?"]])
    assert out["lead_rating"].tolist()[:4] == ["hot", "warm", "cold", "warm"]
    assert pd.isna(out["lead_rating"].iloc[4])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"email": "", "cel": ""}, "no_contact"),
        ({"email": "not-an-email", "cel": ""}, "invalid_email"),
        ({"email": "", "cel": "123"}, "invalid_phone"),
        ({"empresa": '=HYPERLINK("http://evil.example","x")'}, "formula_injection"),
        ({"obs": "=cmd|' /C calc'!A0"}, "formula_injection"),
        ({"obs": "@SUM(1+1)"}, "formula_injection"),
        ({"obs": "-2+3+cmd|' /C calc'!A0"}, "formula_injection"),
    ],
)
def test_rows_that_cannot_be_leads_are_quarantined_with_a_reason(
    changes: dict[str, str], reason: str
) -> None:
    assert normalize([_row(**changes)]).iloc[0]["reason"] == reason


def test_phone_with_plus_and_note_with_dash_are_not_formulas() -> None:
    out = normalize([_row(cel="+55 11 98765-4321", obs="- met at booth (twice)")]).iloc[0]
    assert pd.isna(out["reason"])
    assert not is_formula("+55 11 98765-4321") and not is_formula("- met at booth (twice)")
    assert is_formula("+SUM(A1:A2)") and is_formula("\t=1+1")


def test_malformed_rows_are_kept_with_their_cells() -> None:
    out = normalize([_row()], malformed=[(2, ["a", "b"], "2 cells, header has 11")])
    assert pd.isna(out["reason"].iloc[0]) and out["reason"].iloc[1] == "malformed_row"
    assert json.loads(out.loc[1, "raw"]) == {
        "cells": ["a", "b"],
        "problem": "2 cells, header has 11",
    }


def test_raw_row_is_json_of_every_cell_by_header_whatever_the_cell_holds() -> None:
    header = ["Nome", "E-mail", 'Notes "quoted"', "Nome"]
    cells = ['Ana "Bia"', "a@x.com.br", "line 1\nline 2\r\n\tback\\slash \x01 ç €", "Second"]
    out = normalize([cells], header=header).iloc[0]
    # A repeated header keeps its last cell, as a dict built from the row would.
    assert json.loads(out["raw"]) == {
        "Nome": "Second",
        "E-mail": "a@x.com.br",
        'Notes "quoted"': cells[2],
    }


def test_nul_bytes_are_stripped_and_long_fields_truncated_with_flags() -> None:
    out = normalize([_row(nome=f"Ma{NUL_MARK}ria", obs="x" * 50)], max_chars=20).iloc[0]
    assert out["first_name"] == "Maria" and pd.isna(out["reason"])
    assert len(out["notes"]) == 20
    assert set(out["flags"].split(",")) >= {"nul_stripped", "truncated"}


def test_headers_map_in_portuguese_spanish_and_english() -> None:
    policy = get_ingest_policies().sources
    for header in (
        ["Nome", "Sobrenome", "E-mail", "Empresa", "Cargo", "Telefone", "UF"],
        ["Nombre", "Apellidos", "Correo electrónico", "Compañía", "Puesto", "Móvil"],
        ["First Name", "Last Name", "Email Address", "Company", "Job Title", "Phone"],
    ):
        fields = set(map_columns(header, policy).fields.values())
        assert {"first_name", "last_name", "email", "company", "job_title"} <= fields


def test_unmappable_file_error_lists_the_headers_it_could_not_map() -> None:
    with pytest.raises(UnmappableFile, match=r"unmapped headers: \['Foo', 'Bar'\]"):
        map_columns(["Foo", "Bar", "Empresa"], get_ingest_policies().sources)


def test_csv_exports_neutralise_cells_a_spreadsheet_would_run() -> None:
    frame = pd.DataFrame(
        {"a": pd.Series(["=1+1", "+55 11 9999", "@SUM(1)", "ok", None], dtype=object)}
    )
    # OWASP: any leading + is quoted on the way out, a phone too (a spreadsheet may run it).
    assert neutralise(frame)["a"].tolist() == ["'=1+1", "'+55 11 9999", "'@SUM(1)", "ok", None]


def test_a_file_whose_company_and_name_columns_are_all_blank_still_normalises() -> None:
    header = ["Nome", "E-mail", "Empresa"]
    out = normalize([["", "a@x.com.br", ""]], header=header).iloc[0]
    assert out["email"] == "a@x.com.br" and pd.isna(out["company_key"]) and pd.isna(out["reason"])
