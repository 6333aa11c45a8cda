"""Throughput and peak memory of the pure scoring step on synthetic contacts.

Run: ``python -m benchmarks.bench_scoring [n]``; ``python -m benchmarks.bench_scoring
roundtrip [n]`` times the score-contacts task (load from SQLite, fingerprint, score, write
history and latest scores back) on n synthetic contacts stored in a fresh SQLite file.
The synthetic data is shaped like ours
(mostly Brazilian and Portuguese contacts, repeated companies, job titles and domains,
a share of nulls everywhere) so the distinct-value shortcuts in tasks.scoring.scorecard get the
cardinalities they would see in production, not a best case.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from config.scoring_policy import ScoringPolicy, load_scoring_policy
from tasks.scoring.scorecard import score_frame

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)
_CNPJ_W1 = np.array([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
_CNPJ_W2 = np.array([6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])


def _cnpjs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Formatted CNPJs, about 90 % with correct check digits."""
    base = rng.integers(0, 10, size=(n, 12))
    base[:, 0] = rng.integers(1, 10, size=n)
    d1 = (11 - base @ _CNPJ_W1) % 11 % 10
    d2 = (11 - (base @ _CNPJ_W2[:12] + d1 * 2)) % 11 % 10
    d2 = np.where(rng.random(n) < 0.1, (d2 + 1) % 10, d2)
    digits = np.column_stack([base, d1, d2]).astype(np.uint8) + 48
    raw = digits.view("S14").ravel().astype(str)
    s = pd.Series(raw, dtype=object)
    return (
        s.str[:2] + "." + s.str[2:5] + "." + s.str[5:8] + "/" + s.str[8:12] + "-" + s.str[12:]
    ).to_numpy()


def synthetic_contacts(n: int, seed: int = 7) -> pd.DataFrame:
    """n contacts over n/20 companies, with realistic repetition and nulls."""
    rng = np.random.default_rng(seed)
    n_companies = max(n // 20, 1)
    words = np.array(
        [
            "acme",
            "norte",
            "sul",
            "brasil",
            "tech",
            "agro",
            "lusa",
            "iberia",
            "prime",
            "delta",
            "alfa",
            "omega",
            "atlas",
            "nova",
            "vale",
            "sol",
        ]
    )
    company_w1 = words[rng.integers(0, len(words), n_companies)]
    company_w2 = words[rng.integers(0, len(words), n_companies)]
    company_names = np.char.add(
        np.char.add(np.char.capitalize(company_w1), " "), np.char.capitalize(company_w2)
    ).astype(object)
    company_names = company_names + np.where(rng.random(n_companies) < 0.5, " Ltda", " SA")
    company_domains = (np.char.add(np.char.add(company_w1, company_w2), ".com.br")).astype(object)
    company_cnpj = _cnpjs(rng, n_companies)
    which = rng.integers(0, n_companies, n)
    free = rng.random(n) < 0.3
    free_domains = np.array(
        ["gmail.com", "hotmail.com", "yahoo.com.br", "outlook.com", "mailinator.com"], dtype=object
    )
    domain = np.where(free, free_domains[rng.integers(0, 5, n)], company_domains[which])
    country = np.where(rng.random(n) < 0.8, "BR", "PT").astype(object)
    phone_cc = np.where(rng.random(n) < 0.95, np.where(country == "BR", "+55", "+351"), "+34")
    phone = np.char.add(phone_cc.astype(str), rng.integers(10**8, 10**9, n).astype(str)).astype(
        object
    )
    titles = np.array(
        [
            "Diretor Comercial",
            "Gerente de Compras",
            "Analista",
            "CEO",
            "Buyer",
            "Coordenadora de TI",
            "Jefe de ventas",
            "Estagiário",
            "Sócio",
            "Engenheiro",
        ],
        dtype=object,
    )
    ratings = np.array(
        ["Hot", "Warm", "Cold", "quente", "frio", "***", "5 estrelas", "B"], dtype=object
    )
    created = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 2800, n), unit="D")
    updated = created + pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    status = np.array(["ATIVA", "BAIXADA", "SUSPENSA", "active"], dtype=object)
    founded = pd.Timestamp("1980-01-01") + pd.to_timedelta(
        rng.integers(0, 16500, n_companies), unit="D"
    )
    sizes = np.array(["ME", "EPP", "DEMAIS", "12", "300"], dtype=object)

    def nulls(values: Any, share: float) -> Any:
        out = pd.Series(values)
        return out.where(rng.random(n) >= share)

    registry_known = rng.random(n) >= 0.4
    df = pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "email_domain": nulls(domain, 0.05),
            "is_free_mail": free,
            "phone": nulls(phone, 0.2),
            "country": nulls(country, 0.1),
            "company_name": nulls(company_names[which], 0.1),
            "company_tax_id": nulls(company_cnpj[which], 0.3),
            "person_tax_id": None,
            "job_title": nulls(titles[rng.integers(0, len(titles), n)], 0.2),
            "lead_rating": nulls(ratings[rng.integers(0, len(ratings), n)], 0.3),
            "created_at": created,
            "updated_at": pd.Series(updated).where(rng.random(n) >= 0.3),
            "replies": nulls(rng.poisson(0.3, n).astype(float), 0.5),
            "opens": nulls(rng.poisson(1.5, n).astype(float), 0.5),
            "complaints_total": nulls(rng.poisson(0.2, n).astype(float), 0.7),
            "complaints_critical": nulls(rng.poisson(0.03, n).astype(float), 0.7),
            "obligations_missed": nulls(rng.poisson(0.05, n).astype(float), 0.7),
            "payment_delays": nulls(rng.poisson(0.2, n).astype(float), 0.7),
            "registry_status": pd.Series(status[rng.choice(4, n, p=[0.8, 0.08, 0.02, 0.1])]).where(
                registry_known
            ),
            "registry_founded": pd.Series(founded[which]).where(registry_known),
            "registry_size": pd.Series(sizes[rng.integers(0, 5, n)]).where(registry_known),
        }
    )
    return df


