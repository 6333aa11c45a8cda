"""The reliability scorecard: each factor, the reasons, bands and reproducibility."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stdnum.br import cnpj, cpf
from stdnum.pt import nif

from config.policy_loader import PolicyError
from config.scoring_policy import (
    DEFAULT_SCORING_POLICY_PATH,
    FACTOR_LEVELS,
    FACTORS,
    ScoringPolicy,
    load_scoring_policy,
)
from tasks.common.tax_ids import ABSENT, INVALID, VALID, validate_tax_ids
from tasks.scoring.pipeline import canonical, fingerprint
from tasks.scoring.scorecard import INPUT_COLUMNS, band_changes, factor_levels, score_frame

AS_OF = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> ScoringPolicy:
    return load_scoring_policy()


def level(df: pd.DataFrame, policy: ScoringPolicy, factor: str) -> list[str]:
    codes = factor_levels(df, policy, AS_OF)[factor].tolist()
    names = ("absent", *FACTOR_LEVELS[factor])
    return [names[c] for c in codes]


def frame(**columns: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def good_contact(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "contact_id": 1,
        "email": "ana.souza@acmeindustria.com.br",
        "email_domain": "acmeindustria.com.br",
        "phone": "+5511987654321",
        "country": "BR",
        "company_name": "Acme Indústria Ltda",
        "company_tax_id": "11.222.333/0001-81",
        "job_title": "Diretora Comercial",
        "lead_rating": "Hot",
        "updated_at": "2026-10-01T10:00:00Z",
        "replies": 2,
        "opens": 5,
        "complaints_total": 0,
        "complaints_critical": 0,
        "obligations_missed": 0,
        "payment_delays": 0,
        "registry_status": "ATIVA",
        "registry_founded": "2005-03-01",
        "registry_size": "300",
    }
    row.update(overrides)
    return row


# ---------------------------------------------------------------- policy


def test_bundled_policy_loads_with_every_factor_and_level(policy: ScoringPolicy) -> None:
    assert set(policy.factors) == set(FACTORS)
    assert policy.version


def test_policy_missing_a_level_names_the_factor(tmp_path: Path) -> None:
    text = DEFAULT_SCORING_POLICY_PATH.read_text(encoding="utf-8")
    broken = text.replace('      cold: {points: -5, reason: "rated cold at the fair"}\n', "")
    assert broken != text
    path = tmp_path / "scoring.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"factors\.lead_rating\.levels"):
        load_scoring_policy(path)


def test_policy_rejects_bands_out_of_order(tmp_path: Path) -> None:
    text = DEFAULT_SCORING_POLICY_PATH.read_text(encoding="utf-8")
    path = tmp_path / "scoring.yaml"
    path.write_text(text.replace("  B: 58", "  B: 90"), encoding="utf-8")
    with pytest.raises(PolicyError, match="bands"):
        load_scoring_policy(path)


# ---------------------------------------------------------------- tax ids


def test_numpy_check_digits_agree_with_stdnum_on_random_numbers() -> None:
    rng = np.random.default_rng(3)
    values = []
    for _ in range(300):
        values.append("".join(map(str, rng.integers(0, 10, 14))))
        values.append("".join(map(str, rng.integers(0, 10, 11))))
        values.append("".join(map(str, rng.integers(0, 10, 9))))
    values += [cnpj.format("11222333000181"), cpf.format("11144477735"), "00000000000000"]
    values += ["00000000000", "023456789", "123456789"]
    expected = [
        {14: cnpj, 11: cpf, 9: nif}[
            len(v.replace(".", "").replace("/", "").replace("-", ""))
        ].is_valid(v)
        for v in values
    ]
    got = validate_tax_ids(pd.Series(values), pd.Series([None] * len(values)))
    assert (got == VALID).tolist() == expected
    assert (got == VALID).sum() > 20  # random digits are valid about 1 time in 100


def test_other_schemes_go_through_stdnum_by_prefix_or_country() -> None:
    values = pd.Series(
        ["PT 501 442 600", "ESB58378431", "B58378431", "DE136695976", "xyz", None, " "]
    )
    countries = pd.Series([None, None, "ES", None, "ES", None, None])
    assert validate_tax_ids(values, countries).tolist() == [
        VALID,
        VALID,
        VALID,
        VALID,
        INVALID,
        ABSENT,
        ABSENT,
    ]


def test_tax_id_factor_prefers_company_then_person_then_flags_invalid(
    policy: ScoringPolicy,
) -> None:
    df = frame(
        company_tax_id=["11.222.333/0001-81", None, "11.222.333/0001-82", None],
        person_tax_id=[None, "111.444.777-35", None, None],
        country=["BR", "BR", "BR", "BR"],
    )
    assert level(df, policy, "tax_id") == ["valid_company", "valid_person", "invalid", "absent"]


# ---------------------------------------------------------------- contact data


def test_email_domain_is_corporate_free_or_disposable(policy: ScoringPolicy) -> None:
    df = frame(
        email=["a@acme.com.br", "b@Gmail.com", "c@mailinator.com", None, "e@corp.pt"],
        email_domain=[None, None, None, None, None],
        is_free_mail=[False, False, False, False, True],
    )
    assert level(df, policy, "email_domain") == [
        "corporate",
        "free_mail",
        "disposable",
        "absent",
        "free_mail",
    ]


def test_completeness_counts_the_six_key_fields(policy: ScoringPolicy) -> None:
    full = good_contact()
    partial = good_contact(phone=None, job_title="")
    sparse = {"contact_id": 3, "email": "x@y.com"}
    assert level(pd.DataFrame([full, partial, sparse]), policy, "completeness") == [
        "full",
        "partial",
        "sparse",
    ]


def test_phone_must_belong_to_the_stated_country(policy: ScoringPolicy) -> None:
    df = frame(
        phone=["+5511987654321", "+351912345678", "+14155550100", "+5511987654321", "11987654321"],
        country=["BR", "BR", "CA", None, "BR"],
    )
    assert level(df, policy, "phone_country") == ["match", "mismatch", "match", "absent", "absent"]


def test_email_domain_is_compared_with_the_company_name(policy: ScoringPolicy) -> None:
    df = frame(
        email_domain=["acmeindustria.com.br", "acme.pt", "bb.com.br", "zeta.com", "gmail.com"],
        company_name=["ACME Indústria Ltda", "Acme Lda", "Banco do Brasil SA", "Acme SA", "Acme"],
    )
    assert level(df, policy, "domain_company") == [
        "match",
        "match",
        "match",
        "mismatch",
        "absent",
    ]


def test_seniority_reads_portuguese_spanish_and_english_titles(policy: ScoringPolicy) -> None:
    df = frame(
        job_title=[
            "Diretora Comercial",
            "Sócio-fundador",
            "Gerente de Compras",
            "Jefe de Ventas",
            "Head of Procurement",
            "Analista de TI",
            "Asistente",
            "Recepção",
            None,
        ]
    )
    assert level(df, policy, "seniority") == [
        "executive",
        "executive",
        "manager",
        "manager",
        "manager",
        "staff",
        "staff",
        "other",
        "absent",
    ]


def test_lead_rating_accepts_words_and_stars(policy: ScoringPolicy) -> None:
    df = frame(lead_rating=["Hot", "quente", "Warm", "★★★", "5 estrelas", "2", "frío", "??", None])
    assert level(df, policy, "lead_rating") == [
        "hot",
        "hot",
        "warm",
        "warm",
        "hot",
        "cold",
        "cold",
        "absent",
        "absent",
    ]


# ---------------------------------------------------------------- behaviour and history


def test_engagement_from_replies_and_opens(policy: ScoringPolicy) -> None:
    df = frame(replies=[1, 0, 0, None], opens=[0, 4, 0, None])
    assert level(df, policy, "engagement") == ["replied", "opened", "ignored", "absent"]


def test_complaints_by_severity_and_count(policy: ScoringPolicy) -> None:
    df = frame(complaints_total=[0, 2, 1, 7, None], complaints_critical=[0, 0, 1, 0, None])
    assert level(df, policy, "complaints") == ["none", "minor", "critical", "critical", "absent"]


def test_obligations_missed_outweigh_late_payments(policy: ScoringPolicy) -> None:
    df = frame(obligations_missed=[0, 0, 1, None], payment_delays=[0, 3, 3, None])
    assert level(df, policy, "obligations") == ["met", "late_payments", "missed", "absent"]


def test_data_age_uses_updated_then_created_relative_to_as_of(policy: ScoringPolicy) -> None:
    df = frame(
        updated_at=["2026-11-01", None, "2021-01-01", None],
        created_at=["2010-01-01", "2025-06-01", None, None],
    )
    assert level(df, policy, "data_age") == ["fresh", "aging", "stale", "absent"]


def test_registry_status_age_and_size(policy: ScoringPolicy) -> None:
    df = frame(
        registry_status=["ATIVA", "Baixada", "weird", None],
        registry_founded=["2001-01-01", "2023-01-01", "2026-06-01", None],
        registry_size=["300", "EPP", "8", None],
    )
    assert level(df, policy, "registry_status") == ["active", "inactive", "absent", "absent"]
    assert level(df, policy, "company_age") == ["established", "young", "new", "absent"]
    assert level(df, policy, "company_size") == ["large", "small", "micro", "absent"]


# ---------------------------------------------------------------- score, band, reasons


def test_a_strong_contact_lands_in_band_a_and_a_weak_one_in_d(policy: ScoringPolicy) -> None:
    weak = good_contact(
        contact_id=2,
        email="x@mailinator.com",
        email_domain="mailinator.com",
        company_tax_id="11.222.333/0001-82",
        registry_status="BAIXADA",
        obligations_missed=2,
        lead_rating="cold",
    )
    out = score_frame(pd.DataFrame([good_contact(), weak]), policy, AS_OF)
    assert out["band"].tolist() == ["A", "D"]
    assert out["score"].iloc[0] > out["score"].iloc[1]
    assert out["scorecard_version"].tolist() == [policy.version] * 2
    assert "-REGISTRY_STATUS_INACTIVE" in out["reason_codes"].iloc[1]
    assert "closed, suspended or irregular" in out["reasons"].iloc[1]


def test_reasons_list_the_biggest_movers_first_with_their_points(policy: ScoringPolicy) -> None:
    out = score_frame(pd.DataFrame([good_contact(registry_status="baixada")]), policy, AS_OF)
    codes = out["reason_codes"].iloc[0].split(";")
    assert codes[0] == "-REGISTRY_STATUS_INACTIVE"
    assert len(codes) == policy.max_reasons
    assert out["reasons"].iloc[0].startswith("-30 company is closed")


def test_missing_registry_is_skipped_and_said_so(policy: ScoringPolicy) -> None:
    row = good_contact(registry_status=None, registry_founded=None, registry_size=None)
    with_registry = score_frame(
        pd.DataFrame([good_contact(registry_status="baixada")]), policy, AS_OF
    )
    without = score_frame(pd.DataFrame([row]), policy, AS_OF)
    assert without["skipped_codes"].iloc[0] == (
        "REGISTRY_STATUS_ABSENT;COMPANY_AGE_ABSENT;COMPANY_SIZE_ABSENT"
    )
    assert "Not scored: company registry not consulted or unavailable" in without["reasons"].iloc[0]
    assert without["score"].iloc[0] > with_registry["score"].iloc[0]


def test_every_row_has_reasons_even_with_no_data(policy: ScoringPolicy) -> None:
    df = pd.DataFrame(
        [good_contact(contact_id=1), {"contact_id": 2}, {"contact_id": 3, "email": "a@b.co"}]
    )
    out = score_frame(df, policy, AS_OF)
    assert out["reasons"].astype(str).str.len().gt(10).all()
    assert out["reason_codes"].astype(str).str.len().gt(0).all()
    assert out["score"].between(0, 100).all()


def test_same_inputs_and_as_of_give_the_same_scores_and_reasons(policy: ScoringPolicy) -> None:
    from benchmarks.bench_scoring import synthetic_contacts

    df = synthetic_contacts(5_000, seed=11)
    first = score_frame(df, policy, AS_OF)
    second = score_frame(df.sample(frac=1.0, random_state=1).sort_index(), policy, AS_OF)
    pd.testing.assert_frame_equal(first, second)
    later = score_frame(df, policy, datetime(2029, 1, 1, tzinfo=UTC))
    assert (later["score"] != first["score"]).any()  # as_of matters: data ages


def test_shuffled_rows_keep_their_own_scores(policy: ScoringPolicy) -> None:
    from benchmarks.bench_scoring import synthetic_contacts

    df = synthetic_contacts(2_000, seed=5)
    base = score_frame(df, policy, AS_OF).set_index("contact_id")
    shuffled = score_frame(df.sample(frac=1.0, random_state=2), policy, AS_OF)
    again = shuffled.set_index("contact_id").loc[base.index]
    assert (again["score"] == base["score"]).all()
    assert (again["reasons"].astype(str) == base["reasons"].astype(str)).all()


def test_logistic_policy_maps_points_to_a_probability(policy: ScoringPolicy) -> None:
    logistic = policy.model_copy(update={"combine": "logistic", "base": 0.0})
    out = score_frame(pd.DataFrame([{"contact_id": 1}]), logistic, AS_OF)
    # Only "sparse record" (-8 points) moves: 100 / (1 + 2 ** 0.8) with 10 points per doubling.
    assert out["score"].iloc[0] == pytest.approx(100 / (1 + 2**0.8), abs=0.05)


def test_band_changes_are_contacts_whose_band_moved(policy: ScoringPolicy) -> None:
    previous = pd.DataFrame({"contact_id": [1, 2, 9], "band": ["C", "D", "A"]})
    current = score_frame(
        pd.DataFrame([good_contact(contact_id=1), good_contact(contact_id=2, lead_rating="x")]),
        policy,
        AS_OF,
    )
    changes = band_changes(previous, current)
    assert changes[["contact_id", "previous_band", "new_band"]].values.tolist() == [
        [1, "C", "A"],
        [2, "D", "A"],
    ]


def _prints(frame: pd.DataFrame, policy: ScoringPolicy, as_of: datetime) -> pd.Series:
    return fingerprint(canonical(frame.reindex(columns=list(INPUT_COLUMNS))), policy, as_of)


def test_fingerprint_changes_only_when_an_input_changes(policy: ScoringPolicy) -> None:
    df = pd.DataFrame([good_contact(contact_id=1), good_contact(contact_id=2)])
    edited = df.copy()
    edited.loc[1, "job_title"] = "Analista"

    assert (_prints(df, policy, AS_OF) == _prints(df.copy(), policy, AS_OF)).all()
    assert (_prints(df, policy, AS_OF) != _prints(edited, policy, AS_OF)).tolist() == [
        False,
        True,
    ]


def test_fingerprint_moves_with_as_of_only_when_data_ages_into_another_level(
    policy: ScoringPolicy,
) -> None:
    edge = AS_OF - timedelta(days=policy.thresholds.fresh_max_days)  # fresh today, not tomorrow
    df = pd.DataFrame(
        [
            good_contact(contact_id=1, updated_at=edge.isoformat()),
            good_contact(contact_id=2, updated_at=AS_OF.isoformat()),
        ]
    )
    tomorrow = AS_OF + timedelta(days=1)
    assert (_prints(df, policy, AS_OF) != _prints(df, policy, tomorrow)).tolist() == [True, False]
    today = factor_levels(df, policy, AS_OF)["data_age"]
    assert (today != factor_levels(df, policy, tomorrow)["data_age"]).tolist() == [True, False]


def _storages() -> list[str]:
    """pandas' string storages available here: Arrow takes a separate fast path."""
    return ["python", "pyarrow"] if importlib.util.find_spec("pyarrow") else ["python"]


@pytest.mark.parametrize("storage", _storages())
def test_string_storage_does_not_change_scores(policy: ScoringPolicy, storage: str) -> None:
    from benchmarks.bench_scoring import synthetic_contacts

    df = synthetic_contacts(3_000, seed=9)
    df.loc[::50, "company_tax_id"] = "PT 501 442 600"  # a stdnum-path value among numpy ones
    as_object = df.astype({c: object for c in df.columns if df[c].dtype == "str"})
    text = [c for c in df.columns if df[c].dtype == "str"]
    typed = df.astype({c: pd.StringDtype(storage, na_value=np.nan) for c in text})  # type: ignore[call-overload]
    expected = score_frame(as_object, policy, AS_OF)
    got = score_frame(typed, policy, AS_OF)
    assert (got["score"] == expected["score"]).all()
    assert (got["reason_codes"].astype(str) == expected["reason_codes"].astype(str)).all()
    valid = validate_tax_ids(typed["company_tax_id"], typed["country"])
    assert (valid == validate_tax_ids(as_object["company_tax_id"], as_object["country"])).all()