def run(
    n: int,
    policy: ScoringPolicy | None = None,
    repeats: int = 2,
    string_storage: Literal["python", "pyarrow"] | None = None,
) -> dict[str, Any]:
    """Score n synthetic contacts; best-of-``repeats`` wall time, then a traced pass for memory.

    ``string_storage`` ("python" or "pyarrow") forces how text columns are held; None
    keeps pandas' default (Arrow when pyarrow is installed, Python objects otherwise).
    """
    policy = policy or load_scoring_policy()
    df = synthetic_contacts(n)
    if string_storage is not None:
        text = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
        df = df.astype({c: pd.StringDtype(string_storage) for c in text})
    best = best_cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = score_frame(df, policy, AS_OF)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    tracemalloc.start()
    score_frame(df, policy, AS_OF)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n": n,
        "string_storage": str(df["phone"].dtype.storage)
        if isinstance(df["phone"].dtype, pd.StringDtype)
        else "object",
        "seconds": round(best, 3),
        "rows_per_second": round(n / best),
        # CPU seconds: what the run costs when the machine is shared (wall time then
        # includes waiting for other processes); the two agree on an idle machine.
        "cpu_seconds": round(best_cpu, 3),
        "rows_per_cpu_second": round(n / best_cpu),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "peak_traced_mb": round(peak / 2**20, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "input_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1),
        "band_mix": result["band"].value_counts(normalize=True).round(3).sort_index().to_dict(),
        "scorecard_version": policy.version,
    }


def _seed_sqlite(url: str, df: pd.DataFrame) -> None:
    """Store the synthetic contacts (and their companies) with raw executemany: setup only."""
    import sqlite3

    from sqlalchemy.engine import make_url

    key = df["company_tax_id"].fillna(df["company_name"])
    codes, _ = pd.factorize(key)
    companies = (
        pd.DataFrame({"code": codes, "name": df["company_name"], "tax_id": df["company_tax_id"]})
        .loc[codes >= 0]
        .groupby("code")
        .first()
    )
    stamp = "%Y-%m-%d %H:%M:%S.%f"

    def text(series: pd.Series) -> list[Any]:
        return series.astype(object).where(series.notna(), None).tolist()

    def when(series: pd.Series) -> list[Any]:
        return text(series.dt.strftime(stamp))

    now = datetime.now(UTC).strftime(stamp)
    con = sqlite3.connect(str(make_url(url).database))
    con.executemany(
        "INSERT INTO companies (id, name, name_key, tax_id, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        zip(
            (companies.index + 1).tolist(),
            companies["name"].fillna(companies["tax_id"]).tolist(),
            companies["name"].fillna("").str.lower().tolist(),
            text(companies["tax_id"]),
            [now] * len(companies),
            [now] * len(companies),
            strict=True,
        ),
    )
    company_id = pd.Series(codes + 1, dtype="int64").where(codes >= 0)
    con.executemany(
        "INSERT INTO contacts (id, email_domain, is_free_mail, phone, country, company_id, "
        "job_title, lead_rating, first_seen_at, last_seen_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        zip(
            df["contact_id"].tolist(),
            text(df["email_domain"]),
            df["is_free_mail"].astype(int).tolist(),
            text(df["phone"]),
            text(df["country"]),
            [None if pd.isna(c) else int(c) for c in company_id],
            text(df["job_title"]),
            text(df["lead_rating"]),
            when(df["created_at"]),
            when(df["updated_at"]),
            [now] * len(df),
            [now] * len(df),
            strict=True,
        ),
    )
    con.commit()
    con.close()


def roundtrip(n: int) -> dict[str, Any]:
    """Score n contacts from SQLite and back: a first run, an unchanged rerun, a day later."""
    import tempfile
    from pathlib import Path

    from config.settings import get_settings
    from connectors.database.engine import reset_engine
    from connectors.database.migrate import upgrade
    from tasks.scoring.pipeline import score_contacts

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ACCOUNTFLOW_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("ACCOUNTFLOW_DATABASE_URL", None)
        get_settings.cache_clear()
        get_settings.cache_clear()
        reset_engine()
        upgrade()
        _seed_sqlite(get_settings().resolved_database_url(), synthetic_contacts(n))
        started, cpu = time.perf_counter(), time.process_time()
        first = score_contacts.fn(AS_OF, False)
        full_seconds = time.perf_counter() - started
        full_cpu = time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        again = score_contacts.fn(AS_OF, False)
        rerun_seconds = time.perf_counter() - started
        rerun_cpu = time.process_time() - cpu
        # A day later with the same data: only contacts whose data or company age moved
        # into another level are rescored.
        started = time.perf_counter()
        next_day = score_contacts.fn(AS_OF + timedelta(days=1), False)
        next_day_seconds = time.perf_counter() - started
        db_mb = (Path(tmp) / "data" / "accountflow.db").stat().st_size / 2**20
        reset_engine()
    return {
        "n": n,
        "database": "sqlite",
        "scored": first.scored,
        "roundtrip_seconds": round(full_seconds, 2),
        "contacts_per_second": round(n / full_seconds),
        # CPU seconds of this process: on a shared machine wall time also counts waiting
        # for the CPU and the disk.
        "roundtrip_cpu_seconds": round(full_cpu, 2),
        "unchanged_rerun_seconds": round(rerun_seconds, 2),
        "unchanged_rerun_cpu_seconds": round(rerun_cpu, 2),
        "unchanged_rerun_scored": again.scored,
        "next_day_rerun_seconds": round(next_day_seconds, 2),
        "next_day_rerun_scored": next_day.scored,
        "band_counts": first.band_counts,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database_mb": round(db_mb, 1),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "roundtrip":
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        print(json.dumps(roundtrip(count), indent=2))
        sys.exit(0)
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    storage: Literal["python", "pyarrow"] | None = None
    if len(sys.argv) > 2 and sys.argv[2] in ("python", "pyarrow"):
        storage = "python" if sys.argv[2] == "python" else "pyarrow"
    print(json.dumps(run(size, string_storage=storage), indent=2))
